import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { checkAccessibility, launchBrowser, newPage, screenshot } from '../helpers/browser.ts';
import { cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { introspectAs } from '../helpers/oauth.ts';
import { signUpAndSignIn, STRONG_PASSWORD, type PortalClient } from '../helpers/portal.ts';
import { discover, rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';

// The catalog in the portal (issue 8 §1.2): scope checkboxes grouped by API, the audience taken
// from the chosen APIs, retired scopes no longer offered and flagged on the credentials that
// still hold them. The empty-catalog path is test/web/empty-catalog.test.ts.

const ORDERS = 'https://orders.example.test';
const BILLING = 'https://billing.example.test';
const EMAIL = 'catalog-dev@example.test';

let server: TestServer;
let alice: PortalClient;
let resourceServer: CreatedClient;
let introspectionEndpoint: string;
let heldKeyId: string;
let heldAppId: string;

const fullKeyIn = (html: string) => {
  const key = /value="(lk_[0-9A-Za-z]{12}_[0-9A-Za-z]{49})"/.exec(html)?.[1];
  assert.ok(key, 'the page shows the full key');
  rememberSecret(key);
  return key;
};
const clientIdIn = (html: string) => {
  const id = /id="client-id"[^>]*value="(lkc_[0-9A-Za-z]{22})"/.exec(html)?.[1];
  assert.ok(id, 'the page shows the client id');
  rememberSecret(/id="client-secret"[^>]*value="(lks_[0-9A-Za-z]{43})"/.exec(html)?.[1]);
  return id;
};
/** The inner fieldset of one API (or "Other scopes"): its legend and everything up to its end. */
const group = (html: string, legend: string) => {
  const match = new RegExp(`<fieldset class="scope-group"><legend>${legend}</legend>([\\s\\S]*?)</fieldset>`).exec(html);
  assert.ok(match, `a group with the legend ${legend}`);
  return match[1]!;
};
const checkboxes = (html: string) => [...html.matchAll(/<input type="checkbox" id="(field-scopes-\d+)" name="scopes" value="([^"]+)"/g)].map((m) => ({ id: m[1]!, value: m[2]! }));

before(async () => {
  server = await startTestServer();
  introspectionEndpoint = (await discover(server)).introspection_endpoint;
  for (const name of ['orders:read', 'orders:write', 'orders:legacy', 'billing:read', 'misc:ping']) await createScope(server, { name, description: `Lets a caller ${name}` });
  await cliJson(server, ['api', 'create', 'Orders', '--audience', ORDERS, '--scopes', 'orders:read orders:write orders:legacy', '--description', 'Orders and their lines.']);
  await cliJson(server, ['api', 'create', 'Billing', '--audience', BILLING, '--scopes', 'billing:read']);
  await cliJson(server, ['api', 'create', 'Reports', '--audience', 'https://reports.example.test']);
  resourceServer = await createClient(server, { scopes: ['misc:ping'], audiences: [ORDERS, BILLING] });
  alice = await signUpAndSignIn(server, null, EMAIL);
  // Credentials that hold orders:legacy before it is retired.
  const key = await alice.postForm('/portal/keys/new', '/portal/keys', { name: 'legacy sync', scopes: ['orders:read', 'orders:legacy'], expires: '30d' });
  heldKeyId = fullKeyIn(await key.text()).slice(3, 15);
  const app = await alice.postForm('/portal/applications/new', '/portal/applications', { name: 'legacy app', scopes: ['orders:legacy'], authMethod: 'client_secret_basic' });
  heldAppId = clientIdIn(await app.text());
  await cliJson(server, ['scope', 'retire', 'orders:legacy']);
});
after(() => server?.close());

describe('the catalog in the portal', () => {
  test('the New API key form groups one checkbox per scope under each API, global scopes last, no audience field', async () => {
    const html = await (await alice.get('/portal/keys/new')).text();
    assert.match(html, /<fieldset class="field" id="field-scopes"><legend>Scopes<\/legend>/);
    const orders = group(html, 'Orders');
    assert.match(orders, /Orders and their lines\. Audience <code>https:\/\/orders\.example\.test<\/code>/);
    assert.deepEqual(checkboxes(orders).map((c) => c.value), ['orders:read', 'orders:write'], 'the retired scope is not offered');
    assert.deepEqual(checkboxes(group(html, 'Billing')).map((c) => c.value), ['billing:read']);
    assert.match(group(html, 'Reports'), /No scopes to choose yet\./);
    assert.deepEqual(checkboxes(group(html, 'Other scopes')).map((c) => c.value), ['misc:ping']);
    // One checkbox per scope, labelled with the scope name, ids unique across groups.
    const all = checkboxes(html);
    assert.equal(new Set(all.map((c) => c.id)).size, all.length);
    for (const { id, value } of all) assert.match(html, new RegExp(`<label for="${id}"><span class="choice-label">${value}</span>`));
    assert.doesNotMatch(html, /name="audiences"/);
    assert.doesNotMatch(html, /orders:legacy/);
  });

  test('a key gets the audiences of the APIs chosen (a posted audience is ignored) and introspects active there', async () => {
    const created = await alice.postForm('/portal/keys/new', '/portal/keys', { name: 'billing reader', scopes: ['billing:read', 'misc:ping'], audiences: 'https://evil.example', expires: '30d' });
    assert.equal(created.status, 200);
    const html = await created.text();
    assert.match(html, /<dt>Audiences<\/dt>\s*<dd>https:\/\/billing\.example\.test<\/dd>/);
    const key = fullKeyIn(html);
    const answer = await introspectAs(introspectionEndpoint, resourceServer, key);
    assert.equal(answer.body.active, true);
    assert.equal(answer.body.aud, BILLING);
  });

  test('an application gets its API’s audience too', async () => {
    const created = await alice.postForm('/portal/applications/new', '/portal/applications', { name: 'order writer', scopes: ['orders:write'], authMethod: 'client_secret_basic' });
    assert.equal(created.status, 200);
    const id = clientIdIn(await created.text());
    assert.deepEqual((await server.deps.prisma.oAuthClient.findUniqueOrThrow({ where: { id } })).audiences, [ORDERS]);
  });

  test('a posted retired scope is refused beside the field, nothing stored', async () => {
    const before = await server.deps.prisma.apiKey.count();
    const refused = await alice.postForm('/portal/keys/new', '/portal/keys', { name: 'sneaky', scopes: ['orders:legacy'], expires: '30d' });
    assert.equal(refused.status, 400);
    const html = await refused.text();
    assert.match(html, /<p class="field-error" id="field-scopes-error">Scope orders:legacy is retired and can no longer be granted\. Choose from the list\.<\/p>/);
    assert.match(html, /aria-describedby="field-scopes-error"/);
    assert.equal(await server.deps.prisma.apiKey.count(), before);
    const app = await alice.postForm('/portal/applications/new', '/portal/applications', { name: 'sneaky app', scopes: ['orders:legacy'], authMethod: 'client_secret_basic' });
    assert.equal(app.status, 400);
    assert.match(await app.text(), /Scope orders:legacy is retired/);
  });

  test('a key and an application holding a retired scope show a warning; the rotated key drops the scope', async () => {
    const keyPage = await (await alice.get(`/portal/keys/${heldKeyId}`)).text();
    assert.match(keyPage, /<code class="scope">orders:legacy<\/code> <span class="badge badge-amber">retired<\/span>/);
    assert.match(keyPage, /<p class="warning" role="note"><strong>Retired scope:<\/strong> <code>orders:legacy<\/code> can no longer be granted\. It keeps working on this key until it is rotated; the new key will not have it\./);
    assert.doesNotMatch(keyPage, /<code class="scope">orders:read<\/code> <span class="badge/);

    const appPage = await (await alice.get(`/portal/applications/${heldAppId}`)).text();
    assert.match(appPage, /Retired scope:<\/strong> <code>orders:legacy<\/code> can no longer be granted\. It keeps working for this application until its secret is rotated, which removes it\./);

    const confirmKey = await alice.postForm(`/portal/keys/${heldKeyId}`, `/portal/keys/${heldKeyId}/rotate`, { grace: '1h' });
    assert.match(await confirmKey.text(), /The retired scope <code>orders:legacy<\/code> is not carried over\./);
    const confirmApp = await alice.postForm(`/portal/applications/${heldAppId}`, `/portal/applications/${heldAppId}/rotate-secret`, { grace: '1h' });
    assert.match(await confirmApp.text(), /The retired scope <code>orders:legacy<\/code> is not carried over\./);

    const rotated = await alice.postForm(`/portal/keys/${heldKeyId}`, `/portal/keys/${heldKeyId}/rotate`, { grace: '1h', confirm: 'yes' });
    assert.equal(rotated.status, 200);
    const successor = fullKeyIn(await rotated.text());
    const successorPage = await (await alice.get(`/portal/keys/${successor.slice(3, 15)}`)).text();
    assert.match(successorPage, /<dt>Scopes<\/dt>\s*<dd>\s*<span>\s*<code class="scope">orders:read<\/code>\s*<\/span>\s*<\/dd>/);
    assert.doesNotMatch(successorPage, /Retired scope/);
  });
});

describe('the catalog in a browser', () => {
  let browser: Browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(() => browser?.close());

  test('the grouped form and the retired-scope warning pass axe, and a key is made by label', async () => {
    const { page, close, problems } = await newPage(browser, server.url);
    try {
      await page.goto('/portal/sign-in');
      await page.getByLabel('Email').fill(EMAIL);
      await page.getByLabel('Password').fill(STRONG_PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.waitForURL(/\/portal(\/|$)/);

      await page.goto('/portal/keys/new');
      await checkAccessibility(page, 'new API key, scopes grouped by API');
      await screenshot(page, 'catalog-new-key');
      const orders = page.getByRole('group', { name: 'Orders', exact: true });
      assert.equal(await orders.getByRole('checkbox').count(), 2);
      await page.getByLabel('Name').fill('orders in a browser');
      await orders.getByLabel('orders:read').check();
      await page.getByRole('button', { name: 'Create key' }).click();
      await page.getByText('Copy it now').waitFor();
      assert.match(await page.locator('dl.details').innerText(), /https:\/\/orders\.example\.test/);

      await page.goto(`/portal/keys/${heldKeyId}`);
      await page.getByText('Retired scope:').waitFor();
      await checkAccessibility(page, 'key page with a retired scope');
      await screenshot(page, 'catalog-retired-scope');
      assert.deepEqual(problems.pageErrors, []);
    } finally {
      await close();
    }
  });
});
