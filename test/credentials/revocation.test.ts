import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiKey, revokeApiKey, suspendApiKey, unsuspendApiKey } from '../../src/credentials/api-keys.ts';
import { revokeClient } from '../../src/credentials/clients.ts';
import { cli, cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { accessToken, authAs, introspectAs, postForm } from '../helpers/oauth.ts';
import { discover, rememberSecret, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';

const API = 'https://api.example.test';

let server: TestServer;
let meta: Discovery;
let scope: string;
let resourceServer: CreatedClient;

const introspect = (token: string) => introspectAs(meta.introspection_endpoint, resourceServer, token);
const revoke = (client: CreatedClient, token: string, extra: Record<string, string> = {}) => postForm(meta.revocation_endpoint, { token, ...extra }, authAs(client));

const tokenFor = (client: CreatedClient) => accessToken(meta.token_endpoint, client);

before(async () => {
  server = await startTestServer();
  meta = await discover(server);
  scope = await createScope(server);
  resourceServer = await createClient(server, { scopes: [scope], audiences: [API] });
});
after(() => server.close());

describe('revocation (RFC 7009)', () => {
  it('revokes a JWT by jti: from then on it introspects inactive', async () => {
    const app = await createClient(server, { scopes: [scope], audiences: [API] });
    const token = await tokenFor(app);
    assert.equal((await introspect(token)).body.active, true);
    const answer = await revoke(app, token, { token_type_hint: 'refresh_token' });
    assert.equal(answer.status, 200);
    assert.equal(answer.text, '');
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    assert.equal((await introspect(token)).text, '{"active":false}');
    const jti = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti;
    const row = await server.deps.prisma.revokedToken.findUniqueOrThrow({ where: { jti } });
    assert.equal(row.clientId, app.client_id);
    assert.ok(await server.deps.prisma.auditEvent.findFirst({ where: { type: 'access_token.revoked', subjectId: jti } }));
    // Revoking twice is still a success.
    assert.equal((await revoke(app, token)).status, 200);
  });

  it('answers 200 for unknown and malformed tokens', async () => {
    for (const token of ['nope', 'a.b.c', 'lk_nope', `lk_${'A'.repeat(12)}_${'B'.repeat(49)}`]) {
      const answer = await revoke(resourceServer, token);
      assert.equal(answer.status, 200, token);
    }
  });

  it('does not let a client revoke another client\'s token', async () => {
    const owner = await createClient(server, { scopes: [scope], audiences: [API] });
    const stranger = await createClient(server, { scopes: [scope], audiences: [API] });
    const token = await tokenFor(owner);
    assert.equal((await revoke(stranger, token)).status, 200);
    assert.equal((await introspect(token)).body.active, true);
  });

  it('revokes an API key presented in full', async () => {
    const key = await cliJson<{ id: string; key: string }>(server, ['key', 'create', '--name', 'leaked', '--scopes', scope, '--audience', API]);
    rememberSecret(key.key);
    assert.equal((await introspect(key.key)).body.active, true);
    assert.equal((await revoke(resourceServer, key.key, { token_type_hint: 'access_token' })).status, 200);
    assert.equal((await introspect(key.key)).text, '{"active":false}');
    const row = await server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: key.id } });
    assert.ok(row.revokedAt);
    assert.match(row.revokedReason ?? '', /RFC 7009/);
  });

  it('revoking a client ends its tokens and its secret', async () => {
    const app = await createClient(server, { scopes: [scope], audiences: [API] });
    const token = await tokenFor(app);
    await cliJson(server, ['client', 'revoke', app.client_id]);
    assert.equal((await introspect(token)).text, '{"active":false}');
    const answer = await postForm(meta.token_endpoint, { grant_type: 'client_credentials' }, authAs(app));
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error, 'invalid_client');
    const rotate = await cli(server, ['client', 'rotate-secret', app.client_id, '--json']);
    assert.notEqual(rotate.code, 0);
    assert.match(rotate.stderr, /revoked/);
  });

  it('wants POST and an authenticated client', async () => {
    assert.equal((await fetch(meta.revocation_endpoint)).status, 405);
    const anonymous = await postForm(meta.revocation_endpoint, { token: 'x' });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error, 'invalid_client');
  });
});

describe('concurrent state changes', () => {
  const OPERATOR = { type: 'cli' as const };
  const eventsOf = (type: string, subjectId: string) => server.deps.prisma.auditEvent.count({ where: { type, subjectId } });

  // Two admins acting on one credential at the same moment: the row lock decides, and the one
  // whose change came second is told so (the pages then say "Nothing changed"), not "done".
  it('tells exactly one of two concurrent suspensions, unsuspensions or revocations that it changed the key', async () => {
    const key = await createApiKey(server.deps, { name: 'race', scopes: [scope], audiences: [API] }, OPERATOR);
    rememberSecret(key.key);
    const twice = async <T extends { changed: boolean }>(act: () => Promise<T>) => (await Promise.all([act(), act()])).map((r) => r.changed).sort();
    assert.deepEqual(await twice(() => suspendApiKey(server.deps, key.id, 'first', OPERATOR)), [false, true]);
    assert.equal(await eventsOf('api_key.suspended', key.id), 1);
    assert.deepEqual(await twice(() => unsuspendApiKey(server.deps, key.id, 'back', OPERATOR)), [false, true]);
    assert.equal(await eventsOf('api_key.unsuspended', key.id), 1);
    assert.deepEqual(await twice(() => revokeApiKey(server.deps, key.id, { reason: 'leaked' }, OPERATOR)), [false, true]);
    assert.equal(await eventsOf('api_key.revoked', key.id), 1);
  });

  it('tells exactly one of two concurrent revocations of an application that it changed it', async () => {
    const app = await createClient(server, { scopes: [scope], audiences: [API] });
    const results = await Promise.all([revokeClient(server.deps, app.client_id, OPERATOR), revokeClient(server.deps, app.client_id, OPERATOR)]);
    assert.deepEqual(results.map((r) => r.changed).sort(), [false, true]);
    assert.equal(results[0]!.revoked_at, results[1]!.revoked_at);
    assert.equal(await eventsOf('client.revoked', app.client_id), 1);
  });
});
