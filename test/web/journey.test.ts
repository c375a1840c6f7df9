import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TOTP } from 'otpauth';
import type { Browser, Page } from 'playwright-core';
import { checkAccessibility, launchBrowser, newPage, screenshot, type TestPage } from '../helpers/browser.ts';
import { createClient, createScope } from '../helpers/factories.ts';
import { accessToken, introspectAs } from '../helpers/oauth.ts';
import { discover, rememberSecret, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';
import { linksIn, startSmtpPeer, type SmtpPeer } from '../helpers/smtp.ts';

// The whole journey of a new developer, in a real browser, through the contract's names
// (DESIGN §2 Pages): every page visited is checked with axe and the main ones are screenshot.
const EMAIL = 'ada@example.test';
const PASSWORD = 'a quiet harbour at seven bells';
const API = 'https://orders.example.test';

let peer: SmtpPeer;
let server: TestServer;
let meta: Discovery;
let browser: Browser;
let tab: TestPage;
let page: Page;
let scope: string;
let resourceServer: Awaited<ReturnType<typeof createClient>>;

const visit = async (label: string, shot?: string) => {
  await checkAccessibility(page, label);
  if (shot) await screenshot(page, shot);
};
const button = (name: string) => page.getByRole('button', { name, exact: true });
const link = (name: string) => page.getByRole('link', { name, exact: true });
const introspect = async (token: string) => (await introspectAs(meta.introspection_endpoint, resourceServer, token)).body.active;

before(async () => {
  peer = await startSmtpPeer();
  server = await startTestServer({ env: { SMTP_URL: peer.url } });
  meta = await discover(server);
  scope = await createScope(server, { name: 'orders.read', description: 'Read orders' });
  resourceServer = await createClient(server, { scopes: [scope], audiences: [API] });
  browser = await launchBrowser();
  tab = await newPage(browser, server.url);
  page = tab.page;
});

after(async () => {
  await tab?.close();
  await browser?.close();
  await server?.close();
  await peer?.close();
});

describe('a developer, in a browser', () => {
  let secret: string;
  let key: string;

  it('is led from / to sign in, and signs up', async () => {
    await page.goto('/');
    assert.match(new URL(page.url()).pathname, /^\/portal\/sign-in/);
    await visit('sign in', 'sign-in');
    await link('Create an account').click();
    await visit('sign up', 'sign-up');
    await page.getByLabel('Email').fill(EMAIL);
    await page.getByLabel('Password').fill(PASSWORD);
    await button('Create account').click();
    await visit('check your inbox');
    assert.match(await page.textContent('main') ?? '', /inbox|email/i);
  });

  it('verifies the address from the mail delivered to the SMTP peer', async () => {
    const mail = await peer.waitFor((m) => m.to.includes(EMAIL), 10_000);
    const verify = linksIn(mail.raw).find((l) => l.startsWith(`${server.issuer}/portal/`));
    assert.ok(verify, 'the mail links under the issuer');
    await page.goto(verify);
    await visit('verify email');
    await button('Verify email').click();
    assert.match(new URL(page.url()).pathname, /^\/portal\/sign-in/);
  });

  it('signs in and turns on two-factor authentication', async () => {
    await page.getByLabel('Email').fill(EMAIL);
    await page.getByLabel('Password').fill(PASSWORD);
    await button('Sign in').click();
    assert.equal(new URL(page.url()).pathname, '/portal');
    await visit('overview', 'overview');
    await link('Security').click();
    await visit('security');
    await button('Set up two-factor authentication').click();
    await visit('two-factor set-up', 'mfa-setup');
    assert.ok(await page.locator('svg[role="img"]').count(), 'a QR code');
    const setupKey = ((await page.locator('#setup-key').textContent()) ?? '').replace(/\s/g, '');
    assert.match(setupKey, /^[A-Z2-7]{32}$/, 'the setup key is shown as text (base32)');
    secret = setupKey;
    await page.getByLabel('Authentication code').fill(new TOTP({ secret }).generate());
    await button('Turn on').click();
    await visit('recovery codes', 'recovery-codes');
    assert.match((await page.textContent('main')) ?? '', /recovery/i);
  });

  it('signs out, and back in with an authentication code', async () => {
    await button('Sign out').click();
    await page.goto('/portal');
    assert.match(new URL(page.url()).pathname, /^\/portal\/sign-in/);
    await page.getByLabel('Email').fill(EMAIL);
    await page.getByLabel('Password').fill(PASSWORD);
    await button('Sign in').click();
    await visit('authentication code');
    // The enrolment used this window's code (single use): the next window's is accepted too.
    await page.getByLabel('Authentication code').fill(new TOTP({ secret }).generate({ timestamp: Date.now() + 30_000 }));
    await button('Verify').click();
    assert.equal(new URL(page.url()).pathname, '/portal');
  });

  it('creates an API key that introspects active', async () => {
    await link('API keys').click();
    await visit('API keys (empty)');
    await link('New API key').first().click();
    await visit('new API key', 'new-key');
    await page.getByLabel('Name').fill('orders reader');
    await page.getByLabel(scope, { exact: false }).first().check();
    await page.getByLabel('Audiences').fill(API);
    await button('Create key').click();
    await visit('key shown once', 'key-created');
    key = await page.locator('input.secret-value').first().inputValue();
    rememberSecret(key);
    assert.match(key, /^lk_/);
    assert.equal(await introspect(key), true);
  });

  it('rotates the key, then revokes it: it introspects inactive', async () => {
    await link('API keys').click();
    await visit('API keys', 'keys');
    await page.getByRole('link', { name: 'orders reader' }).first().click();
    await visit('key page', 'key');
    await button('Rotate').click();
    await visit('rotate confirmation');
    await button('Rotate').click();
    const rotated = await page.locator('input.secret-value').first().inputValue();
    rememberSecret(rotated);
    assert.notEqual(rotated, key);
    assert.equal(await introspect(rotated), true);
    await page.goto('/portal/keys');
    await page.getByRole('link', { name: 'orders reader' }).first().click();
    await button('Revoke').click();
    await visit('revoke confirmation');
    await button('Revoke').click();
    assert.equal(await introspect(rotated), false);
  });

  it('creates an application and gets a token with its secret', async () => {
    await link('Applications').click();
    await visit('applications');
    await link('New application').first().click();
    await visit('new application');
    await page.getByLabel('Name').fill('order sync');
    await page.getByLabel(scope, { exact: false }).first().check();
    await button('Create application').click();
    await visit('application created', 'application-created');
    const values = await page.locator('input.secret-value').evaluateAll((inputs) => inputs.map((i) => (i as HTMLInputElement).value));
    const clientId = values.find((v) => v.startsWith('lkc_')) ?? (await page.textContent('main'))!.match(/lkc_[0-9A-Za-z]{22}/)![0];
    const clientSecret = values.find((v) => v.startsWith('lks_'));
    assert.ok(clientSecret, 'the secret is shown once');
    rememberSecret(clientSecret);
    const token = await accessToken(meta.token_endpoint, { client_id: clientId, client_secret: clientSecret }, { scope });
    rememberSecret(token);
    assert.ok(token.split('.').length === 3);
  });

  it('invites a second developer to the team', async () => {
    await link('Team').click();
    await visit('team', 'team');
    await page.getByLabel('Email').fill('grace@example.test');
    await button('Send invitation').click();
    await visit('team after invitation');
    const mail = await peer.waitFor((m) => m.to.includes('grace@example.test'), 10_000);
    assert.ok(linksIn(mail.raw).some((l) => l.startsWith(`${server.issuer}/portal/invitations/`)));
  });

  it('sees the activity and its sessions', async () => {
    await link('Activity').click();
    await visit('activity', 'activity');
    await link('Sessions').click();
    await visit('sessions', 'sessions');
    assert.deepEqual(tab.problems.consoleErrors, [], 'no CSP violation or script error');
    assert.deepEqual(tab.problems.pageErrors, []);
  });
});
