import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDatabaseUnavailable } from '../../src/lib/errors.ts';

const withCode = (code: string) => Object.assign(new Error('x'), { code });

describe('isDatabaseUnavailable', () => {
  it('recognises an unreachable database, also wrapped', () => {
    for (const error of [
      withCode('ECONNREFUSED'),
      withCode('08006'),
      withCode('57P01'),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      Object.assign(new Error('prisma says no'), { cause: withCode('ECONNRESET') }),
      Object.assign(new Error('outer'), { cause: Object.assign(new Error('inner'), { cause: new Error('Connection terminated') }) }),
    ]) {
      assert.equal(isDatabaseUnavailable(error), true, String((error as Error).message));
    }
  });

  it('leaves query errors and everything else alone', () => {
    for (const error of [withCode('23505'), withCode('42P01'), new Error('boom'), null, undefined, 'text', { code: 8006 }]) {
      assert.equal(isDatabaseUnavailable(error), false, String(error));
    }
  });
});
