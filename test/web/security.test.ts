import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import argon2 from 'argon2';
import { Secret, TOTP } from 'otpauth';
import { createAccount } from '../../src/accounts/accounts.ts';
import { hashPassword } from '../../src/accounts/passwords.ts';
import { sessionDigest, startSession, type SessionStage } from '../../src/accounts/sessions.ts';
import { cookieNames } from '../../src/web/pages.ts';
import { rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';

// Two-factor authentication, the Security page and the Sessions page, over HTTP against a real
// server. Accounts and password-stage sessions are made directly (sign-in is tested elsewhere).
const PASSWORD = 'a quiet harbour at seven bells';
const NEW_PASSWORD = 'lanterns drift over the salt marsh';
const SESSION = cookieNames(false).session;

let server: TestServer;
let clock = Date.parse('2026-12-01T14:00:05Z');
const tick = (steps = 1) => (clock += steps * 30_000);

/** A browser of sorts: its own cookies, no redirects followed. */
class Client {
  cookies = new Map<string, string>();
  constructor(cookie?: string) {
    if (cookie) this.cookies.set(SESSION, cookie);
  }
  get session() {
    return this.cookies.get(SESSION);
  }
  async request(path: string, init: RequestInit = {}) {
    const headers = new Headers(init.headers);
    headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(`${server.url}${path}`, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at);
      const value = pair!.slice(at + 1);
      if (!value || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const body = await response.text();
    return { status: response.status, location: response.headers.get('location'), headers: response.headers, body };
  }
  get(path: string) {
    return this.request(path);
  }
  /** Reads the form's CSRF token from `from` (a page), then posts as a browser on our origin would. */
  async post(path: string, fields: Record<string, string>, options: { from?: string; csrf?: boolean } = {}) {
    const form = new URLSearchParams(fields);
    if (options.csrf !== false) {
      const page = await this.get(options.from ?? '/portal/security');
      const token = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1];
      assert.ok(token, `no CSRF token on ${options.from}`);
      form.set('_csrf', token);
    }
    return this.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url },
      body: form.toString(),
    });
  }
}

async function newAccount(email: string, role: 'developer' | 'admin' = 'developer') {
  const passwordHash = await hashPassword(PASSWORD);
  const now = server.deps.now();
  return server.deps.prisma.$transaction(async (tx) => (await createAccount(tx, { email, passwordHash, role, emailVerifiedAt: now, now })).account);
}

async function clientFor(accountId: string, stage: SessionStage = 'full', userAgent = 'TestBrowser/1.0') {
  const { cookie } = await startSession(server.deps, { accountId, stage, ip: '127.0.0.1', userAgent });
  rememberSecret(cookie);
  return new Client(cookie);
}

const codeAt = (secret: string, at = clock) => new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: at });
const recoveryCodesIn = (html: string) => [...html.matchAll(/<li><code>([0-9a-z]{5}-[0-9a-z]{5})<\/code><\/li>/g)].map((m) => m[1]!);
const setupKeyIn = (html: string) => /id="setup-key">([^<]+)<\/code>/.exec(html)?.[1]?.replace(/\s+/g, '');
const auditTypes = async (accountId: string) =>
  (await server.deps.prisma.auditEvent.findMany({ where: { subjectId: accountId }, orderBy: { seq: 'asc' } })).map((e) => e.type);

before(async () => {
  server = await startTestServer();
  server.deps.now = () => new Date(clock);
});
after(() => server?.close());

