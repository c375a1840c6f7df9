import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { z } from 'zod';
import { errorAnswer } from '../../src/http/oauth-errors.ts';

/** A logger whose lines the test can read. */
function recordingLog() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

const schema = z.object({ token: z.string().min(1), audiences: z.array(z.url()).optional(), internalHint: z.number().optional() });

test('a validation error (zod) is invalid_request, 400, naming only the parameters', () => {
  const { log, lines } = recordingLog();
  const parsed = schema.safeParse({ token: '', audiences: ['not a url'] });
  assert.equal(parsed.success, false);
  const answer = errorAnswer(parsed.error, undefined, log, 'req-1');
  assert.equal(answer.status, 400);
  assert.equal(answer.body.error, 'invalid_request');
  assert.equal(answer.body.error_description, 'invalid parameters token, audiences');
  // Not the path inside a parameter, not the schema's wording, not the value.
  assert.doesNotMatch(answer.body.error_description, /audiences\.0|not a url|Too small|Invalid/);
  assert.equal(answer.headers['Cache-Control'], 'no-store');
  // The caller's mistake: logged with its detail at info, not as a failure.
  assert.equal(lines.filter((line) => (line.level as number) >= 50).length, 0);
  assert.match(String(lines.find((line) => line.msg === 'request rejected')?.detail), /audiences\.0: /);
});

test('a validation error without a parameter, and one parameter', () => {
  const { log } = recordingLog();
  const whole = z.string().safeParse(42);
  assert.equal(errorAnswer(whole.error, undefined, log, 'req-2').body.error_description, 'request is invalid');
  const one = schema.safeParse({ token: 7 });
  const answer = errorAnswer(one.error, undefined, log, 'req-3');
  assert.deepEqual([answer.status, answer.body], [400, { error: 'invalid_request', error_description: 'invalid parameter token' }]);
});

test('anything else unexpected is still server_error without detail', () => {
  const { log, lines } = recordingLog();
  const answer = errorAnswer(new Error('secret detail'), undefined, log, 'req-4');
  assert.deepEqual([answer.status, answer.body], [500, { error: 'server_error', error_description: 'internal server error' }]);
  assert.equal(lines.filter((line) => line.msg === 'request failed').length, 1);
});
