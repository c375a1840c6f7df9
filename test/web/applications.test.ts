import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair } from 'jose';
import { after, before, describe, test } from 'node:test';
import { APPLICATION_LIST_PAGE_SIZE } from '../../src/web/portal/applications.tsx';
import { createScope } from '../helpers/factories.ts';
import { basicAuth, clientKeyPair, postForm } from '../helpers/oauth.ts';
import { signUpAndSignIn, type PortalClient } from '../helpers/portal.ts';
import { discover, rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
let tokenEndpoint: string;
let alice: PortalClient;
let mallory: PortalClient;
let read: string;

const credentialsIn = (html: string) => {
  const clientId = /id="client-id"[^>]*value="(lkc_[0-9A-Za-z]{22})"/.exec(html)?.[1];
  const secret = /id="client-secret"[^>]*value="(lks_[0-9A-Za-z]{43})"/.exec(html)?.[1];
  assert.ok(clientId, 'the page shows the client id');
  rememberSecret(secret);
  return { clientId, secret };
};
const token = (clientId: string, secret: string) => postForm(tokenEndpoint, { grant_type: 'client_credentials', scope: read }, { authorization: basicAuth(clientId, secret) });

before(async () => {
  server = await startTestServer();
  tokenEndpoint = (await discover(server)).token_endpoint;
  read = await createScope(server, { name: 'orders:read', description: 'Read orders' });
  await createScope(server, { name: 'payouts:send', description: 'Send payouts', requiresApproval: true });
  [alice, mallory] = await Promise.all([signUpAndSignIn(server, null, 'alice@example.com'), signUpAndSignIn(server, null, 'mallory@example.com')]);
});
after(() => server?.close());

describe('Applications in the portal', () => {
  let clientId: string;

  test('an empty list says what to do next; the form has the contract names', async () => {
    const list = await (await alice.get('/portal/applications')).text();
    assert.match(list, /No applications yet/);
    assert.match(list, />New application</);
    const form = await (await alice.get('/portal/applications/new')).text();
    assert.match(form, /<label for="field-name">Name<\/label>/);
    assert.match(form, /orders:read/);
    assert.match(form, /payouts:send \(requires approval\)/);
    assert.match(form, /value="client_secret_basic" checked/);
    assert.match(form, /Public keys \(JWKS\)/);
    assert.match(form, />Create application</);
  });

  test('create → the shown secret gets a token → rotate secret → the new one works → revoke → refused', async () => {
    const created = await alice.postForm('/portal/applications/new', '/portal/applications', { name: 'order sync', scopes: [read], authMethod: 'client_secret_basic' });
    assert.equal(created.status, 200);
    assert.equal(created.headers.get('cache-control'), 'no-store');
    const html = await created.text();
    assert.match(html, /Copy it now: you will not see it again/);
    const first = credentialsIn(html);
    clientId = first.clientId;
    assert.ok(first.secret);
    assert.ok(html.includes(`${server.issuer}/token`), 'a curl example for the token endpoint');
    assert.match(html, /grant_type=client_credentials/);
    const issued = await token(clientId, first.secret!);
    assert.equal(issued.status, 200, issued.text);
    assert.equal(issued.body.token_type, 'Bearer');

    const list = await (await alice.get('/portal/applications')).text();
    assert.match(list, /order sync/);
    assert.ok(list.includes(clientId));
    assert.ok(!list.includes(first.secret!));

    const page = await (await alice.get(`/portal/applications/${clientId}`)).text();
    assert.match(page, />Rotate secret</);
    assert.match(page, />Revoke</);

    const confirm = await alice.post(`/portal/applications/${clientId}/rotate-secret`, { grace: 'now' });
    assert.equal(confirm.status, 200);
    assert.match(await confirm.text(), /stops working now/);
    assert.equal((await token(clientId, first.secret!)).status, 200, 'the confirmation page changes nothing');

    const rotated = await alice.post(`/portal/applications/${clientId}/rotate-secret`, { grace: 'now', confirm: 'yes' });
    assert.equal(rotated.status, 200);
    const second = credentialsIn(await rotated.text());
    assert.equal(second.clientId, clientId);
    assert.notEqual(second.secret, first.secret);
    assert.equal((await token(clientId, second.secret!)).status, 200);
    assert.equal((await token(clientId, first.secret!)).status, 401, 'the old secret stopped working');

    const revokeConfirm = await alice.post(`/portal/applications/${clientId}/revoke`, {});
    assert.equal(revokeConfirm.status, 200);
    assert.match(await revokeConfirm.text(), /tokens are refused within a second/);
    const revoked = await alice.post(`/portal/applications/${clientId}/revoke`, { confirm: 'yes' });
    assert.equal(revoked.status, 303);
    assert.equal(revoked.headers.get('location'), `/portal/applications/${clientId}`);
    assert.match(await (await alice.follow(revoked)).text(), /revoked/);
    const refused = await token(clientId, second.secret!);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error, 'invalid_client');

    const again = await alice.post(`/portal/applications/${clientId}/rotate-secret`, { grace: 'now', confirm: 'yes' });
    assert.equal(again.status, 303, 'rotating a revoked application is a flash, not a 500');

    const audit = await server.deps.prisma.auditEvent.findMany({ where: { subjectId: clientId, type: { startsWith: 'client.' } }, orderBy: { seq: 'asc' } });
    assert.deepEqual(
      audit.map((e) => e.type).filter((t) => !t.endsWith('check_failed')),
      ['client.created', 'client.secret_rotated', 'client.revoked'],
    );
    for (const event of audit) assert.equal(event.actorType, 'account');
  });

  test('Private key JWT: a public key set is accepted and no secret is shown', async () => {
    const { jwks } = await clientKeyPair();
    const created = await alice.postForm('/portal/applications/new', '/portal/applications', { name: 'signed', scopes: [read], authMethod: 'private_key_jwt', jwks: JSON.stringify(jwks) });
    assert.equal(created.status, 200);
    const html = await created.text();
    const { secret } = credentialsIn(html);
    assert.equal(secret, undefined);
    assert.match(html, /client_assertion/);
  });

  const privateJwks = async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    return JSON.stringify({ keys: [await exportJWK(privateKey)] });
  };
  const bad: [string, () => Promise<Record<string, string | string[]>>, string, RegExp][] = [
    ['no scopes', async () => ({ name: 'x', authMethod: 'client_secret_basic' }), 'scopes', /Choose at least one scope/],
    ['empty name', async () => ({ name: '', scopes: [read], authMethod: 'client_secret_basic' }), 'name', /Enter a name/],
    ['101-character name', async () => ({ name: 'n'.repeat(101), scopes: [read], authMethod: 'client_secret_basic' }), 'name', /at most 100 characters/],
    ['unknown scope', async () => ({ name: 'x', scopes: ['nope'], authMethod: 'client_secret_basic' }), 'scopes', /Unknown scope: nope/],
    ['name of a live application', async () => ({ name: 'signed', scopes: [read], authMethod: 'client_secret_basic' }), 'name', /already has this name/],
    ['audience not a URL', async () => ({ name: 'x', scopes: [read], audiences: 'ftp://files.example.com', authMethod: 'client_secret_basic' }), 'audiences', /Give full http\(s\) URLs/],
    ['JWKS not JSON', async () => ({ name: 'x', scopes: [read], authMethod: 'private_key_jwt', jwks: '{keys' }), 'jwks', /not valid JSON/],
    ['JWKS missing', async () => ({ name: 'x', scopes: [read], authMethod: 'private_key_jwt', jwks: '' }), 'jwks', /Paste the public keys/],
    ['JWKS without keys', async () => ({ name: 'x', scopes: [read], authMethod: 'private_key_jwt', jwks: '{"keys":[]}' }), 'jwks', /at least one key/],
    ['JWKS with a private key', async () => ({ name: 'x', scopes: [read], authMethod: 'private_key_jwt', jwks: await privateJwks() }), 'jwks', /public keys only/],
  ];
  for (const [what, fields, field, message] of bad) {
    test(`bad input (${what}) → 400, message beside the field, nothing stored`, async () => {
      const before = await server.deps.prisma.oAuthClient.count();
      const values = await fields();
      const answer = await alice.postForm('/portal/applications/new', '/portal/applications', values);
      assert.equal(answer.status, 400);
      const html = await answer.text();
      assert.match(html, new RegExp(`<p class="field-error" id="field-${field}-error">[^<]*${message.source}`));
      if (values.name) assert.ok(html.includes(`value="${values.name}"`), 'the name is kept');
      assert.equal(await server.deps.prisma.oAuthClient.count(), before);
    });
  }

  test('the application page has a Usage panel: token requests of the last 30 days and the last-used time', async () => {
    const created = await alice.postForm('/portal/applications/new', '/portal/applications', { name: 'usage meter', scopes: [read], authMethod: 'client_secret_basic' });
    assert.equal(created.status, 200);
    const { clientId, secret } = credentialsIn(await created.text());
    assert.match(await (await alice.get(`/portal/applications/${clientId}`)).text(), /0 successful checks and 0 failed checks/);
    for (let i = 0; i < 2; i++) assert.equal((await token(clientId, secret!)).status, 200);
    await server.deps.usage.flush();
    const page = await alice.get(`/portal/applications/${clientId}`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<h2 id="usage-heading">Usage<\/h2>/);
    assert.match(html, /2 successful checks and 0 failed checks/);
    assert.match(html, /<dt>Checks, last 30 days<\/dt>\s*<dd>2<\/dd>/);
    assert.match(html, /<dt>Last used<\/dt>\s*<dd>\s*<time datetime="/);
  });

  test('a scope needing approval becomes a request', async () => {
    const answer = await alice.postForm('/portal/applications/new', '/portal/applications', { name: 'payout bot', scopes: ['payouts:send'], authMethod: 'client_secret_basic' });
    assert.equal(answer.status, 303);
    assert.match(answer.headers.get('location')!, /^\/portal\/requests\/lkr_/);
    assert.equal(await server.deps.prisma.oAuthClient.count({ where: { name: 'payout bot' } }), 0);

    // The same outcome rules as an issued one: a live application's name is refused up front,
    // and a request carries no key set.
    const taken = await alice.postForm('/portal/applications/new', '/portal/applications', { name: 'signed', scopes: ['payouts:send'], authMethod: 'client_secret_basic' });
    assert.equal(taken.status, 400);
    assert.match(await taken.text(), /<p class="field-error" id="field-name-error">[^<]*already has this name/);
    const { jwks } = await clientKeyPair();
    const signed = await alice.postForm('/portal/applications/new', '/portal/applications', { name: 'signed payouts', scopes: ['payouts:send'], authMethod: 'private_key_jwt', jwks: JSON.stringify(jwks) });
    assert.equal(signed.status, 400);
    assert.match(await signed.text(), /<p class="field-error" id="field-authMethod-error">[^<]*requested with Client secret/);
    assert.equal(await server.deps.prisma.credentialRequest.count({ where: { name: { in: ['signed', 'signed payouts'] } } }), 0);
  });

  test('another team gets 404 for every route that takes the application id', async () => {
    const routes: [string, string, Record<string, string>][] = [
      ['GET', `/portal/applications/${clientId}`, {}],
      ['POST', `/portal/applications/${clientId}/rotate-secret`, { grace: 'now' }],
      ['POST', `/portal/applications/${clientId}/rotate-secret`, { grace: 'now', confirm: 'yes' }],
      ['POST', `/portal/applications/${clientId}/revoke`, {}],
      ['POST', `/portal/applications/${clientId}/revoke`, { confirm: 'yes' }],
      ['GET', '/portal/applications/lkc_AAAAAAAAAAAAAAAAAAAAAA', {}],
    ];
    await mallory.get('/portal/applications');
    for (const [method, path, fields] of routes) {
      const answer = method === 'GET' ? await mallory.get(path) : await mallory.post(path, fields);
      assert.equal(answer.status, 404, `${method} ${path}`);
      assert.ok(!(await answer.text()).includes('order sync'));
    }
    assert.ok(!(await (await mallory.get('/portal/applications')).text()).includes('order sync'));
  });

  test('a POST without its CSRF token is refused with 403', async () => {
    const before = await server.deps.prisma.oAuthClient.count();
    await alice.get('/portal/applications/new');
    const answer = await alice.post('/portal/applications', { name: 'no csrf', scopes: [read], authMethod: 'client_secret_basic' }, { csrf: false });
    assert.equal(answer.status, 403);
    assert.equal(await server.deps.prisma.oAuthClient.count(), before);
  });

  test('Active and Revoked tabs with counts, a page at a time, newest first', async () => {
    const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email: 'mallory@example.com' }, include: { memberships: true } });
    const teamId = account.memberships[0]!.teamId;
    const start = Date.parse('2026-01-01T00:00:00Z');
    const total = 2 * APPLICATION_LIST_PAGE_SIZE + 10;
    await server.deps.prisma.oAuthClient.createMany({
      data: Array.from({ length: total }, (_, i) => ({
        id: `lkc_bulk${String(i).padStart(18, '0')}`,
        name: `bulk app ${i}`,
        teamId,
        scopes: [read],
        audiences: ['https://api.example.com'],
        grantTypes: ['client_credentials'],
        authMethod: 'client_secret_basic',
        status: i % 2 === 0 ? 'revoked' : 'active',
        revokedAt: i % 2 === 0 ? new Date(start + i * 1000 + 1) : null,
        createdAt: new Date(start + i * 1000),
      })),
    });
    const rowsOf = (html: string) => [...html.matchAll(/<tr><td><a href="\/portal\/applications\/[^"]+">([^<]+)<\/a>/g)].map((m) => m[1]);
    const size = APPLICATION_LIST_PAGE_SIZE;
    // Odd ones are active, even ones revoked; each tab newest first.
    const expected = (first: number, count: number) => Array.from({ length: count }, (_, i) => `bulk app ${first - 2 * i}`);
    const half = total / 2;
    const first = await (await mallory.get('/portal/applications')).text();
    assert.deepEqual(rowsOf(first), expected(total - 1, size));
    assert.match(first, new RegExp(`Active <span class="count">${half}</span>`));
    assert.match(first, new RegExp(`Revoked <span class="count">${half}</span>`));
    assert.match(first, /href="\/portal\/applications\?page=2">Older applications/);
    assert.doesNotMatch(first, /Newer applications/);
    const second = await (await mallory.get('/portal/applications?page=2')).text();
    assert.deepEqual(rowsOf(second), expected(total - 1 - 2 * size, half - size), 'page 2 picks up where page 1 ended');
    assert.doesNotMatch(second, /Older applications/);
    assert.match(second, /href="\/portal\/applications">Newer applications/);
    const revoked = await (await mallory.get('/portal/applications?show=revoked&page=2')).text();
    assert.deepEqual(rowsOf(revoked), expected(total - 2 - 2 * size, half - size));
    assert.match(revoked, /href="\/portal\/applications\?show=revoked"[^>]*aria-current="page"|aria-current="page"[^>]*>Revoked/);
    for (const junk of ['?page=-3', '?page=abc', '?page=99999999999', '?show=<script>']) {
      assert.equal((await mallory.get(`/portal/applications${junk}`)).status, 200, junk);
    }
  });

  test('an empty Revoked tab says what lands there', async () => {
    const html = await (await alice.get('/portal/applications?show=revoked&page=9')).text();
    assert.match(html, /Revoked <span class="count">\d+<\/span>/);
    assert.doesNotMatch(html, /<tbody>/);
  });
});
