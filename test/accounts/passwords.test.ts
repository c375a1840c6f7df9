import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createAccount } from '../../src/accounts/accounts.ts';
import { issueLinkToken, peekLinkToken } from '../../src/accounts/links.ts';
import { changePassword, hashPassword, verifyPassword } from '../../src/accounts/passwords.ts';
import { startSession } from '../../src/accounts/sessions.ts';
import { resetPassword } from '../../src/accounts/sign-up.ts';
import type { Actor } from '../../src/actor.ts';
import { rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';

const PASSWORD = 'a quiet harbour at seven bells';
const NEW_PASSWORD = 'lanterns drift over the salt marsh';
let server: TestServer;

before(async () => {
  server = await startTestServer();
});
after(() => server?.close());

async function newAccount(email: string) {
  const now = server.deps.now();
  const passwordHash = await hashPassword(PASSWORD);
  return (await server.deps.prisma.$transaction((tx) => createAccount(tx, { email, passwordHash, emailVerifiedAt: now, now }))).account;
}
const actorFor = (id?: string): Actor => ({ type: 'account', id, ip: '192.0.2.20' });
const link = (accountId: string, email: string, purpose: 'reset_password' | 'verify_email') =>
  server.deps.prisma.$transaction(async (tx) => (await issueLinkToken(tx, server.deps, { purpose, email, accountId })).token);
const live = (purpose: 'reset_password' | 'verify_email', token: string) => peekLinkToken(server.deps.prisma, server.deps, purpose, token).then(Boolean);
const session = async (accountId: string) => {
  const { cookie, session } = await startSession(server.deps, { accountId, stage: 'full' });
  rememberSecret(cookie);
  return session.id;
};
const liveSessions = (accountId: string) => server.deps.prisma.session.count({ where: { accountId, endedAt: null } });

describe('after a password reset or change', () => {
  it('a reset uses up every other reset and verification link, and ends every session', async () => {
    const account = await newAccount('reset@example.test');
    const [used, other, verify] = [await link(account.id, account.email, 'reset_password'), await link(account.id, account.email, 'reset_password'), await link(account.id, account.email, 'verify_email')];
    await session(account.id);
    const result = await resetPassword(server.deps, used, NEW_PASSWORD, actorFor());
    assert.ok(result.ok);
    assert.equal(await live('reset_password', other), false, 'an older reset link no longer works');
    assert.equal(await live('verify_email', verify), false, 'a verification link no longer works');
    assert.deepEqual(await resetPassword(server.deps, other, 'yet another long passphrase 99', actorFor()), { ok: false, reason: 'link' });
    assert.equal(await liveSessions(account.id), 0);
  });

  it('a change uses up the links and ends the other sessions in its transaction, keeping this one', async () => {
    const account = await newAccount('change@example.test');
    const reset = await link(account.id, account.email, 'reset_password');
    const verify = await link(account.id, account.email, 'verify_email');
    const mine = await session(account.id);
    await session(account.id);
    await session(account.id);
    const result = await changePassword(server.deps, account.id, { current: PASSWORD, next: NEW_PASSWORD, keepSessionId: mine }, actorFor(account.id));
    assert.deepEqual(result, { ok: true, sessionsEnded: 2 });
    assert.equal(await live('reset_password', reset), false, 'a reset link mailed before the change no longer works');
    assert.equal(await live('verify_email', verify), false);
    assert.deepEqual(
      (await server.deps.prisma.session.findMany({ where: { accountId: account.id, endedAt: null } })).map((s) => s.id),
      [mine],
    );
    const stored = await server.deps.prisma.account.findUniqueOrThrow({ where: { id: account.id } });
    assert.ok(await verifyPassword(stored.passwordHash, NEW_PASSWORD));
  });

  it('a wrong current password or a weak new one changes nothing', async () => {
    const account = await newAccount('keep@example.test');
    const reset = await link(account.id, account.email, 'reset_password');
    const mine = await session(account.id);
    await session(account.id);
    const wrong = await changePassword(server.deps, account.id, { current: 'not the password', next: NEW_PASSWORD, keepSessionId: mine }, actorFor(account.id));
    assert.equal(wrong.ok, false);
    assert.equal(!wrong.ok && wrong.reason, 'wrong_password');
    const weak = await changePassword(server.deps, account.id, { current: PASSWORD, next: 'short', keepSessionId: mine }, actorFor(account.id));
    assert.equal(!weak.ok && weak.reason, 'weak');
    assert.equal(await live('reset_password', reset), true);
    assert.equal(await liveSessions(account.id), 2);
  });
});
