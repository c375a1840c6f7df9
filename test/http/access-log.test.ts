import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/deps.ts';
import { requestFinished } from '../../src/http/common.ts';
import type { Metrics } from '../../src/http/metrics.ts';

/** Latchkey's own logger (bindings, redaction) writing into an array. */
function recordingLog(level: 'info' | 'warn') {
  const lines: string[] = [];
  return { log: createLogger({ LOG_LEVEL: level }, { write: (line: string) => void lines.push(line) }), lines };
}

const observed: [string, number][] = [];
const metrics = { observe: (route: string, status: number) => void observed.push([route, status]) } as unknown as Metrics;
const details = { requestId: 'req-1234.abc_DEF', method: 'POST', route: '/portal/keys/:id', status: 201, started: process.hrtime.bigint() };
const withoutTime = (line: string) => {
  const { time, ...rest } = JSON.parse(line) as Record<string, unknown>;
  assert.equal(typeof time, 'number');
  return rest;
};

test('the access log line is the line pino writes for the same fields, bindings of a child included', () => {
  for (const child of [false, true]) {
    const { log: root, lines } = recordingLog('info');
    const log = child ? root.child({ node: 'n1' }) : root;
    requestFinished({ log } as never, metrics, details);
    const [line] = lines;
    const { ms } = JSON.parse(line!) as { ms: number };
    assert.ok(ms >= 0);
    log.info({ requestId: details.requestId, method: details.method, route: details.route, status: details.status, ms }, 'request');
    assert.equal(lines.length, 2);
    assert.ok(line!.endsWith('}\n'));
    assert.deepEqual(withoutTime(line!), withoutTime(lines[1]!));
    assert.equal(withoutTime(line!).service, 'latchkey');
    if (child) assert.equal(withoutTime(line!).node, 'n1');
  }
});

test('above info, no access line is written; metrics are observed either way', () => {
  const { log, lines } = recordingLog('warn');
  observed.length = 0;
  requestFinished({ log } as never, metrics, details);
  assert.equal(lines.length, 0);
  assert.deepEqual(observed, [['/portal/keys/:id', 201]]);
});