describe('two-factor authentication', () => {
  let alice: Awaited<ReturnType<typeof newAccount>>;
  let aliceBrowser: Client;
  let secret: string;
  let recoveryCodes: string[];

  before(async () => {
    alice = await newAccount('alice@example.test');
    aliceBrowser = await clientFor(alice.id);
  });

  it('shows the Security page with two-factor authentication off', async () => {
    const page = await aliceBrowser.get('/portal/security');
    assert.equal(page.status, 200);
    assert.match(page.body, /Set up two-factor authentication<\/button>/);
    assert.match(page.body, /aria-current="page">Security</);
    assert.match(page.body, /<label for="field-current_password">Current password/);
  });

  it('enrols: a QR code and the setup key, the secret kept server-side, a wrong code refused', async () => {
    const setup = await aliceBrowser.post('/portal/security/mfa/setup', {});
    assert.equal(setup.status, 200);
    assert.match(setup.body, /<div class="qr"><svg role="img" aria-label="QR code for your authenticator app"/);
    assert.match(setup.body, /<label for="field-code">Authentication code/);
    assert.match(setup.body, /Turn on<\/button>/);
    secret = setupKeyIn(setup.body)!;
    assert.match(secret, /^[A-Z2-7]{32}$/);
    rememberSecret(secret);
    // Only the CSRF token travels in the form: the secret stays in the account, encrypted.
    assert.deepEqual([...setup.body.matchAll(/<input[^>]*type="hidden"[^>]*>/g)].map((m) => /name="([^"]+)"/.exec(m[0])![1]), ['_csrf', '_csrf']);
    const stored = await server.deps.prisma.account.findUniqueOrThrow({ where: { id: alice.id } });
    assert.ok(stored.mfaSecretEncrypted && !stored.mfaSecretEncrypted.includes(secret));
    assert.equal(server.deps.keyring.decrypt(stored.mfaSecretEncrypted), secret);
    assert.equal(stored.mfaEnabledAt, null);

    const wrong = await aliceBrowser.post('/portal/security/mfa/confirm', { code: '000000' === codeAt(secret) ? '111111' : '000000' });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body, /class="field-error" id="field-code-error">That code is not right/);
    assert.equal(setupKeyIn(wrong.body), secret, 'the same secret is shown again');
    assert.equal((await server.deps.prisma.account.findUniqueOrThrow({ where: { id: alice.id } })).mfaEnabledAt, null);
  });

  it('turns on with a right code and shows ten recovery codes once', async () => {
    const done = await aliceBrowser.post('/portal/security/mfa/confirm', { code: codeAt(secret) });
    assert.equal(done.status, 200);
    assert.match(done.body, /<ul class="codes">/);
    assert.match(done.body, /shown only once/);
    recoveryCodes = recoveryCodesIn(done.body);
    assert.equal(recoveryCodes.length, 10);
    assert.equal(new Set(recoveryCodes).size, 10);
    recoveryCodes.forEach(rememberSecret);

    const page = await aliceBrowser.get('/portal/security');
    assert.match(page.body, /Two-factor authentication is on since <time/);
    assert.match(page.body, /Recovery codes left: <strong>10<\/strong>/);
    assert.match(page.body, /Regenerate recovery codes<\/button>/);
    assert.match(page.body, /Turn off<\/button>/);
    assert.doesNotMatch(page.body, /<ul class="codes">/, 'codes are not shown again');
    assert.ok(!recoveryCodes.some((code) => page.body.includes(code)));
    // Digests only.
    const rows = await server.deps.prisma.recoveryCode.findMany({ where: { accountId: alice.id } });
    assert.equal(rows.length, 10);
    assert.ok(rows.every((row) => !Buffer.from(row.digest).toString('latin1').includes(recoveryCodes[0]!)));
    assert.ok((await auditTypes(alice.id)).includes('account.mfa_enabled'));
    // Setting up again is not offered once on.
    const again = await aliceBrowser.post('/portal/security/mfa/setup', {});
    assert.equal(again.status, 303);
  });

  it('asks for a code after the password; a wrong one is refused, a right one gives a new session', async () => {
    const browser = await clientFor(alice.id, 'mfa');
    const passwordStage = browser.session!;
    const portal = await browser.get('/portal');
    assert.equal(portal.status, 302);
    assert.equal(portal.location, '/portal/sign-in/verify');
    const verify = await browser.get('/portal/sign-in/verify');
    assert.equal(verify.status, 200);
    assert.match(verify.body, /<label for="field-code">Authentication code/);
    assert.match(verify.body, /Verify<\/button>/);

    const wrong = await browser.post('/portal/sign-in/verify', { code: '123456' === codeAt(secret) ? '654321' : '123456' }, { from: '/portal/sign-in/verify' });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body, /id="field-code-error">That code is not right/);
    assert.equal(browser.session, passwordStage);

    tick(); // the enrolment code's step is spent
    const code = codeAt(secret);
    const right = await browser.post('/portal/sign-in/verify', { code }, { from: '/portal/sign-in/verify' });
    assert.equal(right.status, 303);
    assert.equal(right.location, '/portal');
    assert.ok(browser.session && browser.session !== passwordStage, 'a new session id at the step up');
    assert.match(right.headers.getSetCookie().find((c) => c.startsWith(`${SESSION}=`))!, /httponly/i);
    assert.equal((await browser.get('/portal')).status, 200);
    const session = await server.deps.prisma.session.findUniqueOrThrow({ where: { id: sessionDigest(server.deps, browser.session) } });
    assert.equal(session.stage, 'full');
    assert.ok(session.mfaAt);
    // The password-stage cookie is worth nothing now.
    const old = await new Client(passwordStage).get('/portal/sign-in/verify');
    assert.equal(old.location, '/portal/sign-in');
    const types = await auditTypes(alice.id);
    assert.ok(types.includes('account.mfa_failed'));
    assert.ok(types.includes('account.signed_in'));

    // The same code, again, in another sign-in within its window: refused.
    const replay = await clientFor(alice.id, 'mfa');
    const second = await replay.post('/portal/sign-in/verify', { code }, { from: '/portal/sign-in/verify' });
    assert.equal(second.status, 400);
  });

  it('lets two concurrent uses of one code through only once', async () => {
    tick();
    const code = codeAt(secret);
    const [a, b] = await Promise.all([clientFor(alice.id, 'mfa'), clientFor(alice.id, 'mfa')]);
    const tokens = await Promise.all([a, b].map(async (c) => /name="_csrf" value="([^"]+)"/.exec((await c.get('/portal/sign-in/verify')).body)![1]!));
    const post = (c: Client, token: string) =>
      c.request('/portal/sign-in/verify', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url },
        body: new URLSearchParams({ _csrf: token, code }).toString(),
      });
    const statuses = (await Promise.all([post(a, tokens[0]!), post(b, tokens[1]!)])).map((r) => r.status).sort();
    assert.deepEqual(statuses, [303, 400]);
  });

  it('accepts a recovery code once (typed loosely), then refuses it', async () => {
    const first = await clientFor(alice.id, 'mfa');
    const loose = recoveryCodes[0]!.toUpperCase().replace('-', ' ');
    const ok = await first.post('/portal/sign-in/verify', { code: loose }, { from: '/portal/sign-in/verify' });
    assert.equal(ok.status, 303);
    assert.equal((await first.get('/portal')).status, 200);
    const again = await clientFor(alice.id, 'mfa');
    const refused = await again.post('/portal/sign-in/verify', { code: recoveryCodes[0]! }, { from: '/portal/sign-in/verify' });
    assert.equal(refused.status, 400);
    assert.ok((await auditTypes(alice.id)).includes('account.recovery_code_used'));
    assert.match((await aliceBrowser.get('/portal/security')).body, /Recovery codes left: <strong>9<\/strong>/);
  });

  it('regenerates recovery codes on a current code; the old ones stop working', async () => {
    const wrong = await aliceBrowser.post('/portal/security/mfa/regenerate', { code: 'nope' });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body, /id="field-code-error">That code is not right/);
    tick();
    const fresh = await aliceBrowser.post('/portal/security/mfa/regenerate', { code: codeAt(secret) });
    assert.equal(fresh.status, 200);
    const codes = recoveryCodesIn(fresh.body);
    assert.equal(codes.length, 10);
    codes.forEach(rememberSecret);
    const old = await clientFor(alice.id, 'mfa');
    assert.equal((await old.post('/portal/sign-in/verify', { code: recoveryCodes[1]! }, { from: '/portal/sign-in/verify' })).status, 400);
    recoveryCodes = codes;
  });

  it('takes a real sign-in through the code step to where it was going (never off-site)', async () => {
    const browser = new Client();
    const signedIn = await browser.post('/portal/sign-in', { email: 'alice@example.test', password: PASSWORD, next: '/portal/sessions' }, { from: '/portal/sign-in' });
    assert.equal(signedIn.status, 303);
    assert.equal(signedIn.location, '/portal/sign-in/verify?next=%2Fportal%2Fsessions');
    const stage = await server.deps.prisma.session.findUniqueOrThrow({ where: { id: sessionDigest(server.deps, browser.session!) } });
    assert.equal(stage.stage, 'mfa');
    const page = await browser.get(signedIn.location!);
    assert.match(page.body, /name="next" value="\/portal\/sessions"/);
    tick();
    const done = await browser.post('/portal/sign-in/verify', { code: codeAt(secret), next: '/portal/sessions' }, { from: signedIn.location! });
    assert.equal(done.status, 303);
    assert.equal(done.location, '/portal/sessions');
    assert.equal((await browser.get('/portal/sessions')).status, 200);

    const elsewhere = new Client();
    await elsewhere.post('/portal/sign-in', { email: 'alice@example.test', password: PASSWORD }, { from: '/portal/sign-in' });
    tick();
    const offSite = await elsewhere.post('/portal/sign-in/verify', { code: codeAt(secret), next: '//evil.example/portal' }, { from: '/portal/sign-in/verify' });
    assert.equal(offSite.status, 303);
    assert.equal(offSite.location, '/portal');
  });

  it('sends a page without a stage-mfa session to sign-in', async () => {
    assert.equal((await new Client().get('/portal/sign-in/verify')).location, '/portal/sign-in');
    assert.equal((await aliceBrowser.get('/portal/sign-in/verify')).location, '/portal');
  });

  it('throttles guessing at the second factor (429 with Retry-After)', async () => {
    const carol = await newAccount('carol@example.test');
    const guesser = await clientFor(carol.id, 'mfa');
    for (let i = 0; i < 5; i++) assert.equal((await guesser.post('/portal/sign-in/verify', { code: '000000' }, { from: '/portal/sign-in/verify' })).status, 400);
    const blocked = await guesser.post('/portal/sign-in/verify', { code: '000000' }, { from: '/portal/sign-in/verify' });
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.headers.get('retry-after')) > 0);
    // The one throttled page of the portal, as at sign-in.
    assert.match(blocked.body, /Too many attempts, try again in \d+ minutes?/);
  });

  it('counts a code before checking it: of 20 concurrent wrong codes at most 5 are checked', async () => {
    const frank = await newAccount('frank@example.test');
    const guesser = await clientFor(frank.id, 'mfa');
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => guesser.post('/portal/sign-in/verify', { code: String(100000 + i) }, { from: '/portal/sign-in/verify' })));
    const statuses = answers.map((a) => a.status);
    assert.ok(statuses.filter((s) => s === 400).length <= 5, `checked: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 429).length + statuses.filter((s) => s === 400).length, 20);
    const failed = await server.deps.prisma.auditEvent.count({ where: { type: 'account.mfa_failed', subjectId: frank.id } });
    assert.ok(failed <= 5, `${failed} codes checked`);
  });

  it('throttles guessing the current password on the password form like sign-in (the same 429 page)', async () => {
    const erin = await newAccount('erin@example.test');
    const browser = await clientFor(erin.id);
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => browser.post('/portal/security/password', { current_password: `not it ${i}`, new_password: NEW_PASSWORD })),
    );
    const statuses = answers.map((a) => a.status);
    assert.ok(statuses.filter((s) => s === 400).length <= 5, `checked: ${statuses.join(',')}`);
    const blocked = answers.find((a) => a.status === 429);
    assert.ok(blocked, 'some refused');
    assert.ok(Number(blocked.headers.get('retry-after')) > 0);
    assert.match(blocked.body, /Too many attempts, try again in \d+ minutes?/);
  });

  it('turns off only on a current code; admins cannot turn it off', async () => {
    const wrong = await aliceBrowser.post('/portal/security/mfa/disable', { code: '' });
    assert.equal(wrong.status, 400);
    tick();
    const off = await aliceBrowser.post('/portal/security/mfa/disable', { code: codeAt(secret) });
    assert.equal(off.status, 303);
    const stored = await server.deps.prisma.account.findUniqueOrThrow({ where: { id: alice.id } });
    assert.equal(stored.mfaEnabledAt, null);
    assert.equal(stored.mfaSecretEncrypted, null);
    assert.equal(await server.deps.prisma.recoveryCode.count({ where: { accountId: alice.id } }), 0);
    assert.ok((await auditTypes(alice.id)).includes('account.mfa_disabled'));
    assert.match((await aliceBrowser.get('/portal/security')).body, /Set up two-factor authentication/);

    const admin = await newAccount('root@example.test', 'admin');
    await server.deps.prisma.account.update({ where: { id: admin.id }, data: { mfaEnabledAt: new Date(clock), mfaSecretEncrypted: server.deps.keyring.encrypt(secret) } });
    const adminBrowser = await clientFor(admin.id);
    const page = await adminBrowser.get('/portal/security');
    assert.match(page.body, /Admins must keep two-factor authentication on/);
    assert.doesNotMatch(page.body, /Turn off<\/button>/);
    tick();
    const refused = await adminBrowser.post('/portal/security/mfa/disable', { code: codeAt(secret) });
    assert.equal(refused.status, 303);
    assert.ok((await server.deps.prisma.account.findUniqueOrThrow({ where: { id: admin.id } })).mfaEnabledAt);
  });
});

describe('sessions and password', () => {
  let dave: Awaited<ReturnType<typeof newAccount>>;
  let laptop: Client;
  let phone: Client;

  before(async () => {
    dave = await newAccount('dave@example.test');
    laptop = await clientFor(dave.id, 'full', 'Mozilla/5.0 (X11; Linux x86_64) Laptop');
    phone = await clientFor(dave.id, 'full', 'Mozilla/5.0 (iPhone) Phone');
  });

  it('lists live sessions, marks this one, and ends another (its cookie dies)', async () => {
    const page = await laptop.get('/portal/sessions');
    assert.equal(page.status, 200);
    assert.match(page.body, /aria-current="page">Sessions</);
    assert.equal(page.body.match(/This session/g)?.length, 1);
    assert.match(page.body, /Laptop/);
    assert.match(page.body, /Phone/);
    const phoneId = sessionDigest(server.deps, phone.session!);
    const laptopId = sessionDigest(server.deps, laptop.session!);
    assert.match(page.body, new RegExp(`action="/portal/sessions/${phoneId}/end"`));
    assert.doesNotMatch(page.body, new RegExp(`action="/portal/sessions/${laptopId}/end"`));
    assert.match(page.body, /End all other sessions<\/button>/);

    // Someone else cannot end it: 404 as if unknown.
    const eve = await newAccount('eve@example.test');
    const eveBrowser = await clientFor(eve.id);
    const foreign = await eveBrowser.post(`/portal/sessions/${phoneId}/end`, {}, { from: '/portal/sessions' });
    assert.equal(foreign.status, 404);
    assert.equal((await eveBrowser.post(`/portal/sessions/${'0'.repeat(64)}/end`, {}, { from: '/portal/sessions' })).status, 404);
    assert.equal((await phone.get('/portal')).status, 200);

    const ended = await laptop.post(`/portal/sessions/${phoneId}/end`, {}, { from: '/portal/sessions' });
    assert.equal(ended.status, 303);
    assert.equal(ended.location, '/portal/sessions');
    const dead = await phone.get('/portal');
    assert.equal(dead.status, 302);
    assert.match(dead.location!, /^\/portal\/sign-in/);
    assert.equal((await laptop.get('/portal')).status, 200);
    assert.ok((await auditTypes(dave.id)).includes('session.ended'));
    // An ended session is gone: ending it again is a 404.
    assert.equal((await laptop.post(`/portal/sessions/${phoneId}/end`, {}, { from: '/portal/sessions' })).status, 404);
  });

  it('ends all other sessions at once', async () => {
    const tablet = await clientFor(dave.id);
    const ended = await laptop.post('/portal/sessions/end-others', {}, { from: '/portal/sessions' });
    assert.equal(ended.status, 303);
    assert.equal((await tablet.get('/portal')).status, 302);
    assert.equal((await laptop.get('/portal')).status, 200);
  });

  it('changes the password: checks the current one and the policy, ends the other sessions', async () => {
    const other = await clientFor(dave.id);
    const wrongCurrent = await laptop.post('/portal/security/password', { current_password: 'not my password at all', new_password: NEW_PASSWORD });
    assert.equal(wrongCurrent.status, 400);
    assert.match(wrongCurrent.body, /id="field-current_password-error">That is not your current password/);
    assert.doesNotMatch(wrongCurrent.body, /not my password at all/);
    const weak = await laptop.post('/portal/security/password', { current_password: PASSWORD, new_password: 'password1234' });
    assert.equal(weak.status, 400);
    assert.match(weak.body, /id="field-new_password-error">/);
    assert.equal((await other.get('/portal')).status, 200, 'nothing changed yet');

    const changed = await laptop.post('/portal/security/password', { current_password: PASSWORD, new_password: NEW_PASSWORD });
    assert.equal(changed.status, 303);
    assert.equal((await other.get('/portal')).status, 302, 'the other session is signed out');
    const page = await laptop.get('/portal/security');
    assert.equal(page.status, 200);
    assert.match(page.body, /Password changed/);
    const stored = await server.deps.prisma.account.findUniqueOrThrow({ where: { id: dave.id } });
    assert.ok(await argon2.verify(stored.passwordHash!, NEW_PASSWORD));
    assert.ok((await auditTypes(dave.id)).includes('account.password_changed'));
  });

  it('refuses a POST without its CSRF token (403)', async () => {
    const refused = await laptop.post('/portal/sessions/end-others', {}, { csrf: false });
    assert.equal(refused.status, 403);
    const setup = await laptop.post('/portal/security/mfa/setup', {}, { csrf: false });
    assert.equal(setup.status, 403);
    assert.equal((await server.deps.prisma.account.findUniqueOrThrow({ where: { id: dave.id } })).mfaSecretEncrypted, null);
  });
});
