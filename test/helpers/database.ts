import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface TestDatabase {
  /** Postgres URL of a database created for this file; undefined on the embedded database. */
  url: string | undefined;
  /** LATCHKEY_DATA_DIR for this file: the PGlite data (embedded) and nothing else. */
  dataDir: string;
  kind: 'postgres' | 'pglite';
  drop(): Promise<void>;
}

/**
 * A fresh database per test file: a new Postgres database on DATABASE_URL's server when set,
 * otherwise a new embedded (PGlite) data directory. Both are removed by drop().
 */
export async function testDatabase(): Promise<TestDatabase> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'latchkey-test-'));
  const base = process.env.DATABASE_URL;
  if (!base) {
    return { url: undefined, dataDir, kind: 'pglite', drop: () => rm(dataDir, { recursive: true, force: true }) };
  }
  const name = `latchkey_test_${randomBytes(6).toString('hex')}`;
  await withPg(base, (client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(base);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    url: url.toString(),
    dataDir,
    kind: 'postgres',
    drop: () =>
      (dropped ??= (async () => {
        await withPg(base, async (client) => {
          await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
          await client.query(`DROP DATABASE IF EXISTS "${name}"`);
        });
        await rm(dataDir, { recursive: true, force: true });
      })()),
  };
}

/** Runs fn on a fresh connection to `url` (the tests' and the benchmarks' way to administer Postgres). */
export async function withPg<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
