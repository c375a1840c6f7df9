import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TOTP } from 'otpauth';
import type { Browser, Page } from 'playwright-core';
import { beginEnrolment, confirmEnrolment } from '../../src/accounts/mfa.ts';
import { staleStepUp } from '../helpers/admin.ts';
import { checkAccessibility, launchBrowser, newPage, screenshot, type TestPage } from '../helpers/browser.ts';
import { cliJson } from '../helpers/cli.ts';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';
import { createClient, createScope } from '../helpers/factories.ts';
import { introspectAs } from '../helpers/oauth.ts';
import { signUpAndSignIn, STRONG_PASSWORD } from '../helpers/portal.ts';
import { spawnServer, type ServerProcess } from '../helpers/processes.ts';
import { eventually, rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';

// Issue 8 §3, in a real browser through the contract's names (DESIGN §2 Pages): an admin is sent
// through the two-factor set-up, signs in with TOTP, finds a key by its id and revokes it with
// a reason; a second server process (another node on the same Postgres) refuses the key within
// a second; the event with the reason is on the key's page. An auditor sees the same pages
// without any action, and a forged post from the auditor changes nothing. axe on every page.
const API = 'https://orders.example.test';
const ADMIN = 'ops-admin@example.test';
const AUDITOR = 'ops-auditor@example.test';
const skip = process.env.DATABASE_URL ? false : 'needs DATABASE_URL (two processes on one Postgres)';

let db: TestDatabase;
let server: TestServer;
let nodeB: ServerProcess;
let browser: Browser;
let tab: TestPage;
let page: Page;
let resourceServer: Awaited<ReturnType<typeof createClient>>;
let key: { id: string; key: string };
let spareKey: { id: string; key: string };
let clientId: string;
let developerId: string;
let teamId: string;
let requestId: string;

const button = (name: string) => page.getByRole('button', { name, exact: true });
const link = (name: string) => page.getByRole('link', { name, exact: true });
const visit = async (label: string, shot?: string) => {
  await checkAccessibility(page, label);
  if (shot) await screenshot(page, `admin-${shot}`);
};
const introspectOnB = async (token: string) => (await introspectAs(`${nodeB.url}/introspect`, resourceServer, token)).body;

describe('the admin screens, in a browser', { skip }, () => {
  before(async () => {
    db = await testDatabase();
    server = await startTestServer({ database: db });
    nodeB = await spawnServer(db.url!, server.issuer);
    const scope = await createScope(server, { name: 'orders.read', description: 'Read orders' });
    const gated = await createScope(server, { name: 'orders.write', description: 'Change orders', requiresApproval: true });
    resourceServer = await createClient(server, { scopes: [scope], audiences: [API] });
    const developer = await signUpAndSignIn(server, null, 'dev@example.test');
    assert.equal((await developer.postForm('/portal/keys/new', '/portal/keys', { name: 'write access', scopes: [gated], expires: '90d' })).status, 303);
    const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email: 'dev@example.test' } });
    developerId = account.id;
    teamId = (await server.deps.prisma.team.findFirstOrThrow({ where: { personalAccountId: account.id } })).id;
    requestId = (await server.deps.prisma.credentialRequest.findFirstOrThrow({ where: { teamId } })).id;
    key = await cliJson(server, ['key', 'create', '--name', 'orders reader', '--scopes', scope, '--audience', API, '--owner', account.email]);
    spareKey = await cliJson(server, ['key', 'create', '--name', 'orders backup', '--scopes', scope, '--audience', API, '--owner', account.email]);
    rememberSecret(key.key);
    rememberSecret(spareKey.key);
    const app = await createClient(server, { name: 'order sync', scopes: [scope], owner: account.email });
    clientId = app.client_id;
    await cliJson(server, ['admin', 'create', '--email', ADMIN, '--password', STRONG_PASSWORD]);
    browser = await launchBrowser();
    tab = await newPage(browser, server.url);
    page = tab.page;
  });

  after(async () => {
    await tab?.close();
    await browser?.close();
    const code = await nodeB?.stop();
    await server?.close();
    await db?.drop();
    assert.equal(code, 0, 'node B exits cleanly');
  });

  let secret: string;
  let recoveryCodes: string[];

  it('signed out, /admin leads to sign-in; an admin without MFA is sent through its set-up first', async () => {
    await page.goto('/admin');
    assert.equal(new URL(page.url()).pathname, '/portal/sign-in');
    await page.getByLabel('Email').fill(ADMIN);
    await page.getByLabel('Password').fill(STRONG_PASSWORD);
    await button('Sign in').click();
    // Back to /admin, which sends an admin without two-factor authentication to Security.
    assert.equal(new URL(page.url()).pathname, '/portal/security');
    await visit('security, sent by the admin gate', 'mfa-required');
    assert.match((await page.textContent('main')) ?? '', /Turn on two-factor authentication first/);
    await button('Set up two-factor authentication').click();
    secret = ((await page.locator('#setup-key').textContent()) ?? '').replace(/\s/g, '');
    await page.getByLabel('Authentication code').fill(new TOTP({ secret }).generate());
    await button('Turn on').click();
    await visit('recovery codes');
    recoveryCodes = (await page.locator('.codes li').allTextContents()).map((c) => c.trim());
    assert.equal(recoveryCodes.length, 10);
  });

  it('signs in again with TOTP and reaches the dashboard from the portal’s Admin link', async () => {
    await button('Sign out').click();
    await page.goto('/portal/sign-in');
    await page.getByLabel('Email').fill(ADMIN);
    await page.getByLabel('Password').fill(STRONG_PASSWORD);
    await button('Sign in').click();
    await page.getByLabel('Authentication code').fill(new TOTP({ secret }).generate({ timestamp: Date.now() + 30_000 }));
    await button('Verify').click();
    assert.equal(new URL(page.url()).pathname, '/portal');
    await link('Admin').click();
    assert.equal(new URL(page.url()).pathname, '/admin');
    await visit('dashboard', 'dashboard');
    const main = (await page.textContent('main')) ?? '';
    assert.match(main, /Pending requests/);
    assert.match(main, /No alerts in the last 7 days/);
  });

  it('searches the key by its id and revokes it with a reason; node B refuses it within a second', async () => {
    assert.equal((await introspectOnB(key.key)).active, true, 'node B knows the key (and caches it)');
    await page.getByLabel('Search').fill(key.id);
    await button('Search').click();
    await visit('search results', 'search');
    await page.getByRole('link', { name: `lk_${key.id}` }).click();
    await visit('key page', 'key');
    // Suspend and Revoke each have a Reason: the field is found by its section.
    await page.getByRole('region', { name: 'Revoke' }).getByLabel('Reason').fill('posted in a public issue');
    await button('Revoke').click();
    await visit('revoke confirmation', 'revoke-confirm');
    assert.match((await page.textContent('main')) ?? '', /posted in a public issue/);
    await button('Revoke').click();
    assert.equal(new URL(page.url()).pathname, `/admin/keys/${key.id}`);
    await visit('key page, revoked', 'key-revoked');
    assert.match((await page.getByRole('status').first().textContent()) ?? '', /revoked/);
    await eventually(() => introspectOnB(key.key), (answer) => answer.active === false, 1_000, 'node B still answers active after 1 s');
    // The event, with the reason and the admin, on the key's page.
    const events = page.locator('#events-heading + .table-wrap');
    assert.match((await events.textContent()) ?? '', /api_key\.revoked/);
    assert.match((await events.textContent()) ?? '', /posted in a public issue/);
    assert.match((await events.textContent()) ?? '', new RegExp(ADMIN));
    const event = await server.deps.prisma.auditEvent.findFirstOrThrow({ where: { type: 'api_key.revoked', subjectId: key.id } });
    assert.ok(event.requestId, 'the request id is recorded');
  });

  it('the audit screen shows the revocation with its reason, the admin and the request id', async () => {
    await link('Audit log').click();
    assert.equal(new URL(page.url()).pathname, '/admin/audit');
    await visit('audit log', 'audit');
    await page.getByLabel('Event type').fill('api_key.revoked');
    await page.getByLabel('Subject id').fill(key.id);
    await button('Apply filters').click();
    assert.equal(new URL(page.url()).search, `?type=api_key.revoked&subjectId=${key.id}`, 'the filters are in the address');
    await visit('audit log, filtered', 'audit-filtered');
    const rows = page.getByRole('table', { name: 'Audit events' }).locator('tbody tr');
    assert.equal(await rows.count(), 1);
    const row = (await rows.first().textContent()) ?? '';
    assert.match(row, /api_key\.revoked/);
    assert.match(row, /posted in a public issue/);
    assert.match(row, new RegExp(ADMIN));
    const event = await server.deps.prisma.auditEvent.findFirstOrThrow({ where: { type: 'api_key.revoked', subjectId: key.id } });
    assert.match(row, new RegExp(event.requestId!));
    // A bad time is refused beside its field, and the page says how to fix it.
    await page.getByLabel('From').fill('last tuesday');
    await button('Apply filters').click();
    await visit('audit log, refused filter', 'audit-error');
    assert.match((await page.locator('#field-from-error').textContent()) ?? '', /Enter a UTC time such as/);
    // The refused filter's page is a 400, which the browser logs; nothing else was logged.
    assert.deepEqual(tab.problems.consoleErrors.splice(0), ['Failed to load resource: the server responded with a status of 400 (Bad Request)']);
    // From the key's page, its events in the audit log.
    await page.goto(`/admin/keys/${key.id}`);
    await link('All its events in the audit log').click();
    assert.equal(new URL(page.url()).searchParams.get('subjectId'), key.id);
    assert.ok((await page.getByRole('table', { name: 'Audit events' }).locator('tbody tr').count()) >= 2, 'created and revoked');
  });

  it('rotates the signing key from the Signing keys screen, and gives a key a plan', async () => {
    await link('Signing keys').click();
    await visit('signing keys', 'signing-keys');
    await page.getByLabel('Reason').fill('drill');
    await button('Rotate now').click();
    await visit('rotate confirmation', 'rotate-confirm');
    await button('Rotate now').click();
    assert.equal(new URL(page.url()).pathname, '/admin/signing-keys');
    await visit('signing keys, rotation under way', 'signing-keys-rotating');
    assert.match((await page.getByRole('status').first().textContent()) ?? '', /is published; it starts signing at/);
    assert.equal(await button('Rotate now').count(), 0);
    await link('Plans').click();
    await visit('plans, empty', 'plans-empty');
    await page.getByLabel('Name').fill('partner');
    await page.getByLabel('Rate limit').fill('100/1m');
    await page.getByLabel('Quota').fill('50000/month');
    await button('Create plan').click();
    await visit('plans', 'plans');
    await page.goto(`/admin/keys/${spareKey.id}`);
    await link('Change plan').click();
    await visit('key plan', 'key-plan');
    await page.getByLabel('Plan', { exact: true }).selectOption('partner');
    await button('Save plan').click();
    assert.equal(new URL(page.url()).pathname, `/admin/keys/${spareKey.id}`);
    await visit('key page with a plan', 'key-with-plan');
    assert.match((await page.locator('#limits-heading + dl').textContent()) ?? '', /partner.*100\/1m.*50000\/month/);
  });

  it('suspends a key from its page with a reason; node B refuses it within a second; Unsuspend restores it', async () => {
    assert.equal((await introspectOnB(spareKey.key)).active, true, 'node B knows the key (and caches it)');
    await page.goto(`/admin/keys/${spareKey.id}`);
    await page.getByRole('region', { name: 'Suspend' }).getByLabel('Reason').fill('traffic spiked 100x');
    await button('Suspend').click();
    await visit('suspend key confirmation', 'key-suspend-confirm');
    assert.match((await page.textContent('main')) ?? '', /traffic spiked 100x/);
    await button('Suspend').click();
    assert.equal(new URL(page.url()).pathname, `/admin/keys/${spareKey.id}`);
    await visit('key page, suspended', 'key-suspended');
    assert.match((await page.getByRole('status').first().textContent()) ?? '', /suspended/);
    const facts = (await page.locator('dl.details').first().textContent()) ?? '';
    assert.match(facts, /Status\s*suspended/);
    assert.match(facts, /Suspended.*traffic spiked 100x/);
    assert.equal(await button('Suspend').count(), 0);
    await eventually(() => introspectOnB(spareKey.key), (answer) => answer.active === false, 1_000, 'node B still answers active after 1 s');
    const events = (await page.locator('#events-heading + .table-wrap').textContent()) ?? '';
    assert.match(events, new RegExp(`api_key\\.suspended.*${ADMIN}.*traffic spiked 100x`));
    await page.getByRole('region', { name: 'Unsuspend' }).getByLabel('Reason').fill('expected load test');
    await button('Unsuspend').click();
    await button('Unsuspend').click();
    await visit('key page, unsuspended');
    assert.match((await page.locator('dl.details').first().textContent()) ?? '', /Status\s*active/);
    await eventually(() => introspectOnB(spareKey.key), (answer) => answer.active === true, 1_000, 'node B still answers inactive after 1 s');
  });

  it('with a stale step-up, asks for a code and then goes ahead with the same form', async () => {
    const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email: ADMIN } });
    await staleStepUp(server, account.id);
    await page.goto(`/admin/teams/${teamId}`);
    await visit('team page', 'team');
    await page.getByLabel('Reason').fill('chargeback fraud');
    await button('Suspend').click();
    await visit('step-up prompt', 'step-up');
    // This window's and the next one's codes were spent signing in: a recovery code answers.
    await page.getByLabel('Authentication code').fill(recoveryCodes[0]!);
    await button('Verify').click();
    await visit('suspend confirmation');
    assert.match((await page.textContent('main')) ?? '', /chargeback fraud/);
    await button('Suspend').click();
    assert.equal((await server.deps.prisma.team.findUniqueOrThrow({ where: { id: teamId } })).status, 'suspended');
    await page.getByLabel('Reason').fill('resolved with the bank');
    await button('Unsuspend').click();
    await button('Unsuspend').click();
    assert.equal((await server.deps.prisma.team.findUniqueOrThrow({ where: { id: teamId } })).status, 'active');
  });

  it('shows the application, developer and request pages', async () => {
    await page.goto(`/admin/applications/${clientId}`);
    await visit('application page', 'application');
    await page.getByRole('link', { name: 'dev@example.test' }).first().click();
    assert.equal(new URL(page.url()).pathname, `/admin/teams/${teamId}`);
    await page.getByRole('link', { name: 'dev@example.test' }).first().click();
    assert.equal(new URL(page.url()).pathname, `/admin/developers/${developerId}`);
    await visit('developer page', 'developer');
    await link('Requests').click();
    await visit('requests', 'requests');
    await page.getByRole('link', { name: 'write access' }).click();
    await visit('request page', 'request');
    assert.deepEqual(tab.problems.consoleErrors, [], 'no CSP violation or script error');
    assert.deepEqual(tab.problems.pageErrors, []);
  });

  it('an auditor sees the same pages and no action; a forged post changes nothing', async () => {
    const created = await cliJson<{ id: string }>(server, ['admin', 'create', '--email', AUDITOR, '--password', STRONG_PASSWORD, '--role', 'auditor']);
    const enrolment = await beginEnrolment(server.deps, created.id);
    assert.ok(await confirmEnrolment(server.deps, created.id, new TOTP({ secret: enrolment.secret }).generate({ timestamp: Date.now() - 30_000 }), { type: 'cli' }));
    await tab.close();
    tab = await newPage(browser, server.url);
    page = tab.page;
    await page.goto('/admin');
    await page.getByLabel('Email').fill(AUDITOR);
    await page.getByLabel('Password').fill(STRONG_PASSWORD);
    await button('Sign in').click();
    await page.getByLabel('Authentication code').fill(new TOTP({ secret: enrolment.secret }).generate());
    await button('Verify').click();
    assert.equal(new URL(page.url()).pathname, '/admin');
    await visit('dashboard (auditor)', 'auditor-dashboard');
    const pages = [
      `/admin/keys/${spareKey.id}`,
      `/admin/applications/${clientId}`,
      `/admin/developers/${developerId}`,
      `/admin/teams/${teamId}`,
      `/admin/requests/${requestId}`,
      '/admin/audit',
      '/admin/signing-keys',
      '/admin/plans',
      `/admin/keys/${spareKey.id}/plan`,
    ];
    for (const path of pages) {
      await page.goto(path);
      await visit(`${path} (auditor)`, path === pages[0] ? 'auditor-key' : path === '/admin/audit' ? 'auditor-audit' : undefined);
      assert.equal(await link('Change plan').count(), 0, `no Change plan on ${path}`);
      for (const name of ['Revoke', 'Revoke tokens', 'Suspend', 'Unsuspend', 'End sessions', 'Approve', 'Deny', 'Rotate now', 'Create plan', 'Save plan']) {
        assert.equal(await button(name).count(), 0, `no ${name} on ${path}`);
      }
      assert.equal(await page.getByLabel('Reason').count(), 0, `no Reason on ${path}`);
    }
    // A forged form, with the auditor's own valid CSRF token.
    const csrf = await page.locator('input[name="_csrf"]').first().inputValue();
    const before = await server.deps.prisma.auditEvent.count();
    const forged = await page.request.post(`/admin/keys/${spareKey.id}/revoke`, {
      form: { _csrf: csrf, reason: 'forged', confirm: 'yes' },
      headers: { origin: server.url },
      maxRedirects: 0,
    });
    assert.equal(forged.status(), 403);
    assert.equal((await server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: spareKey.id } })).revokedAt, null);
    assert.equal(await server.deps.prisma.auditEvent.count(), before, 'no event');
    assert.equal((await introspectOnB(spareKey.key)).active, true);
  });
});
