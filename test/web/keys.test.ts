import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KEY_LIST_PAGE_SIZE } from '../../src/web/portal/keys.tsx';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { introspectAs } from '../helpers/oauth.ts';
import { signUpAndSignIn, type PortalClient } from '../helpers/portal.ts';
import { discover, rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
let introspectionEndpoint: string;
let resourceServer: CreatedClient;
let alice: PortalClient;
let mallory: PortalClient;
let read: string;
let write: string;
let gated: string;

const fullKeyIn = (html: string) => {
  const key = /value="(lk_[0-9A-Za-z]{12}_[0-9A-Za-z]{49})"/.exec(html)?.[1];
  assert.ok(key, 'the page shows the full key');
  rememberSecret(key);
  return key;
};
const idOf = (key: string) => key.slice(3, 15);
const active = async (token: string) => {
  const answer = await introspectAs(introspectionEndpoint, resourceServer, token);
  assert.equal(answer.status, 200);
  return answer.body.active as boolean;
};

before(async () => {
  server = await startTestServer();
  introspectionEndpoint = (await discover(server)).introspection_endpoint;
  read = await createScope(server, { name: 'orders:read', description: 'Read orders' });
  write = await createScope(server, { name: 'orders:write', description: 'Create and change orders' });
  gated = await createScope(server, { name: 'payouts:send', description: 'Send payouts', requiresApproval: true });
  resourceServer = await createClient(server, { scopes: [read] });
  [alice, mallory] = await Promise.all([signUpAndSignIn(server, null, 'alice@example.com'), signUpAndSignIn(server, null, 'mallory@example.com')]);
});
after(() => server?.close());

describe('API keys in the portal', () => {
  let keyId: string;

  test('an empty list says what to do next', async () => {
    const page = await alice.get('/portal/keys');
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /No API keys yet/);
    assert.match(html, /href="\/portal\/keys\/new"[^>]*>New API key</);
  });

  test('the form offers every scope with its description and marks the ones needing approval', async () => {
    const html = await (await alice.get('/portal/keys/new')).text();
    assert.match(html, /<label for="field-name">Name<\/label>/);
    assert.match(html, /orders:read<\/span><span class="choice-description">Read orders/);
    assert.match(html, /payouts:send \(requires approval\)/);
    assert.match(html, /value="90d" checked/);
    assert.match(html, /No expiry/);
    assert.match(html, />Create key</);
  });

  test('create → shown once → introspects active → rotate now → old inactive, new active → revoke → inactive', async () => {
    const created = await alice.postForm('/portal/keys/new', '/portal/keys', { name: 'billing service', scopes: [read, write], expires: '30d' });
    assert.equal(created.status, 200);
    assert.equal(created.headers.get('cache-control'), 'no-store');
    const html = await created.text();
    assert.match(html, /Copy it now: you will not see it again/);
    const key = fullKeyIn(html);
    keyId = idOf(key);
    assert.match(html, new RegExp(`href="/portal/keys/${keyId}"`));
    assert.equal(await active(key), true);

    const list = await (await alice.get('/portal/keys')).text();
    assert.match(list, /billing service/);
    assert.match(list, new RegExp(`lk_${keyId.slice(0, 4)}…_••••`));
    assert.ok(!list.includes(key), 'the list never shows the full key');

    const keyPage = await (await alice.get(`/portal/keys/${keyId}`)).text();
    assert.match(keyPage, /Old key keeps working for/);
    assert.ok(!keyPage.includes('id="usage"'), 'no empty usage section');

    const confirm = await alice.post(`/portal/keys/${keyId}/rotate`, { grace: 'now' });
    assert.equal(confirm.status, 200);
    const confirmHtml = await confirm.text();
    assert.match(confirmHtml, /stops working now/);
    assert.match(confirmHtml, /The new key is shown once/);
    assert.match(confirmHtml, /name="confirm" value="yes"/);
    assert.equal(await active(key), true, 'the confirmation page changes nothing');

    const rotated = await alice.post(`/portal/keys/${keyId}/rotate`, { grace: 'now', confirm: 'yes' });
    assert.equal(rotated.status, 200);
    const successor = fullKeyIn(await rotated.text());
    assert.notEqual(successor, key);
    assert.equal(await active(key), false);
    assert.equal(await active(successor), true);

    const again = await alice.post(`/portal/keys/${keyId}/rotate`, { grace: 'now', confirm: 'yes' });
    assert.equal(again.status, 303, 'a second rotation of the same key is a flash, not a 500');
    assert.match(await (await alice.follow(again)).text(), /Nothing changed/);

    const successorId = idOf(successor);
    const revokeConfirm = await alice.post(`/portal/keys/${successorId}/revoke`, { reason: 'leaked in a log' });
    assert.equal(revokeConfirm.status, 200);
    assert.match(await revokeConfirm.text(), /services using it will be refused within a second/);
    assert.equal(await active(successor), true);
    const revoked = await alice.post(`/portal/keys/${successorId}/revoke`, { reason: 'leaked in a log', confirm: 'yes' });
    assert.equal(revoked.status, 303);
    assert.equal(revoked.headers.get('location'), `/portal/keys/${successorId}`);
    const after = await (await alice.follow(revoked)).text();
    assert.match(after, /revoked/);
    assert.match(after, /leaked in a log/);
    assert.equal(await active(successor), false);

    const audit = await server.deps.prisma.auditEvent.findMany({ where: { subjectId: { in: [keyId, successorId] } }, orderBy: { seq: 'asc' } });
    assert.deepEqual(
      audit.map((e) => e.type).filter((type) => !type.endsWith('check_failed')),
      ['api_key.created', 'api_key.rotated', 'api_key.revoked'],
    );
    for (const event of audit.filter((e) => e.type.startsWith('api_key.') && !e.type.endsWith('check_failed'))) {
      assert.equal(event.actorType, 'account');
      assert.ok(event.actorId && event.requestId, 'the actor carries the account and the request');
    }
  });

  test('a key rotated with grace shows "rotating out" until its grace ends', async () => {
    const html = await (await alice.postForm('/portal/keys/new', '/portal/keys', { name: 'graceful', scopes: [read], expires: '90d' })).text();
    const key = fullKeyIn(html);
    const confirm = await (await alice.post(`/portal/keys/${idOf(key)}/rotate`, { grace: '24h' })).text();
    assert.match(confirm, /keeps working until/);
    const rotated = await alice.post(`/portal/keys/${idOf(key)}/rotate`, { grace: '24h', confirm: 'yes' });
    fullKeyIn(await rotated.text());
    assert.equal(await active(key), true);
    assert.match(await (await alice.get(`/portal/keys/${idOf(key)}`)).text(), /rotating out/);
    const list = await (await alice.get('/portal/keys')).text();
    assert.match(list, /rotating out/);
    // The revoked key of the first test is on the other tab, not among the live ones.
    assert.doesNotMatch(list, />revoked</, 'the Active tab lists live keys only');
    assert.match(await (await alice.get('/portal/keys?show=inactive')).text(), />revoked</);
  });

  // Literal scope names: this table is built before `before` creates the scopes.
  const bad: [string, Record<string, string | string[]>, string, RegExp][] = [
    ['no scopes', { name: 'no scopes', expires: '90d' }, 'scopes', /Choose at least one scope/],
    ['empty name', { name: '   ', scopes: ['orders:read'], expires: '90d' }, 'name', /Enter a name/],
    ['101-character name', { name: 'x'.repeat(101), scopes: ['orders:read'], expires: '90d' }, 'name', /at most 100 characters/],
    ['unknown scope', { name: 'unknown', scopes: ['nope:nothing'], expires: '90d' }, 'scopes', /Unknown scope: nope:nothing/],
    ['duplicate live name', { name: 'graceful', scopes: ['orders:read'], expires: '90d' }, 'name', /already has this name/],
    ['audience not a URL', { name: 'bad audience', scopes: ['orders:read'], audiences: 'orders api', expires: '90d' }, 'audiences', /Give full http\(s\) URLs/],
    ['unknown expiry', { name: 'odd expiry', scopes: ['orders:read'], expires: '5y' }, 'expires', /Choose when the key expires/],
  ];
  for (const [what, fields, field, message] of bad) {
    test(`bad input (${what}) → 400, message beside the field, values kept, nothing stored`, async () => {
      const before = await server.deps.prisma.apiKey.count();
      const answer = await alice.postForm('/portal/keys/new', '/portal/keys', fields);
      assert.equal(answer.status, 400);
      const html = await answer.text();
      assert.match(html, new RegExp(`<p class="field-error" id="field-${field}-error">[^<]*${message.source}`));
      if (typeof fields.name === 'string' && fields.name.trim()) assert.ok(html.includes(`value="${fields.name}"`), 'the name is kept');
      for (const scope of [fields.scopes ?? []].flat()) if (scope === read) assert.match(html, /value="orders:read" checked/);
      assert.equal(await server.deps.prisma.apiKey.count(), before);
    });
  }

  test('a key for a named API is visible only to that API\'s resource servers', async () => {
    const api = 'https://orders.example.test';
    const ordersServer = await createClient(server, { scopes: [read], audiences: [api] });
    const html = await (await alice.postForm('/portal/keys/new', '/portal/keys', { name: 'for orders', scopes: [read], audiences: ` ${api} `, expires: '7d' })).text();
    const key = fullKeyIn(html);
    assert.ok(html.includes(api));
    const seen = await introspectAs(introspectionEndpoint, ordersServer, key);
    assert.equal(seen.body.active, true);
    assert.equal(await active(key), false, 'a resource server of another audience sees nothing');
  });

  test('a name with markup is rendered escaped', async () => {
    const name = '<script>alert(1)</script>';
    const bad = await alice.postForm('/portal/keys/new', '/portal/keys', { name });
    assert.equal(bad.status, 400);
    const badHtml = await bad.text();
    assert.ok(!badHtml.includes(name));
    assert.ok(badHtml.includes('value="&lt;script>alert(1)&lt;/script>"'), 'the value is kept, escaped');
    const created = await alice.postForm('/portal/keys/new', '/portal/keys', { name, scopes: [read], expires: '7d' });
    assert.equal(created.status, 200);
    fullKeyIn(await created.text());
    const list = await (await alice.get('/portal/keys')).text();
    assert.ok(!list.includes(name));
    assert.ok(list.includes('>&lt;script>alert(1)&lt;/script></a>'), 'the name is escaped in the list');
  });

  test('the key page has a Usage panel: checks of the last 30 days and the last-used time', async () => {
    const created = await alice.postForm('/portal/keys/new', '/portal/keys', { name: 'usage meter', scopes: [read], expires: '30d' });
    assert.equal(created.status, 200);
    const key = fullKeyIn(await created.text());
    const before = await (await alice.get(`/portal/keys/${idOf(key)}`)).text();
    assert.match(before, /<h2 id="usage-heading">Usage<\/h2>/);
    assert.match(before, /<dt>Last used<\/dt>\s*<dd>\s*<span class="muted">never<\/span>/);
    assert.match(before, /0 successful checks and 0 failed checks/);

    for (let i = 0; i < 3; i++) assert.equal(await active(key), true);
    await server.deps.usage.flush();
    const page = await alice.get(`/portal/keys/${idOf(key)}`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /3 successful checks and 0 failed checks/);
    assert.match(html, /<dt>Checks, last 30 days<\/dt>\s*<dd>3<\/dd>/);
    assert.match(html, /<svg class="chart"[^>]*role="img"/);
    assert.match(html, /<dt>Last used<\/dt>\s*<dd>\s*<time datetime="/);
    // Someone else's key's usage is as invisible as the key.
    assert.equal((await mallory.get(`/portal/keys/${idOf(key)}`)).status, 404);
  });

  test('a scope needing approval becomes a request, not a key', async () => {
    const before = await server.deps.prisma.apiKey.count();
    const answer = await alice.postForm('/portal/keys/new', '/portal/keys', { name: 'payouts', scopes: [read, gated], expires: '30d' });
    assert.equal(answer.status, 303);
    assert.match(answer.headers.get('location')!, /^\/portal\/requests\/lkr_[0-9A-Za-z]{16}$/);
    assert.equal(await server.deps.prisma.apiKey.count(), before);
    const request = await server.deps.prisma.credentialRequest.findFirstOrThrow({ where: { name: 'payouts' } });
    assert.equal(request.kind, 'api_key');
    assert.equal(request.expiresInSeconds, 30 * 86_400);
  });

  test('another team gets 404 for every route that takes the key id', async () => {
    const routes: [string, string, Record<string, string>][] = [
      ['GET', `/portal/keys/${keyId}`, {}],
      ['POST', `/portal/keys/${keyId}/rotate`, { grace: 'now' }],
      ['POST', `/portal/keys/${keyId}/rotate`, { grace: 'now', confirm: 'yes' }],
      ['POST', `/portal/keys/${keyId}/revoke`, {}],
      ['POST', `/portal/keys/${keyId}/revoke`, { confirm: 'yes' }],
      ['GET', '/portal/keys/AAAAAAAAAAAA', {}],
      ['GET', '/portal/keys/not-a-key-id', {}],
    ];
    await mallory.get('/portal/keys');
    for (const [method, path, fields] of routes) {
      const answer = method === 'GET' ? await mallory.get(path) : await mallory.post(path, fields);
      assert.equal(answer.status, 404, `${method} ${path}`);
      assert.ok(!(await answer.text()).includes('billing service'));
    }
    const list = await (await mallory.get('/portal/keys')).text();
    assert.ok(!list.includes('billing service'), 'another team never sees the key in its list');
  });

  test('a POST without its CSRF token is refused with 403 and changes nothing', async () => {
    const before = await server.deps.prisma.apiKey.count();
    await alice.get('/portal/keys/new');
    const answer = await alice.post('/portal/keys', { name: 'no csrf', scopes: [read], expires: '90d' }, { csrf: false });
    assert.equal(answer.status, 403);
    assert.equal(await server.deps.prisma.apiKey.count(), before);
    const revoke = await alice.post(`/portal/keys/${keyId}/revoke`, { confirm: 'yes' }, { csrf: false });
    assert.equal(revoke.status, 403);
  });

  test('a team with 1,100 keys: active and inactive tabs, a page at a time, newest first', async () => {
    const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email: 'mallory@example.com' }, include: { memberships: true } });
    const teamId = account.memberships[0]!.teamId;
    const start = Date.parse('2026-01-01T00:00:00Z');
    await server.deps.prisma.apiKey.createMany({
      data: Array.from({ length: 1100 }, (_, i) => ({
        id: `bulk${String(i).padStart(8, '0')}`,
        name: `bulk key ${i}`,
        teamId,
        scopes: [read],
        audiences: ['https://api.example.com'],
        digest: new Uint8Array(32),
        createdAt: new Date(start + i * 1000),
        revokedAt: i % 2 === 0 ? new Date(start + i * 1000 + 1) : null,
      })),
    });
    const rowsOf = (html: string) => [...html.matchAll(/<tr><td><a href="\/portal\/keys\/[^"]+">([^<]+)<\/a>/g)].map((m) => m[1]);
    const size = KEY_LIST_PAGE_SIZE;
    // Odd keys are live, even ones revoked; each tab newest first.
    const expected = (first: number, count: number) => Array.from({ length: count }, (_, i) => `bulk key ${first - 2 * i}`);
    const first = await (await mallory.get('/portal/keys')).text();
    assert.deepEqual(rowsOf(first), expected(1099, size));
    assert.match(first, /Active <span class="count">550<\/span>/);
    assert.match(first, /Revoked and expired <span class="count">550<\/span>/);
    assert.match(first, /href="\/portal\/keys\?page=2">Older keys/);
    assert.deepEqual(rowsOf(await (await mallory.get('/portal/keys?page=2')).text()), expected(1099 - 2 * size, size), 'page 2 picks up where page 1 ended');
    const lastPage = Math.ceil(550 / size);
    const last = await (await mallory.get(`/portal/keys?show=inactive&page=${lastPage}`)).text();
    assert.deepEqual(rowsOf(last), expected(1098 - 2 * size * (lastPage - 1), 550 - size * (lastPage - 1)));
    assert.doesNotMatch(last, /Older keys/);
    assert.match(last, /Newer keys/);
    for (const junk of ['?page=-3', '?page=abc', '?page=99999999999', '?show=<script>']) {
      assert.equal((await mallory.get(`/portal/keys${junk}`)).status, 200, junk);
    }
  });

  test('signed out, the key pages lead to sign-in', async () => {
    const answer = await fetch(`${server.url}/portal/keys`, { redirect: 'manual' });
    assert.equal(answer.status, 302);
    assert.match(answer.headers.get('location')!, /^\/portal\/sign-in/);
  });
});
