import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDatabaseUnavailable, TemporarilyUnavailable, toLatchkeyError } from '../../src/lib/errors.ts';

const withCode = (code: string) => Object.assign(new Error('x'), { code });

/** The shape of Prisma's PrismaClientKnownRequestError over a driver adapter (@prisma/client runtime). */
function prismaError(code: string, cause: Record<string, unknown>): Error {
  const adapterError = Object.assign(new Error(String(cause.kind)), { name: 'DriverAdapterError', cause });
  return Object.assign(new Error('Invalid `prisma.x.findUnique()` invocation'), { name: 'PrismaClientKnownRequestError', code, meta: { driverAdapterError: adapterError } });
}

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
      // Prisma 7 with a driver adapter: its own code, the adapter's error kept in meta, not as a cause.
      prismaError('P1001', { kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 5432 }),
      prismaError('P2010', { kind: 'postgres', code: '57P01', severity: 'FATAL' }),
      prismaError('P1017', { kind: 'ConnectionClosed' }),
      // A silent partition: node-pg's query, connect and pool timeouts, which Prisma's adapter passes on as they are…
      new Error('Query read timeout'),
      Object.assign(new Error('Connection terminated due to connection timeout'), { cause: new Error('Connection terminated unexpectedly') }),
      // …and Prisma's own wait for a transaction's connection.
      Object.assign(new Error('Transaction API error: Unable to start a transaction in the given time.'), { name: 'PrismaClientKnownRequestError', code: 'P2028' }),
    ]) {
      assert.equal(isDatabaseUnavailable(error), true, String((error as Error).message));
    }
  });

  it('leaves query errors and everything else alone', () => {
    for (const error of [
      withCode('23505'),
      withCode('42P01'),
      new Error('boom'),
      null,
      undefined,
      'text',
      { code: 8006 },
      prismaError('P2002', { kind: 'UniqueConstraintViolation' }),
      withCode('P1001'),
      // Other transaction-API errors are not an outage: a transaction that ran past its own timeout.
      Object.assign(new Error('Transaction API error: A commit cannot be executed on an expired transaction.'), { name: 'PrismaClientKnownRequestError', code: 'P2028' }),
    ]) {
      assert.equal(isDatabaseUnavailable(error), false, String(error));
    }
  });
});

describe('toLatchkeyError', () => {
  it('maps an unreachable database to temporarily_unavailable, 503, with a retry delay', () => {
    const error = toLatchkeyError(withCode('ECONNREFUSED'));
    assert.ok(error instanceof TemporarilyUnavailable);
    assert.equal(error.code, 'temporarily_unavailable');
    assert.equal(error.status, 503);
    assert.equal(error.retryAfterSeconds, 5);
    assert.doesNotMatch(error.description, /ECONNREFUSED/);
  });
});
