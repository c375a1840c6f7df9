import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { findPart, parseMail, startSmtpPeer, type SmtpPeer } from '../helpers/smtp.ts';
import { linkFromMail, PortalClient, signIn, signUpAndSignIn, STRONG_PASSWORD } from '../helpers/portal.ts';
import { cookieNames } from '../../src/web/pages.ts';
import { issueLinkToken } from '../../src/accounts/links.ts';
import { requestPasswordReset, resendVerification } from '../../src/accounts/sign-up.ts';

const SESSION = cookieNames(false).session;
const tokenOf = (link: string) => new URL(link).searchParams.get('token')!;
const pathOf = (link: string) => {
  const url = new URL(link);
  return `${url.pathname}${url.search}`;
};

describe('portal: sign-up, verification, sign-in, sign-out, reset', () => {
  let server: TestServer;
  let smtp: SmtpPeer;

  before(async () => {
    smtp = await startSmtpPeer();
    server = await startTestServer({ env: { SMTP_URL: smtp.url } });
  });
  after(async () => {
    await server?.close();
    await smtp?.close();
  });

  const eventsOf = (type: string) => server.deps.prisma.auditEvent.findMany({ where: { type } });

  it('signs up, verifies by a POST (GET changes nothing), signs in and out', async () => {
    const email = 'journey@example.com';
    const client = new PortalClient(server.url);
    const form = await client.get('/portal/sign-up');
    const formHtml = await form.text();
    assert.equal(form.status, 200);
    assert.match(formHtml, /<label for="field-email">Email<\/label>/);
    assert.match(formHtml, /<label for="field-password">Password<\/label>/);
    assert.match(formHtml, /Create account<\/button>/);

    const before = smtp.messages.length;
    const signedUp = await client.post('/portal/sign-up', { email, password: STRONG_PASSWORD });
    assert.equal(signedUp.status, 200);
    assert.match(await signedUp.text(), /Check your inbox/);

    const mail = await smtp.waitFor((m) => smtp.messages.indexOf(m) >= before && m.to.includes(email));
    const parsed = parseMail(mail.raw);
    assert.ok(findPart(parsed, 'text/plain')?.body, 'a text part');
    assert.ok(findPart(parsed, 'text/html')?.body, 'an HTML part');
    const link = await linkFromMail(server, smtp, email, 'verify-email', { after: before });
    assert.ok(link.startsWith(`${server.issuer}/portal/verify-email?token=`));
    assert.ok(findPart(parsed, 'text/html')!.body.includes(link.replace(/&/g, '&amp;')), 'the HTML part has the same link');

    // Not verified yet: the right password gets the "verify first" page.
    const early = await client.postForm('/portal/sign-in', '/portal/sign-in', { email, password: STRONG_PASSWORD });
    assert.equal(early.status, 403);
    assert.match(await early.text(), /Verify your email first[\s\S]*Send a new link/);

    const shown = await client.get(pathOf(link));
    assert.equal(shown.status, 200);
    assert.match(await shown.text(), /Verify email<\/button>/);
    const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email } });
    assert.equal(account.emailVerifiedAt, null, 'GET changed nothing');

    const verified = await client.post('/portal/verify-email', { token: tokenOf(link) });
    assert.equal(verified.status, 303);
    assert.equal(verified.headers.get('location'), '/portal/sign-in');
    const landing = await client.follow(verified);
    assert.match(await landing.text(), /Your email address is verified/);
    assert.ok((await server.deps.prisma.account.findUniqueOrThrow({ where: { email } })).emailVerifiedAt);
    assert.equal((await eventsOf('account.email_verified')).length, 1);

    const signedIn = await client.post('/portal/sign-in', { email, password: STRONG_PASSWORD });
    assert.equal(signedIn.status, 303);
    assert.equal(signedIn.headers.get('location'), '/portal');
    const setCookie = signedIn.headers.getSetCookie().find((c) => c.startsWith(`${SESSION}=`))!;
    assert.match(setCookie, /httponly/i);
    assert.match(setCookie, /samesite=lax/i);
    assert.match(setCookie, /path=\//i);
    const oldCookie = client.cookies.get(SESSION)!;

    const portal = await client.get('/portal');
    assert.equal(portal.status, 200);
    assert.match(await portal.text(), /Sign out<\/button>/);
    assert.ok((await eventsOf('account.signed_in')).some((e) => e.subjectId === account.id));

    const out = await client.post('/portal/sign-out');
    assert.equal(out.status, 303);
    assert.equal(out.headers.get('location'), '/portal/sign-in');
    assert.match(await (await client.follow(out)).text(), /Signed out\./);
    const after = await client.get('/portal');
    assert.equal(after.status, 302);
    assert.match(after.headers.get('location')!, /^\/portal\/sign-in/);
    // The old cookie no longer works: the session ended on the server.
    const replay = await fetch(`${server.url}/portal`, { headers: { cookie: `${SESSION}=${oldCookie}` }, redirect: 'manual' });
    assert.equal(replay.status, 302);
    assert.equal((await eventsOf('account.signed_out')).length, 1);

    // A used link is refused.
    const again = await client.postForm(pathOf(link).replace(/token=[^&]+/, 'token=x'), '/portal/verify-email', { token: tokenOf(link) });
    assert.equal(again.status, 410);
    assert.match(await again.text(), /This link has expired[\s\S]*Send a new link/);
  });

  it('answers a duplicate sign-up with the same page and mails "account exists"', async () => {
    const email = 'twice@example.com';
    await signUpAndSignIn(server, smtp, email);
    const client = new PortalClient(server.url);
    const before = smtp.messages.length;
    const response = await client.postForm('/portal/sign-up', '/portal/sign-up', { email, password: 'another fine passphrase for 2026' });
    assert.equal(response.status, 200);
    const html = await response.text();
    assert.match(html, /Check your inbox/);
    const mail = await smtp.waitFor((m) => smtp.messages.indexOf(m) >= before && m.to.includes(email));
    assert.match(parseMail(mail.raw).headers.get('subject')!, /already have an account/);
    assert.equal(await server.deps.prisma.account.count({ where: { email } }), 1);
  });

  it('throttles sign-up per address before hashing, and mails "account exists" at most once an hour', async () => {
    const email = 'popular@example.com';
    await signUpAndSignIn(server, smtp, email);
    const client = new PortalClient(server.url);
    const before = smtp.messages.length;
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => client.postForm('/portal/sign-up', '/portal/sign-up', { email, password: 'another fine passphrase for 2026' })),
    );
    const statuses = answers.map((a) => a.status);
    // The verification sign-up took one of the address's five: four more pass, the rest wait.
    assert.equal(statuses.filter((s) => s === 200).length, 4, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 429).length, 8, statuses.join(','));
    const blocked = answers.find((a) => a.status === 429)!;
    assert.ok(Number(blocked.headers.get('retry-after')) > 0);
    assert.match(await blocked.text(), /Too many attempts, try again in \d+ minutes?/);
    await smtp.waitFor((m) => smtp.messages.indexOf(m) >= before && m.to.includes(email));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(smtp.messages.slice(before).filter((m) => m.to.includes(email)).length, 1, 'one "account exists" mail');
  });

  it('answers a reset request or a verification resend before the work that depends on the address is done', async () => {
    const email = 'timed@example.com';
    await signUpAndSignIn(server, smtp, email);
    const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email } });
    const links = (purpose: 'reset_password' | 'verify_email') => server.deps.prisma.linkToken.count({ where: { accountId: account.id, purpose } });
    const actor = { type: 'account' as const, ip: '192.0.2.77' };
    const reset = await requestPasswordReset(server.deps, email, actor);
    assert.ok(reset.ok);
    // Answered: the link is not issued yet (a known address took a transaction and an audit event before answering).
    assert.equal(await links('reset_password'), 0);
    await reset.done;
    assert.equal(await links('reset_password'), 1);

    await server.deps.prisma.account.update({ where: { id: account.id }, data: { emailVerifiedAt: null } });
    const verifyBefore = await links('verify_email');
    const resend = await resendVerification(server.deps, email, actor);
    assert.ok(resend.ok);
    assert.equal(await links('verify_email'), verifyBefore);
    await resend.done;
    assert.equal(await links('verify_email'), verifyBefore + 1);
    await server.deps.prisma.account.update({ where: { id: account.id }, data: { emailVerifiedAt: new Date() } });
  });

  it('refuses a weak password beside the field, keeping the email and never the password', async () => {
    const client = new PortalClient(server.url);
    const response = await client.postForm('/portal/sign-up', '/portal/sign-up', { email: 'weak@example.com', password: 'password1234' });
    assert.equal(response.status, 400);
    const html = await response.text();
    assert.match(html, /id="field-password-error"[^>]*>This password is too easy to guess/);
    assert.match(html, /value="weak@example.com"/);
    assert.doesNotMatch(html, /password1234/);
    const short = await client.postForm('/portal/sign-up', '/portal/sign-up', { email: 'weak@example.com', password: 'short' });
    assert.equal(short.status, 400);
    assert.match(await short.text(), /Use at least 12 characters/);
    const bad = await client.postForm('/portal/sign-up', '/portal/sign-up', { email: 'not-an-email', password: STRONG_PASSWORD });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /id="field-email-error"/);
    assert.equal(await server.deps.prisma.account.count({ where: { email: 'weak@example.com' } }), 0);
  });

  it('answers an unknown email and a wrong password alike, then throttles with 429', async () => {
    const email = 'guarded@example.com';
    await signUpAndSignIn(server, smtp, email);
    const client = new PortalClient(server.url);
    const unknown = await client.postForm('/portal/sign-in', '/portal/sign-in', { email: 'nobody@example.com', password: 'wrong password entirely' });
    const wrong = await client.postForm('/portal/sign-in', '/portal/sign-in', { email, password: 'wrong password entirely' });
    assert.equal(unknown.status, 400);
    assert.equal(wrong.status, 400);
    const [a, b] = [await unknown.text(), await wrong.text()];
    assert.match(a, /Email or password is incorrect\./);
    assert.match(b, /Email or password is incorrect\./);
    const strip = (html: string) => html.replace(/value="[^"]*"/g, '');
    assert.equal(strip(a), strip(b), 'the same page');
    assert.doesNotMatch(b, /wrong password entirely/);
    const failed = await eventsOf('account.sign_in_failed');
    assert.ok(failed.some((e) => e.subjectId !== null));
    assert.ok(!JSON.stringify(failed.map((e) => [e.data, e.actorId])).includes('wrong password entirely'));
    assert.ok(!JSON.stringify(failed.map((e) => [e.data, e.actorId])).includes('nobody@example.com'));

    for (let i = 0; i < 4; i++) assert.equal((await client.postForm('/portal/sign-in', '/portal/sign-in', { email, password: `wrong ${i}` })).status, 400);
    // Five failures for this account from this address: the sixth try, even with the right password, waits.
    const blocked = await client.postForm('/portal/sign-in', '/portal/sign-in', { email, password: STRONG_PASSWORD });
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.headers.get('retry-after')) > 0);
    assert.match(await blocked.text(), /Too many attempts, try again in \d+ minutes?/);
  });

  it('counts a password try before checking it: of 20 concurrent wrong passwords at most 5 are checked (400), the rest 429', async () => {
    const email = 'stampede@example.com';
    await signUpAndSignIn(server, smtp, email);
    const client = new PortalClient(server.url);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => client.postForm('/portal/sign-in', '/portal/sign-in', { email, password: `wrong guess ${i}` })));
    const statuses = answers.map((a) => a.status);
    assert.ok(statuses.filter((s) => s === 400).length <= 5, `checked: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 429).length, 20 - statuses.filter((s) => s === 400).length, statuses.join(','));
    const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email } });
    const failed = await server.deps.prisma.auditEvent.count({ where: { type: 'account.sign_in_failed', subjectId: account.id } });
    assert.ok(failed <= 5, `${failed} passwords checked`);
  });

  it('refuses reused, expired and tampered links for verification and reset', async () => {
    const email = 'links@example.com';
    const client = new PortalClient(server.url);
    let before = smtp.messages.length;
    await client.postForm('/portal/sign-up', '/portal/sign-up', { email, password: STRONG_PASSWORD });
    const link = await linkFromMail(server, smtp, email, 'verify-email', { after: before });
    const token = tokenOf(link);
    const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    for (const bad of [tampered, 'garbage', `${token.split('.')[0]}.`]) {
      const page = await client.get(`/portal/verify-email?token=${encodeURIComponent(bad)}`);
      assert.equal(page.status, 410);
      assert.match(await page.text(), /This link has expired/);
      const posted = await client.post('/portal/verify-email', { token: bad });
      assert.equal(posted.status, 410);
    }
    // Expired: 24 hours and a minute later.
    const realNow = server.deps.now;
    server.deps.now = () => new Date(realNow().getTime() + 24 * 3_600_000 + 60_000);
    try {
      const expired = await client.postForm(pathOf(link), '/portal/verify-email', { token });
      assert.equal(expired.status, 410);
      assert.match(await expired.text(), /This link has expired/);
    } finally {
      server.deps.now = realNow;
    }
    assert.equal((await server.deps.prisma.account.findUniqueOrThrow({ where: { email } })).emailVerifiedAt, null);
    // A new link from the expired page's form works; the answer is the same for an unknown address.
    before = smtp.messages.length;
    const resent = await client.postForm('/portal/sign-in', '/portal/verify-email/resend', { email });
    const unknown = await client.postForm('/portal/sign-in', '/portal/verify-email/resend', { email: 'ghost@example.com' });
    assert.equal(resent.status, 200);
    assert.equal(await resent.text(), await unknown.text());
    const fresh = await linkFromMail(server, smtp, email, 'verify-email', { after: before });
    assert.notEqual(fresh, link);
    assert.equal((await client.postForm(pathOf(fresh), '/portal/verify-email', { token: tokenOf(fresh) })).status, 303);

    // Reset links: a reset mail for the account, nothing for an unknown address, same page.
    before = smtp.messages.length;
    const asked = await client.postForm('/portal/reset-password', '/portal/reset-password', { email });
    const askedUnknown = await client.postForm('/portal/reset-password', '/portal/reset-password', { email: 'ghost@example.com' });
    assert.equal(asked.status, 200);
    assert.equal(await asked.text(), await askedUnknown.text());
    const reset = await linkFromMail(server, smtp, email, 'reset-password/confirm', { after: before });
    assert.ok(!smtp.messages.slice(before).some((m) => m.to.includes('ghost@example.com')));
    const resetToken = tokenOf(reset);
    server.deps.now = () => new Date(realNow().getTime() + 31 * 60_000);
    try {
      const expired = await client.get(pathOf(reset));
      assert.equal(expired.status, 410);
      assert.match(await expired.text(), /This link has expired[\s\S]*Send reset link/);
    } finally {
      server.deps.now = realNow;
    }
    const tamperedReset = await client.postForm(pathOf(reset), '/portal/reset-password/confirm', { token: `${resetToken}x`, password: 'a brand new passphrase 2026' });
    assert.equal(tamperedReset.status, 410);
    const weak = await client.postForm(pathOf(reset), '/portal/reset-password/confirm', { token: resetToken, password: 'short' });
    assert.equal(weak.status, 400);
    assert.match(await weak.text(), /Use at least 12 characters/);
    const done = await client.postForm(pathOf(reset), '/portal/reset-password/confirm', { token: resetToken, password: 'a brand new passphrase 2026' });
    assert.equal(done.status, 303);
    const reused = await client.postForm('/portal/reset-password', '/portal/reset-password/confirm', { token: resetToken, password: 'yet another passphrase 2027' });
    assert.equal(reused.status, 410);
  });

  it('ends every session at a password reset, and the reset signs nobody in', async () => {
    const email = 'reset@example.com';
    const first = await signUpAndSignIn(server, smtp, email);
    const second = new PortalClient(server.url);
    await signIn(second, email);
    assert.equal((await first.get('/portal')).status, 200);
    assert.equal((await second.get('/portal')).status, 200);

    const anon = new PortalClient(server.url);
    const before = smtp.messages.length;
    await anon.postForm('/portal/reset-password', '/portal/reset-password', { email });
    const reset = await linkFromMail(server, smtp, email, 'reset-password/confirm', { after: before });
    const newPassword = 'a completely different passphrase 88';
    const done = await anon.postForm(pathOf(reset), '/portal/reset-password/confirm', { token: tokenOf(reset), password: newPassword });
    assert.equal(done.status, 303);
    assert.equal(done.headers.get('location'), '/portal/sign-in');
    assert.equal(anon.cookies.has(SESSION), false, 'not signed in by the reset');

    assert.equal((await first.get('/portal')).status, 302);
    assert.equal((await second.get('/portal')).status, 302);
    const old = await anon.postForm('/portal/sign-in', '/portal/sign-in', { email, password: STRONG_PASSWORD });
    assert.equal(old.status, 400);
    await signIn(anon, email, newPassword);
    assert.equal((await anon.get('/portal')).status, 200);
    const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email } });
    assert.equal((await eventsOf('account.password_reset')).filter((e) => e.subjectId === account.id).length, 1);
  });

  it('ignores an absolute next (open redirect) and follows a portal path', async () => {
    const email = 'next@example.com';
    await signUpAndSignIn(server, smtp, email);
    for (const next of ['https://evil.example', '//evil.example/portal', '/\\evil.example', '/portal//evil.example']) {
      const client = new PortalClient(server.url);
      const page = await client.get(`/portal/sign-in?next=${encodeURIComponent(next)}`);
      assert.doesNotMatch(await page.text(), /evil/);
      const response = await client.post('/portal/sign-in', { email, password: STRONG_PASSWORD, next });
      assert.equal(response.status, 303);
      assert.equal(response.headers.get('location'), '/portal', next);
    }
    const client = new PortalClient(server.url);
    const page = await client.get(`/portal/sign-in?next=${encodeURIComponent('/portal/keys')}`);
    assert.match(await page.text(), /name="next" value="\/portal\/keys"/);
    const response = await client.post('/portal/sign-in', { email, password: STRONG_PASSWORD, next: '/portal/keys' });
    assert.equal(response.headers.get('location'), '/portal/keys');
  });

  it('refuses a form post without its CSRF token or from another origin', async () => {
    const client = new PortalClient(server.url);
    await client.get('/portal/sign-up');
    const without = await client.post('/portal/sign-up', { email: 'csrf@example.com', password: STRONG_PASSWORD }, { csrf: false });
    assert.equal(without.status, 403);
    const foreign = await client.post('/portal/sign-up', { email: 'csrf@example.com', password: STRONG_PASSWORD }, { origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    const signOut = await client.post('/portal/sign-out', {}, { csrf: false });
    assert.equal(signOut.status, 403);
    assert.equal(await server.deps.prisma.account.count({ where: { email: 'csrf@example.com' } }), 0);
  });

  it('shows the sign-in page with its fields and links', async () => {
    const client = new PortalClient(server.url);
    const page = await client.get('/portal/sign-in');
    const html = await page.text();
    assert.equal(page.status, 200);
    assert.match(html, /<label for="field-email">Email<\/label>/);
    assert.match(html, /<label for="field-password">Password<\/label>/);
    assert.match(html, /Sign in<\/button>/);
    assert.match(html, /href="\/portal\/sign-up">Create an account</);
    assert.match(html, /href="\/portal\/reset-password">Forgot your password\?</);
  });
});

describe('portal: restricted sign-up', () => {
  let server: TestServer;
  after(async () => {
    await server?.close();
  });

  it('domain: mode refuses other domains beside the Email field; mail goes to .eml files without SMTP', async () => {
    server = await startTestServer({ env: { LATCHKEY_SIGNUP: 'domain:corp.example' } });
    const client = new PortalClient(server.url);
    const page = await client.get('/portal/sign-up');
    assert.match(await page.text(), /corp\.example/);
    const refused = await client.postForm('/portal/sign-up', '/portal/sign-up', { email: 'outsider@gmail.example', password: STRONG_PASSWORD });
    assert.equal(refused.status, 400);
    const html = await refused.text();
    assert.match(html, /id="field-email-error"[^>]*>Sign-up is open to corp.example addresses only\./);
    assert.match(html, /value="outsider@gmail.example"/);
    assert.equal(await server.deps.prisma.account.count(), 1, 'only the first-start admin');
    const accepted = await signUpAndSignIn(server, null, 'insider@corp.example');
    assert.equal((await accepted.get('/portal')).status, 200);
    // The log names the file, never the link.
    assert.doesNotMatch(server.logs(), /verify-email\?token=/);
  });
});

describe('portal: invite-only sign-up', () => {
  let server: TestServer;
  after(async () => {
    await server?.close();
  });

  it('refuses a plain sign-up', async () => {
    server = await startTestServer({ env: { LATCHKEY_SIGNUP: 'invite' } });
    const client = new PortalClient(server.url);
    const page = await client.get('/portal/sign-up');
    assert.equal(page.status, 403);
    assert.match(await page.text(), /by invitation only/);
    const posted = await client.postForm('/portal/sign-in', '/portal/sign-up', { email: 'x@example.com', password: STRONG_PASSWORD });
    assert.equal(posted.status, 400);
    assert.match(await posted.text(), /by invitation only/);
    assert.equal(await server.deps.prisma.account.count({ where: { email: 'x@example.com' } }), 0);
  });

  it('accepts a sign-up carrying a valid invitation for the same address, then leads to the invitation', async () => {
    const team = await server.deps.prisma.team.findFirstOrThrow();
    const { token } = await server.deps.prisma.$transaction((tx) =>
      issueLinkToken(tx, server.deps, { purpose: 'team_invite', email: 'invited@example.com', teamId: team.id, role: 'member' }),
    );
    const client = new PortalClient(server.url);
    const page = await client.get(`/portal/sign-up?invite=${encodeURIComponent(token)}`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /name="invite"/);
    const other = await client.post('/portal/sign-up', { email: 'other@example.com', password: STRONG_PASSWORD, invite: token });
    assert.equal(other.status, 400);
    assert.match(await other.text(), /Use the address your invitation was sent to/);
    const done = await client.post('/portal/sign-up', { email: 'invited@example.com', password: STRONG_PASSWORD, invite: token });
    assert.equal(done.status, 200);
    const next = `/portal/invitations/accept?token=${encodeURIComponent(token)}`;
    assert.ok((await done.text()).includes(`/portal/sign-in?next=${encodeURIComponent(next)}`.replace(/&/g, '&amp;')));
    // The invitation proved the address: no verification step.
    const signedIn = await client.postForm(`/portal/sign-in?next=${encodeURIComponent(next)}`, '/portal/sign-in', { email: 'invited@example.com', password: STRONG_PASSWORD, next });
    assert.equal(signedIn.status, 303);
    assert.equal(signedIn.headers.get('location'), next);
  });
});
