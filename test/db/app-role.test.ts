import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { canonicalJson } from '../../src/audit/canonical-json.ts';
import { verifyAuditLog } from '../../src/audit/checkpoints.ts';
import { openDatabase } from '../../src/db/database.ts';
import { migrate, MigrationNeedsOwner, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { projectRoot } from '../../src/lib/project-root.ts';
import { testDatabase, withPg, type TestDatabase } from '../helpers/database.ts';
import { createClient, createScope } from '../helpers/factories.ts';
import { accessToken } from '../helpers/oauth.ts';
import { cli, cliJson } from '../helpers/cli.ts';
import { discover, startTestServer, type TestServer } from '../helpers/server.ts';

// The least-privilege role (docs/database-roles.md) is a Postgres matter: the embedded
// database has one role.
const onPostgres = Boolean(process.env.DATABASE_URL);

describe('the least-privilege app role', { skip: !onPostgres && 'needs DATABASE_URL (Postgres)' }, () => {
  const suffix = randomBytes(4).toString('hex');
  const group = `lk_app_${suffix}`;
  const login = `lk_web_${suffix}`;
  let database: TestDatabase;
  let ownerUrl: string;
  let appUrl: string;
  let app: pg.Client;
  let server: TestServer;

  before(async () => {
    database = await testDatabase();
    ownerUrl = database.url!;
    const owner = await openDatabase({ databaseUrl: ownerUrl, dataDir: database.dataDir });
    try {
      await migrate(owner);
    } finally {
      await owner.close();
    }
    // The documented script, under this test's own role name (roles are cluster-wide).
    const script = (await readFile(path.join(projectRoot(), 'docs', 'database-app-role.sql'), 'utf8')).replaceAll('latchkey_app', group);
    await withPg(ownerUrl, async (client) => {
      await client.query(script);
      await client.query(`CREATE ROLE "${login}" LOGIN IN ROLE "${group}"`);
    });
    const url = new URL(ownerUrl);
    url.username = login;
    appUrl = url.toString();
    app = new pg.Client({ connectionString: appUrl });
    await app.connect();
    // The server runs as the app role; the owner applies migrations (none pending here).
    server = await startTestServer({ database, env: { DATABASE_URL: appUrl, DATABASE_MIGRATION_URL: ownerUrl } });
  });

  after(async () => {
    await app?.end();
    await server?.close();
    await database?.drop();
    // The database (and every grant in it) is gone: the roles can go.
    await withPg(process.env.DATABASE_URL!, async (client) => {
      await client.query(`DROP ROLE IF EXISTS "${login}"`);
      await client.query(`DROP ROLE IF EXISTS "${group}"`);
    });
  });

  it('connects as the app role, not the owner', async () => {
    const [row] = (await server.deps.db.query('SELECT current_user AS who')) as { who: string }[];
    assert.equal(row!.who, login);
  });

  const refused: [string, string][] = [
    ['UPDATE', `UPDATE audit_event SET type = 'x'`],
    ['DELETE', 'DELETE FROM audit_event'],
    ['TRUNCATE', 'TRUNCATE audit_event'],
    ['disable a trigger', 'ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_change'],
    ['disable every trigger', 'ALTER TABLE audit_event DISABLE TRIGGER ALL'],
    ['drop a trigger', 'DROP TRIGGER audit_event_no_change ON audit_event'],
    ['ALTER TABLE', 'ALTER TABLE audit_event ADD COLUMN x int'],
    ['replace the append-only function', `CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`],
    ['insert a row of its own making', `INSERT INTO audit_event (type, actor_type, data, prev_hash, hash) VALUES ('forged', 'system', '{}', 'x', 'y')`],
    ['change a checkpoint', `UPDATE audit_checkpoint SET hash = 'x'`],
    ['delete a checkpoint', 'DELETE FROM audit_checkpoint'],
    ['record a migration', `DELETE FROM "_prisma_migrations"`],
    ['replace session_replication_role (which skips triggers)', `SET session_replication_role = replica`],
  ];
  for (const [what, sql] of refused) {
    it(`may not ${what}`, async () => {
      await assert.rejects(app.query(sql), (error: { code?: string; message: string }) => {
        // Refused by privilege (42501), not by a trigger that a superuser could drop.
        assert.equal(error.code, '42501', `${sql}: ${error.message}`);
        return true;
      });
    });
  }

  it('appends through audit_append, and the chain stays whole', async () => {
    // Canonical (sorted keys), as the application writes it: the chain hashes this exact text.
    const body = canonicalJson({ at: new Date().toISOString(), type: 'test.app_role', actorType: 'system', actorId: null, subjectType: null, subjectId: null, requestId: null, ip: null, data: {} });
    await app.query('SELECT audit_append($1::jsonb)', [JSON.stringify([body])]);
    const { rows } = await app.query(`SELECT count(*)::int AS n FROM audit_event WHERE type = 'test.app_role'`);
    assert.equal(rows[0].n, 1);
    assert.equal((await verifyAuditLog(server.deps)).ok, true);
  });

  it('does the server\'s normal work: creates a key and a client, issues a token, writes a checkpoint', async () => {
    const scope = await createScope(server);
    const key = await cliJson(server, ['key', 'create', '--name', 'app-role key', '--scopes', scope]);
    assert.match(key.key, /^lk_/);
    const client = await createClient(server, { scopes: [scope] });
    const { token_endpoint } = await discover(server);
    const token = await accessToken(token_endpoint, client, { scope });
    assert.equal(token.split('.').length, 3);
    await server.deps.audit.idle();
    const checkpoint = await cliJson(server, ['audit', 'checkpoint', '--new']);
    assert.match(checkpoint.seq, /^\d+$/);
    const verify = await cliJson(server, ['audit', 'verify']);
    assert.equal(verify.ok, true);
    assert.ok(verify.checkpoints >= 1);
    const types = (await app.query('SELECT type FROM audit_event')).rows.map((r) => r.type);
    for (const type of ['api_key.created', 'client.created', 'token.issued']) assert.ok(types.includes(type), type);
  });

  it('starts without DATABASE_MIGRATION_URL when nothing is pending (no DDL as the app role)', async () => {
    const second = await startTestServer({ database, env: { DATABASE_URL: appUrl } });
    try {
      assert.equal((await cli(second, ['audit', 'verify'])).code, 0);
    } finally {
      await second.close();
    }
  });

  it('refuses a pending migration it cannot apply, saying who can', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'latchkey-migrations-'));
    try {
      await cp(MIGRATIONS_DIR, dir, { recursive: true });
      await mkdir(path.join(dir, '29990101000000_later'));
      await writeFile(path.join(dir, '29990101000000_later', 'migration.sql'), 'CREATE TABLE "later" (id int);');
      const appDb = await openDatabase({ databaseUrl: appUrl, dataDir: database.dataDir, poolSize: 1 });
      try {
        await assert.rejects(migrate(appDb, `${dir}/`), (error: Error) => {
          assert.ok(error instanceof MigrationNeedsOwner, error.message);
          assert.match(error.message, /migration 29990101000000_later is not applied.*DATABASE_MIGRATION_URL/);
          return true;
        });
      } finally {
        await appDb.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
