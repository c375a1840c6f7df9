import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { describeFailure } from '../../src/lib/errors.ts';
import { freePort, TEST_SECRET } from '../helpers/server.ts';

const BIN = fileURLToPath(new URL('../../bin/latchkey.mjs', import.meta.url));

/** A pg DatabaseError as the driver raises it (recognised by its shape). */
const pgError = (code: string) => Object.assign(new Error('database "x" does not exist'), { severity: 'FATAL', code, routine: 'InitPostgres' });

/** `latchkey <argv>` against `databaseUrl`: the exit code and stderr without oidc-provider's runtime warning. */
function run(argv: string[], databaseUrl: string) {
  const result = spawnSync(process.execPath, [BIN, ...argv], {
    env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, LATCHKEY_SECRET: TEST_SECRET, PORT: '0', HOST: '127.0.0.1', NODE_ENV: 'test' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const stderr = result.stderr.split('\n').filter((line) => line && !line.startsWith('oidc-provider WARNING'));
  return { status: result.status, stderr };
}

describe('database problems an operator meets first', () => {
  const url = 'postgresql://latchkey:s3cret-pass@db.internal:6543/latchkey_prod';
  const cases: [string, unknown, string][] = [
    ['no such database', pgError('3D000'), 'database "latchkey_prod" does not exist on db.internal:6543: create it (createdb -h db.internal -p 6543 latchkey_prod) or fix DATABASE_URL'],
    ['credentials refused', pgError('28P01'), 'the database at db.internal:6543 refused the user or password in DATABASE_URL: fix them, or allow this user in pg_hba.conf'],
    ['nothing listening', Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:6543'), { code: 'ECONNREFUSED' }), 'cannot reach the database at db.internal:6543: is Postgres running? check DATABASE_URL'],
    ['unknown host', Object.assign(new Error('getaddrinfo ENOTFOUND db.internal'), { code: 'ENOTFOUND' }), 'cannot resolve the database host "db.internal": check DATABASE_URL'],
  ];
  for (const [name, error, expected] of cases) {
    test(`${name}: says what is wrong and what to do, never the credentials`, () => {
      const line = describeFailure(error, url);
      assert.equal(line, expected);
      assert.doesNotMatch(line, /s3cret-pass|latchkey:s3cret/);
    });
  }

  test('other database errors stay named, not quoted', () => {
    assert.equal(describeFailure(pgError('23505'), url), 'internal error (database: 23505)');
    assert.equal(describeFailure(pgError('3D000')), 'internal error (database: 3D000)');
  });

  test('serve and the CLI, with nothing listening at DATABASE_URL: one line, exit 1', async () => {
    const port = await freePort();
    for (const argv of [['serve'], ['audit', 'verify', '--json']]) {
      const result = run(argv, `postgresql://someone:s3cret-pass@127.0.0.1:${port}/latchkey`);
      assert.equal(result.status, 1, argv.join(' '));
      assert.deepEqual(result.stderr, [`latchkey: cannot reach the database at 127.0.0.1:${port}: is Postgres running? check DATABASE_URL`]);
    }
  });

  const skip = process.env.DATABASE_URL ? false : 'needs DATABASE_URL (a Postgres server to ask for a missing database)';
  test('serve and the CLI, on a database that does not exist: one line naming it, exit 1', { skip }, () => {
    const missing = new URL(process.env.DATABASE_URL!);
    missing.pathname = '/latchkey_no_such_database';
    for (const argv of [['serve'], ['migrate']]) {
      const result = run(argv, missing.toString());
      assert.equal(result.status, 1, argv.join(' '));
      assert.equal(result.stderr.length, 1, result.stderr.join('\n'));
      assert.match(result.stderr[0]!, /^latchkey: database "latchkey_no_such_database" does not exist on [^ ]+: create it \(createdb -h [^ ]+ -p \d+ latchkey_no_such_database\) or fix DATABASE_URL$/);
    }
  });
});
