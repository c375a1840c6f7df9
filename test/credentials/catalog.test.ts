import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { approveRequest, requestCredential } from '../../src/credentials/requests.ts';
import { createApiKey } from '../../src/credentials/api-keys.ts';
import { createClient as createClientService } from '../../src/credentials/clients.ts';
import { cli, cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { accessToken, introspectAs, postForm, authAs } from '../helpers/oauth.ts';
import { discover, rememberSecret, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';

// The catalog (issue 8 §1.2): scopes described, marked, retired; APIs with their scopes and
// audience. Through the services and the CLI, against a real server and database.

const ORDERS = 'https://orders.example.test';
const BILLING = 'https://billing.example.test';
const system = { type: 'system' as const };

let server: TestServer;
let meta: Discovery;
let resourceServer: CreatedClient;

const events = (type: string, subjectId: string) => server.deps.prisma.auditEvent.findMany({ where: { type, subjectId }, orderBy: { seq: 'asc' } });
const introspect = async (token: string) => (await introspectAs(meta.introspection_endpoint, resourceServer, token)).body;

before(async () => {
  server = await startTestServer();
  meta = await discover(server);
  const probe = await createScope(server, { name: 'probe' });
  // A resource server that accepts both APIs and the default audience.
  resourceServer = await createClient(server, { scopes: [probe], audiences: [ORDERS, BILLING, server.deps.config.LATCHKEY_DEFAULT_AUDIENCE] });
});
after(() => server?.close());

describe('scopes: describe, mark, list', () => {
  test('scope update changes what it is told, audits each change once, and a change to nothing leaves no event', async () => {
    await createScope(server, { name: 'notes:read', description: 'Read notes' });
    const updated = await cliJson(server, ['scope', 'update', 'notes:read', '--description', 'Read every note', '--requires-approval']);
    assert.deepEqual(updated, { name: 'notes:read', description: 'Read every note', requires_approval: true, api: null, retired_at: null });
    const again = await cliJson(server, ['scope', 'update', 'notes:read', '--description', 'Read every note']);
    assert.equal(again.description, 'Read every note');
    const changes = await events('scope.updated', 'notes:read');
    assert.equal(changes.length, 1);
    assert.deepEqual(changes[0]!.data, { description: 'Read every note', requiresApproval: true });
    const unmarked = await cliJson(server, ['scope', 'update', 'notes:read', '--no-requires-approval']);
    assert.equal(unmarked.requires_approval, false);
    assert.equal((await events('scope.updated', 'notes:read')).length, 2);
  });

  test('scope update: bad input is a usage error (exit 2), an unknown scope is not found (exit 1)', async () => {
    const cases: [string[], number, RegExp][] = [
      [['scope', 'update', 'notes:read'], 2, /nothing to change/],
      [['scope', 'update', 'notes:read', '--requires-approval', '--no-requires-approval'], 2, /not both/],
      [['scope', 'update', 'notes:read', '--description', ' '], 2, /--description must be 1 to 500 characters/],
      [['scope', 'update', 'no-such-scope', '--description', 'x'], 1, /scope not found/],
      [['scope', 'update', 'bad scope!', '--description', 'x'], 1, /scope not found/],
      [['scope', 'retire', 'no-such-scope'], 1, /scope not found/],
    ];
    for (const [argv, code, pattern] of cases) {
      const result = await cli(server, [...argv, '--json']);
      assert.equal(result.code, code, `${argv.join(' ')}: ${result.stderr}`);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, pattern);
    }
  });

  test('scope list names every scope with its API and retirement', async () => {
    const { scopes } = await cliJson<{ scopes: Record<string, unknown>[] }>(server, ['scope', 'list']);
    const notes = scopes.find((s) => s.name === 'notes:read');
    assert.deepEqual(notes, { name: 'notes:read', description: 'Read every note', requires_approval: false, api: null, retired_at: null });
  });
});

describe('retiring a scope', () => {
  let keep: string;
  let old: string;
  let key: { id: string; key: string };
  let app: CreatedClient;

  before(async () => {
    keep = await createScope(server, { name: 'files:read' });
    old = await createScope(server, { name: 'files:legacy' });
    key = await createApiKey(server.deps, { name: 'sync', scopes: [keep, old] }, system);
    rememberSecret(key.key);
    app = await createClient(server, { scopes: [keep, old] });
  });

  test('is audited once; retiring it again is a conflict with no second event', async () => {
    const retired = await cliJson(server, ['scope', 'retire', old]);
    assert.equal(retired.name, old);
    assert.match(String(retired.retired_at), /^\d{4}-\d\d-\d\dT/);
    const again = await cli(server, ['scope', 'retire', old, '--json']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /scope files:legacy is already retired/);
    assert.equal((await events('scope.retired', old)).length, 1);
  });

  test('new keys, applications and requests refuse it with a clear message', async () => {
    const refusedKey = await cli(server, ['key', 'create', '--name', 'new', '--scopes', `${keep} ${old}`, '--json']);
    assert.equal(refusedKey.code, 1);
    assert.match(refusedKey.stderr, /^latchkey: scope files:legacy is retired and can no longer be granted\n$/);
    const refusedClient = await cli(server, ['client', 'create', '--name', 'new', '--scopes', old, '--json']);
    assert.equal(refusedClient.code, 1);
    assert.match(refusedClient.stderr, /retired and can no longer be granted/);
    const team = await server.deps.prisma.team.create({ data: { name: 'requesters' } });
    const account = await server.deps.prisma.account.create({ data: { email: 'requester@example.test' } });
    await assert.rejects(
      requestCredential(server.deps, { teamId: team.id, kind: 'api_key', name: 'asks', scopes: [old], requestedById: account.id }, system),
      (error: Error & { code?: string }) => error.code === 'invalid_scope' && /retired/.test(error.message),
    );
    // A new scope cannot take a retired name back.
    const reused = await cli(server, ['scope', 'create', old, '--description', 'again', '--json']);
    assert.equal(reused.code, 1);
    assert.match(reused.stderr, /already exists \(retired\)/);
  });

  test('an approval refuses it when it was retired after the request; the request stays pending', async () => {
    const gated = await createScope(server, { name: 'files:purge', requiresApproval: true });
    const team = await server.deps.prisma.team.create({ data: { name: 'purgers' } });
    const account = await server.deps.prisma.account.create({ data: { email: 'purger@example.test' } });
    const request = await requestCredential(server.deps, { teamId: team.id, kind: 'api_key', name: 'purge', scopes: [gated], requestedById: account.id }, system);
    await cliJson(server, ['scope', 'retire', gated]);
    const before = await server.deps.prisma.apiKey.count();
    await assert.rejects(approveRequest(server.deps, request.id, {}, system), /retired and can no longer be granted/);
    assert.equal(await server.deps.prisma.apiKey.count(), before, 'no key issued');
    assert.equal((await server.deps.prisma.credentialRequest.findUniqueOrThrow({ where: { id: request.id } })).status, 'pending');
  });

  test('an existing key keeps introspecting active with the scope; its rotated successor drops it', async () => {
    const before = await introspect(key.key);
    assert.equal(before.active, true);
    assert.deepEqual(before.scope.split(' ').sort(), [keep, old].sort());

    const rotated = await cliJson(server, ['key', 'rotate', key.id, '--grace', '1h']);
    rememberSecret(rotated.key);
    assert.deepEqual(rotated.scopes, [keep]);
    const successor = await introspect(rotated.key);
    assert.equal(successor.active, true);
    assert.equal(successor.scope, keep);
    // The old key, inside its grace window, is unchanged.
    const predecessor = await introspect(key.key);
    assert.equal(predecessor.active, true);
    assert.deepEqual(predecessor.scope.split(' ').sort(), [keep, old].sort());
    const [event] = await events('api_key.rotated', key.id);
    assert.deepEqual((event!.data as { droppedScopes: string[] }).droppedScopes, [old]);
  });

  test('an existing application keeps getting tokens with the scope until its secret is rotated', async () => {
    const token = await accessToken(meta.token_endpoint, app, { scope: old });
    assert.ok(token);
    const rotated = await cliJson(server, ['client', 'rotate-secret', app.client_id, '--grace', '0s']);
    rememberSecret(rotated.client_secret);
    assert.deepEqual(rotated.dropped_scopes, [old]);
    const refused = await postForm(meta.token_endpoint, { grant_type: 'client_credentials', scope: old }, authAs({ client_id: app.client_id, client_secret: rotated.client_secret }));
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'invalid_scope');
    const kept = await postForm(meta.token_endpoint, { grant_type: 'client_credentials' }, authAs({ client_id: app.client_id, client_secret: rotated.client_secret }));
    assert.equal(kept.status, 200, kept.text);
    assert.equal(kept.body.scope, keep);
  });
});

