import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { LISTENER_NAME } from '../../src/db/database.ts';
import { cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { introspectAs } from '../helpers/oauth.ts';
import { eventually, rememberSecret, startTestServer, untilCached, type TestServer } from '../helpers/server.ts';

const API = 'https://api.example.test';
const skip = process.env.DATABASE_URL ? false : 'needs DATABASE_URL (the embedded database has no connection to lose)';

let server: TestServer;
let caller: CreatedClient;
let scope: string;

const introspect = (token: string) => introspectAs(`${server.url}/introspect`, caller, token);

/** Another node's revocation: the row change and its NOTIFY, committed elsewhere. */
async function revokeElsewhere(keyId: string) {
  const client = new pg.Client({ connectionString: server.database.url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('UPDATE api_key SET revoked_at = now() WHERE id = $1', [keyId]);
    await client.query("SELECT pg_notify('latchkey_invalidate', $1)", [`key:${keyId}`]);
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

async function killListeners() {
  const client = new pg.Client({ connectionString: server.database.url });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1', [LISTENER_NAME]);
    return rowCount ?? 0;
  } finally {
    await client.end();
  }
}

describe('cache invalidation survives a lost listener connection', { skip }, () => {
  before(async () => {
    server = await startTestServer();
    scope = await createScope(server);
    caller = await createClient(server, { scopes: [scope], audiences: [API] });
  });
  after(() => server?.close());

  it('a revocation made elsewhere after the listener was killed is still honoured within 1 s', async () => {
    const key = await cliJson<{ id: string; key: string }>(server, ['key', 'create', '--name', 'k', '--scopes', scope, '--audience', API]);
    rememberSecret(key.key);
    assert.equal((await untilCached(server, `key:${key.id}`, () => introspect(key.key), 'before the connection is lost')).body.active, true);

    assert.ok((await killListeners()) >= 1, 'a LISTEN connection was terminated');
    await revokeElsewhere(key.id);
    await eventually(() => introspect(key.key), (answer) => answer.body.active === false, 1_000, 'still active 1 s after a revocation on another node');
    // And the listener is back: a later change is heard again.
    const second = await cliJson<{ id: string; key: string }>(server, ['key', 'create', '--name', 'k2', '--scopes', scope, '--audience', API]);
    rememberSecret(second.key);
    assert.equal((await untilCached(server, `key:${second.id}`, () => introspect(second.key), 'caching resumes after the reconnect')).body.active, true);
    await revokeElsewhere(second.id);
    await eventually(() => introspect(second.key), (answer) => answer.body.active === false, 1_000, 'the reconnected listener missed a revocation');
  });
});
