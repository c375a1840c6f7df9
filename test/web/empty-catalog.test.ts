import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient as createClientService } from '../../src/credentials/clients.ts';
import { cli } from '../helpers/cli.ts';
import { createScope } from '../helpers/factories.ts';
import { basicAuth, introspectAs, postForm } from '../helpers/oauth.ts';
import { signUpAndSignIn, type PortalClient } from '../helpers/portal.ts';
import { discover, rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';

const NOTE = /No scopes are defined yet: this key will identify its caller but grant no scope\. An admin adds scopes with <code>latchkey scope create<\/code>\./;

let server: TestServer;
let alice: PortalClient;
// A resource server as a fresh install can make one: with no scope either.
let resourceServer: { client_id: string; client_secret?: string };

const fullKeyIn = (html: string) => {
  const key = /value="(lk_[0-9A-Za-z]{12}_[0-9A-Za-z]{49})"/.exec(html)?.[1];
  assert.ok(key, 'the page shows the full key');
  rememberSecret(key);
  return key;
};

before(async () => {
  server = await startTestServer();
  assert.equal(await server.deps.prisma.scope.count(), 0, 'a fresh install has an empty catalog');
  resourceServer = await createClientService(server.deps, { name: 'rs', scopes: [] }, { type: 'system' });
  rememberSecret(resourceServer.client_secret);
  alice = await signUpAndSignIn(server, null, 'newcomer@example.com');
});
after(() => server?.close());

describe('a fresh install (empty scope catalog): credentials without scope from the portal', () => {
  test('the key form says no scope is defined and offers no checkbox', async () => {
    const html = await (await alice.get('/portal/keys/new')).text();
    assert.match(html, NOTE);
    assert.doesNotMatch(html, /name="scopes"/);
    assert.match(html, />Create key</);
  });

  test('a key created without scopes introspects active, with no scope member', async () => {
    const created = await alice.postForm('/portal/keys/new', '/portal/keys', { name: 'first key', expires: '30d' });
    assert.equal(created.status, 200);
    const key = fullKeyIn(await created.text());
    const answer = await introspectAs((await discover(server)).introspection_endpoint, resourceServer, key);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.active, true);
    assert.equal(answer.body.token_type, 'api_key');
    assert.ok(!('scope' in answer.body), `RFC 7662: scope is OPTIONAL, omitted when empty (got ${JSON.stringify(answer.body.scope)})`);
    assert.ok(answer.body.sub, 'sub: the owning team');
    const page = await (await alice.get(`/portal/keys/${key.slice(3, 15)}`)).text();
    assert.match(page, /<dt>Scopes<\/dt>\s*<dd>\s*<span class="muted">none<\/span>/);
  });

  test('an application created without scopes gets a token', async () => {
    const form = await (await alice.get('/portal/applications/new')).text();
    assert.match(form, /No scopes are defined yet: its access tokens will identify it but grant no scope\./);
    const created = await alice.postForm('/portal/applications/new', '/portal/applications', { name: 'first app', authMethod: 'client_secret_basic' });
    assert.equal(created.status, 200);
    const html = await created.text();
    const clientId = /id="client-id"[^>]*value="(lkc_[0-9A-Za-z]{22})"/.exec(html)?.[1];
    const secret = /id="client-secret"[^>]*value="(lks_[0-9A-Za-z]{43})"/.exec(html)?.[1];
    assert.ok(clientId && secret);
    rememberSecret(secret);
    const issued = await postForm((await discover(server)).token_endpoint, { grant_type: 'client_credentials' }, { authorization: basicAuth(clientId, secret) });
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    assert.equal(issued.body.token_type, 'Bearer');
  });

  test('the CLI still requires --scopes (exit 2)', async () => {
    for (const scopes of ['', ' ', ',']) {
      const result = await cli(server, ['key', 'create', '--name', 'cli key', '--scopes', scopes]);
      assert.equal(result.code, 2, `--scopes "${scopes}": ${result.stderr}`);
      assert.match(result.stderr, /--scopes is required/);
    }
  });

  test('once the catalog has a scope, a key without one is refused beside the field, nothing stored', async () => {
    const read = await createScope(server, { name: 'orders:read', description: 'Read orders' });
    const form = await (await alice.get('/portal/keys/new')).text();
    assert.doesNotMatch(form, NOTE);
    assert.match(form, new RegExp(`name="scopes" value="${read}"`));
    const before = await server.deps.prisma.apiKey.count();
    const refused = await alice.post('/portal/keys', { name: 'second key', expires: '30d' });
    assert.equal(refused.status, 400);
    const html = await refused.text();
    assert.match(html, /id="field-scopes-error"[^>]*>Choose at least one scope\./);
    assert.match(html, /value="second key"/, 'the name is kept');
    assert.equal(await server.deps.prisma.apiKey.count(), before);

    const app = await alice.post('/portal/applications', { name: 'second app', authMethod: 'client_secret_basic' });
    assert.equal(app.status, 400);
    assert.match(await app.text(), /Choose at least one scope\./);
  });
});