describe('APIs', () => {
  test('api create groups scopes under an audience; list shows them', async () => {
    await createScope(server, { name: 'orders:read' });
    await createScope(server, { name: 'orders:write' });
    await createScope(server, { name: 'billing:read' });
    const orders = await cliJson(server, ['api', 'create', 'Orders', '--audience', ORDERS, '--scopes', 'orders:read orders:write', '--description', 'The orders API']);
    assert.deepEqual({ ...orders, id: undefined }, { id: undefined, name: 'Orders', audience: ORDERS, description: 'The orders API', scopes: ['orders:read', 'orders:write'], retired_scopes: [] });
    await cliJson(server, ['api', 'create', 'Billing', '--audience', BILLING, '--scopes', 'billing:read']);
    const { apis } = await cliJson<{ apis: { name: string; scopes: string[] }[] }>(server, ['api', 'list']);
    assert.deepEqual(
      apis.map((a) => [a.name, a.scopes]),
      [
        ['Billing', ['billing:read']],
        ['Orders', ['orders:read', 'orders:write']],
      ],
    );
    const [event] = await events('api.created', orders.id);
    assert.deepEqual(event!.data, { name: 'Orders', audience: ORDERS, scopes: ['orders:read', 'orders:write'] });
    const { scopes } = await cliJson<{ scopes: { name: string; api: string | null }[] }>(server, ['scope', 'list']);
    assert.equal(scopes.find((s) => s.name === 'orders:read')!.api, 'Orders');
  });

  test('bad input: a clear message, nothing created', async () => {
    const before = await server.deps.prisma.api.count();
    const cases: [string[], number, RegExp][] = [
      [['api', 'create', 'Other'], 2, /--audience is required/],
      [['api', 'create', 'Other', '--audience', 'not a url'], 2, /--audience must be an http\(s\) URL/],
      [['api', 'create', 'Other', '--audience', 'ftp://x.example'], 2, /--audience must be an http\(s\) URL/],
      [['api', 'create', 'Orders', '--audience', 'https://other.example'], 1, /an API named Orders already exists/],
      [['api', 'create', 'Other', '--audience', ORDERS], 1, /the API Orders already has the audience/],
      [['api', 'create', 'Other', '--audience', 'https://other.example', '--scopes', 'orders:read'], 1, /scope orders:read belongs to the API Orders/],
      [['api', 'create', 'Other', '--audience', 'https://other.example', '--scopes', 'nope'], 1, /unknown scope: nope/],
      [['api', 'create', 'Other', '--audience', 'https://other.example', '--scopes', 'files:legacy'], 1, /scope files:legacy is retired/],
    ];
    for (const [argv, code, pattern] of cases) {
      const result = await cli(server, [...argv, '--json']);
      assert.equal(result.code, code, `${argv.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, pattern);
      assert.equal(result.stderr.trimEnd().split('\n').length, 1);
    }
    assert.equal(await server.deps.prisma.api.count(), before);
  });

  test('a credential gets the audiences of its scopes’ APIs; global scopes alone the default one', async () => {
    const both = await cliJson(server, ['key', 'create', '--name', 'both', '--scopes', 'orders:read billing:read']);
    rememberSecret(both.key);
    assert.deepEqual((await server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: both.id } })).audiences, [BILLING, ORDERS]);
    const global = await cliJson(server, ['key', 'create', '--name', 'global', '--scopes', 'files:read']);
    rememberSecret(global.key);
    assert.deepEqual((await server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: global.id } })).audiences, [server.deps.config.LATCHKEY_DEFAULT_AUDIENCE]);
    const client = await createClientService(server.deps, { name: 'orders-app', scopes: ['orders:write'] }, system);
    rememberSecret(client.client_secret);
    assert.deepEqual(client.audiences, [ORDERS]);
    // An explicit audience still wins (the CLI's --audience).
    const explicit = await cliJson(server, ['key', 'create', '--name', 'explicit', '--scopes', 'orders:read', '--audience', 'https://elsewhere.example']);
    rememberSecret(explicit.key);
    assert.deepEqual(explicit.audiences, ['https://elsewhere.example']);
  });

  test('api update moves scopes in and out, and audits what changed', async () => {
    const moved = await cliJson(server, ['api', 'update', 'Orders', '--scopes', 'orders:read', '--description', 'Orders, read only']);
    assert.deepEqual(moved.scopes, ['orders:read']);
    assert.equal(moved.description, 'Orders, read only');
    const { scopes } = await cliJson<{ scopes: { name: string; api: string | null }[] }>(server, ['scope', 'list']);
    assert.equal(scopes.find((s) => s.name === 'orders:write')!.api, null, 'left out: now global');
    const [event] = await events('api.updated', moved.id);
    assert.deepEqual(event!.data, { name: 'Orders', description: 'Orders, read only', scopesAdded: [], scopesRemoved: ['orders:write'] });
    const same = await cliJson(server, ['api', 'update', 'Orders', '--scopes', 'orders:read']);
    assert.deepEqual(same.scopes, ['orders:read']);
    assert.equal((await events('api.updated', moved.id)).length, 1, 'no change, no event');
    const missing = await cli(server, ['api', 'update', 'Nope', '--description', 'x']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /API not found/);
  });
});
