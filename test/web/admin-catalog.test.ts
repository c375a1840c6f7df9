import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TOTP } from 'otpauth';
import type { Browser } from 'playwright-core';
import { beginEnrolment, confirmEnrolment } from '../../src/accounts/mfa.ts';
import { checkAccessibility, launchBrowser, newPage, screenshot } from '../helpers/browser.ts';
import { cliJson } from '../helpers/cli.ts';
import { createScope } from '../helpers/factories.ts';
import { PortalClient, signUpAndSignIn, STRONG_PASSWORD } from '../helpers/portal.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// The admin Catalog screens (issue 8 §1.2): admins create, describe, mark and retire scopes and
// manage APIs; auditors read the same pages without a form; developers get 404.

let server: TestServer;
let admin: Staff;
let auditor: Staff;
let developer: PortalClient;

interface Staff {
  email: string;
  id: string;
  client: PortalClient;
  /** Unused recovery codes: each signs in or steps up once. */
  codes: string[];
}

/** An admin or auditor with MFA on, signed in with a recovery code (which also counts as a step-up). */
async function staff(role: 'admin' | 'auditor', email: string): Promise<Staff> {
  const { id } = await cliJson<{ id: string }>(server, ['admin', 'create', '--email', email, '--password', STRONG_PASSWORD, '--role', role]);
  const { secret } = await beginEnrolment(server.deps, id);
  const codes = await confirmEnrolment(server.deps, id, new TOTP({ secret }).generate(), { type: 'system' });
  assert.ok(codes);
  const client = new PortalClient(server.url);
  const signedIn = await client.postForm('/portal/sign-in', '/portal/sign-in', { email, password: STRONG_PASSWORD });
  assert.equal(signedIn.status, 303);
  const verified = await client.postForm('/portal/sign-in/verify', '/portal/sign-in/verify', { code: codes.pop()! });
  assert.equal(verified.status, 303, 'signed in with a recovery code');
  return { email, id, client, codes };
}

const events = (type: string, subjectId?: string) => server.deps.prisma.auditEvent.findMany({ where: { type, ...(subjectId ? { subjectId } : {}) }, orderBy: { seq: 'asc' } });
const scopeRow = (name: string) => server.deps.prisma.scope.findUnique({ where: { name } });

before(async () => {
  server = await startTestServer();
  [admin, auditor, developer] = await Promise.all([
    staff('admin', 'catalog-admin@example.test'),
    staff('auditor', 'catalog-auditor@example.test'),
    signUpAndSignIn(server, null, 'catalog-developer@example.test'),
  ]);
  await createScope(server, { name: 'orders:read', description: 'Read orders' });
  await createScope(server, { name: 'orders:write', description: 'Change orders' });
});
after(() => server?.close());

