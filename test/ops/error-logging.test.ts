import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import type { Deps } from '../../src/context.ts';
import { closeDeps, createLogger, openDeps } from '../../src/deps.ts';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';
import { TEST_SECRET } from '../helpers/server.ts';

let database: TestDatabase;
let deps: Deps;

before(async () => {
  database = await testDatabase();
  const env = { LATCHKEY_SECRET: TEST_SECRET, LATCHKEY_DATA_DIR: database.dataDir, NODE_ENV: 'test', ...(database.url ? { DATABASE_URL: database.url } : {}) };
  deps = await openDeps(loadConfig(env), createLogger({ LOG_LEVEL: 'silent' }));
});
after(async () => {
  await closeDeps(deps);
  await database.drop();
});

/** What the server's logger writes for `{ err }`. */
function logged(err: unknown): string {
  const lines: string[] = [];
  createLogger({ LOG_LEVEL: 'info' }, { write: (line: string) => void lines.push(line) }).error({ err }, 'request failed');
  return lines.join('');
}

describe('errors in the log', () => {
  it('names a database error without quoting what the query carried', async () => {
    const digest = Buffer.alloc(32, 0xab);
    const row = { id: 'abcdefghijkl', name: 'k', scopes: ['s'], audiences: ['a'], digest, createdAt: new Date() };
    await deps.prisma.apiKey.create({ data: row });
    // A unique violation: Postgres's detail quotes the key, Prisma's message the arguments.
    const duplicate = await deps.prisma.apiKey.create({ data: row }).catch((error: unknown) => error);
    // A validation error: Prisma's message prints the whole invocation, digest included.
    const invalid = await deps.prisma.apiKey.create({ data: { ...row, id: 'x', scopes: 'not-a-list' } as never }).catch((error: unknown) => error);
    // And one wrapped by other code: pino would quote its cause.
    const wrapped = new Error('could not create the key', { cause: duplicate });
    for (const error of [duplicate, invalid, wrapped]) {
      assert.ok(error instanceof Error);
      const line = logged(error);
      assert.match(line, /"type":"(PrismaClient\w+Error|Error)"/);
      assert.match(line, /details withheld/);
      for (const leak of ['abcdefghijkl', 'not-a-list', digest.toString('hex').slice(0, 16), digest.toString('base64').slice(0, 16), 'q6urq6urq6urq6ur']) {
        assert.ok(!line.includes(leak), `the log quotes ${leak}: ${line}`);
      }
      const raw = error === wrapped ? (error.cause as Error).message : error.message;
      assert.ok(raw.includes('abcdefghijkl') || raw.includes('not-a-list'), 'the raw message would have leaked (the test means something)');
    }
  });

  it('keeps the message of any other error', () => {
    assert.match(logged(new TypeError('cannot read x of undefined')), /"message":"cannot read x of undefined"/);
  });
});