describe('admin: scopes', () => {
  test('the catalog lists scopes and offers the forms, linked from the admin navigation', async () => {
    const page = await admin.client.get('/admin/catalog');
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<a href="\/admin\/catalog" aria-current="page">Catalog<\/a>/);
    assert.match(html, /<a href="\/admin\/catalog\/scopes\/orders%3Aread"><code>orders:read<\/code><\/a><\/td><td>Read orders<\/td><td><span class="muted">global<\/span>/);
    assert.match(html, />Create scope</);
    assert.match(html, />Create API</);
    assert.match(html, /No APIs yet/);
  });

  test('create: bad input is refused beside the field, a taken name too, nothing half-done', async () => {
    const before = await server.deps.prisma.scope.count();
    const bad = await admin.client.postForm('/admin/catalog', '/admin/catalog/scopes', { name: 'no spaces please', description: '' });
    assert.equal(bad.status, 400);
    const html = await bad.text();
    assert.match(html, /id="field-name-error">Use 1 to 128 of A-Z a-z 0-9 : \. _ \/ -/);
    assert.match(html, /id="field-description-error">Describe what the scope lets a caller do\./);
    assert.match(html, /value="no spaces please"/, 'what was typed is kept');
    const taken = await admin.client.postForm('/admin/catalog', '/admin/catalog/scopes', { name: 'orders:read', description: 'again' });
    assert.equal(taken.status, 400);
    assert.match(await taken.text(), /id="field-name-error">Scope orders:read already exists\. Choose another name\./);
    assert.equal(await server.deps.prisma.scope.count(), before);
  });

  test('create, then describe and mark it: each change audited with the admin', async () => {
    const created = await admin.client.postForm('/admin/catalog', '/admin/catalog/scopes', { name: 'payouts:send', description: 'Send payouts', requiresApproval: 'yes' });
    assert.equal(created.status, 303);
    assert.equal(created.headers.get('location'), '/admin/catalog/scopes/payouts%3Asend');
    assert.equal((await scopeRow('payouts:send'))?.requiresApproval, true);
    const [event] = await events('scope.created', 'payouts:send');
    assert.equal(event!.actorId, admin.id);
    assert.ok(event!.requestId, 'the request id is recorded');

    const page = await (await admin.client.follow(created)).text();
    assert.match(page, /Scope payouts:send created/);
    assert.match(page, />Save scope</);
    const saved = await admin.client.post('/admin/catalog/scopes/payouts%3Asend', { description: 'Send payouts to sellers' });
    assert.equal(saved.status, 303);
    const row = await scopeRow('payouts:send');
    assert.equal(row?.description, 'Send payouts to sellers');
    assert.equal(row?.requiresApproval, false, 'an unchecked box unmarks it');
    const [update] = await events('scope.updated', 'payouts:send');
    assert.deepEqual(update!.data, { description: 'Send payouts to sellers', requiresApproval: false });
    assert.equal(update!.actorId, admin.id);
  });

  test('retire: a reason is required, a confirmation names what happens, and retiring again changes nothing', async () => {
    await admin.client.get('/admin/catalog/scopes/orders%3Awrite');
    const noReason = await admin.client.post('/admin/catalog/scopes/orders%3Awrite/retire', { reason: ' ' });
    assert.equal(noReason.status, 400);
    assert.match(await noReason.text(), /id="field-reason-error">Give a reason/);
    const confirm = await admin.client.post('/admin/catalog/scopes/orders%3Awrite/retire', { reason: 'replaced by orders:manage' });
    assert.equal(confirm.status, 200);
    const html = await confirm.text();
    assert.match(html, /Retire <code>orders:write<\/code> — no new key, application or request will get it/);
    assert.equal((await scopeRow('orders:write'))?.retiredAt, null, 'nothing before the confirmation');
    const done = await admin.client.post('/admin/catalog/scopes/orders%3Awrite/retire', { reason: 'replaced by orders:manage', confirm: 'yes' });
    assert.equal(done.status, 303);
    assert.ok((await scopeRow('orders:write'))?.retiredAt);
    const page = await (await admin.client.follow(done)).text();
    assert.match(page, /Scope orders:write retired/);
    assert.match(page, /Retired: no new key, application or request can be granted this scope/);
    assert.doesNotMatch(page, />Retire<\/button>/);

    const again = await admin.client.post('/admin/catalog/scopes/orders%3Awrite/retire', { reason: 'again', confirm: 'yes' });
    assert.equal(again.status, 303);
    assert.match(await (await admin.client.follow(again)).text(), /Nothing changed: this scope was already retired\./);
    const retired = await events('scope.retired', 'orders:write');
    assert.equal(retired.length, 1);
    assert.deepEqual(retired[0]!.data, { api: null, reason: 'replaced by orders:manage' });
    assert.equal(retired[0]!.actorId, admin.id);
  });

  test('a stale step-up asks for a code, then goes ahead with the posted fields', async () => {
    await server.deps.prisma.session.updateMany({ where: { accountId: admin.id }, data: { mfaAt: new Date(Date.now() - 10 * 60_000) } });
    const prompt = await admin.client.postForm('/admin/catalog', '/admin/catalog/scopes', { name: 'ledger:read', description: 'Read the ledger', requiresApproval: 'yes' });
    assert.equal(prompt.status, 200);
    assert.match(await prompt.text(), /Confirm it is you/);
    assert.equal(await scopeRow('ledger:read'), null);
    const done = await admin.client.post('/admin/catalog/scopes', { name: 'ledger:read', description: 'Read the ledger', requiresApproval: 'yes', step_up_code: admin.codes.pop()! });
    assert.equal(done.status, 303);
    assert.equal((await scopeRow('ledger:read'))?.requiresApproval, true);
  });

  test('unknown scopes are 404', async () => {
    assert.equal((await admin.client.get('/admin/catalog/scopes/nope')).status, 404);
    assert.equal((await admin.client.get('/admin/catalog/scopes/%20bad%20')).status, 404);
    assert.equal((await admin.client.post('/admin/catalog/scopes/nope/retire', { reason: 'x', confirm: 'yes' })).status, 404);
  });
});

describe('admin: APIs', () => {
  let ordersPath: string;

  test('create an API with its scopes; a taken audience or another API’s scope is refused beside the field', async () => {
    const created = await admin.client.postForm('/admin/catalog', '/admin/catalog/apis', { name: 'Orders', audience: 'https://orders.example.test', description: 'Orders API', scopes: ['orders:read'] });
    assert.equal(created.status, 303);
    ordersPath = created.headers.get('location')!;
    assert.match(ordersPath, /^\/admin\/catalog\/apis\/[0-9a-f-]{36}$/);
    const page = await (await admin.client.follow(created)).text();
    assert.match(page, /API Orders created/);
    assert.match(page, /<code>https:\/\/orders\.example\.test<\/code>/);
    const [event] = await events('api.created');
    assert.equal(event!.actorId, admin.id);
    assert.deepEqual((event!.data as { scopes: string[] }).scopes, ['orders:read']);

    const before = await server.deps.prisma.api.count();
    const cases: [Record<string, string | string[]>, string, RegExp][] = [
      [{ name: 'Other', audience: 'https://orders.example.test' }, 'audience', /The API Orders already has the audience https:\/\/orders\.example\.test\./],
      [{ name: 'Orders', audience: 'https://new.example.test' }, 'name', /An API named Orders already exists\./],
      [{ name: 'Other', audience: 'https://new.example.test', scopes: ['orders:read'] }, 'scopes', /Scope orders:read belongs to the API Orders\./],
      [{ name: 'Other', audience: 'https://new.example.test', scopes: ['orders:write'] }, 'scopes', /Scope orders:write is retired\. Choose from the list\./],
      [{ name: 'Other', audience: 'not a url' }, 'audience', /Give a full http\(s\) URL/],
      [{ name: ' ', audience: 'https://new.example.test' }, 'name', /Enter a name\./],
    ];
    for (const [fields, field, message] of cases) {
      const refused = await admin.client.postForm('/admin/catalog', '/admin/catalog/apis', { description: '', ...fields });
      assert.equal(refused.status, 400, JSON.stringify(fields));
      const html = await refused.text();
      const beside = new RegExp(`id="field-${field}-error">([^<]*)<`).exec(html)?.[1] ?? '';
      assert.match(beside, message, `${JSON.stringify(fields)}: ${beside}`);
    }
    assert.equal(await server.deps.prisma.api.count(), before);
  });

  test('edit an API: its audience, description and scopes; its retired scopes stay its own', async () => {
    await admin.client.get(ordersPath);
    const saved = await admin.client.post(ordersPath, { audience: 'https://orders.example.test/v2', description: 'Orders, v2', scopes: ['orders:read', 'ledger:read'] });
    assert.equal(saved.status, 303);
    const api = await server.deps.prisma.api.findUniqueOrThrow({ where: { name: 'Orders' }, include: { scopes: { orderBy: { name: 'asc' } } } });
    assert.equal(api.audience, 'https://orders.example.test/v2');
    assert.deepEqual(api.scopes.map((s) => s.name), ['ledger:read', 'orders:read']);
    const html = await (await admin.client.follow(saved)).text();
    assert.match(html, /API Orders saved/);
    assert.match(html, /Changes apply to credentials created from now on/);
  });

  test('unknown or malformed API ids are 404', async () => {
    assert.equal((await admin.client.get('/admin/catalog/apis/00000000-0000-4000-8000-000000000000')).status, 404);
    assert.equal((await admin.client.get('/admin/catalog/apis/not-a-uuid')).status, 404);
  });
});

describe('auditors and developers', () => {
  const readPages = async () => ['/admin/catalog', '/admin/catalog/scopes/orders%3Aread', `/admin/catalog/apis/${(await server.deps.prisma.api.findFirstOrThrow()).id}`];

  test('an auditor reads every catalog page without an action, and a forged post is refused', async () => {
    for (const path of await readPages()) {
      const page = await auditor.client.get(path);
      assert.equal(page.status, 200, path);
      const html = await page.text();
      assert.match(html, /You are signed in as an auditor/);
      assert.match(html, /orders:read/);
      for (const button of ['Create scope', 'Create API', 'Save scope', 'Save API', 'Retire']) assert.doesNotMatch(html, new RegExp(`>${button}</button>`), `${path}: ${button}`);
    }
    const before = await server.deps.prisma.scope.count();
    const forged = await auditor.client.post('/admin/catalog/scopes', { name: 'forged:scope', description: 'forged' });
    assert.equal(forged.status, 403);
    assert.match(await forged.text(), /Auditors can read every admin page but change nothing/);
    const retire = await auditor.client.post('/admin/catalog/scopes/orders%3Aread/retire', { reason: 'forged', confirm: 'yes' });
    assert.equal(retire.status, 403);
    assert.equal(await server.deps.prisma.scope.count(), before);
    assert.equal((await scopeRow('orders:read'))?.retiredAt, null);
  });

  test('a developer gets 404 on every catalog page and post', async () => {
    for (const path of await readPages()) {
      assert.equal((await developer.get(path)).status, 404, path);
      assert.equal((await developer.post(path, { description: 'x' })).status, 404, `POST ${path}`);
    }
    assert.equal((await developer.post('/admin/catalog/scopes', { name: 'dev:scope', description: 'x' })).status, 404);
    assert.equal(await scopeRow('dev:scope'), null);
  });

  test('posts without a CSRF token are refused', async () => {
    assert.equal((await admin.client.post('/admin/catalog/scopes', { name: 'nocsrf', description: 'x' }, { csrf: false })).status, 403);
    assert.equal(await scopeRow('nocsrf'), null);
  });
});

describe('the catalog screens in a browser', () => {
  let browser: Browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(() => browser?.close());

  test('an admin finds, edits and retires a scope by label; every page passes axe', async () => {
    const { page, close, problems } = await newPage(browser, server.url);
    try {
      await page.goto('/portal/sign-in');
      await page.getByLabel('Email').fill(admin.email);
      await page.getByLabel('Password').fill(STRONG_PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByLabel('Authentication code').fill(admin.codes.pop()!);
      await page.getByRole('button', { name: 'Verify', exact: true }).click();
      await page.waitForURL(/\/portal(\/|$)/);

      await page.goto('/admin');
      await page.getByRole('link', { name: 'Catalog', exact: true }).click();
      await page.waitForURL(/\/admin\/catalog$/);
      await checkAccessibility(page, 'admin catalog');
      await screenshot(page, 'admin-catalog');
      await page.getByLabel('Name', { exact: true }).first().fill('reports:read');
      await page.getByLabel('Description', { exact: true }).first().fill('Read reports');
      await page.getByRole('button', { name: 'Create scope' }).click();
      await page.getByText('Scope reports:read created').waitFor();
      await checkAccessibility(page, 'admin scope page');

      await page.getByLabel('Requires approval').check();
      await page.getByRole('button', { name: 'Save scope' }).click();
      await page.getByText('Scope reports:read saved.').waitFor();
      assert.equal((await scopeRow('reports:read'))?.requiresApproval, true);

      await page.getByLabel('Reason').fill('reports move to the new API');
      await page.getByRole('button', { name: 'Retire', exact: true }).click();
      await page.getByText('no new key, application or request will get it').waitFor();
      await checkAccessibility(page, 'admin retire confirmation');
      await page.getByRole('button', { name: 'Retire', exact: true }).click();
      await page.getByText('Scope reports:read retired').waitFor();
      assert.ok((await scopeRow('reports:read'))?.retiredAt);

      await page.goto('/admin/catalog');
      await page.getByRole('table', { name: 'APIs' }).getByRole('link', { name: 'Orders', exact: true }).click();
      await page.getByRole('button', { name: 'Save API' }).waitFor();
      await checkAccessibility(page, 'admin API page');
      await screenshot(page, 'admin-catalog-api');
      assert.deepEqual(problems.pageErrors, []);
      assert.deepEqual(problems.consoleErrors, []);
    } finally {
      await close();
    }
  });
});
