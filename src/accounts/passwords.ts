import argon2 from 'argon2';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { Tx } from '../db/database.ts';
import { NotFound } from '../lib/errors.ts';
import { checkPassword } from './password-policy.ts';

// OWASP password storage cheat sheet: argon2id, 19 MiB, t=2, p=1 is the floor; we go above it.
export const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 3, parallelism: 1 } as const;

export const hashPassword = (password: string) => argon2.hash(password, ARGON2_OPTIONS);

/** Whether `password` matches `hash`; a malformed hash or an over-long password is just "no". */
export async function verifyPassword(hash: string | null, password: string): Promise<boolean> {
  if (!hash || password.length > 4096) return false;
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

/**
 * What a new password ends, in the transaction that sets it: every other session of the account
 * (all of them when `keep` is null), and every unused reset or verification link (a link mailed
 * before the change must not open the account after it).
 */
export async function endCredentialsAfterPasswordChange(tx: Tx, accountId: string, keep: string | null, now: Date): Promise<number> {
  await tx.linkToken.updateMany({ where: { accountId, purpose: { in: ['reset_password', 'verify_email'] }, usedAt: null }, data: { usedAt: now } });
  const { count } = await tx.session.updateMany({ where: { accountId, endedAt: null, ...(keep ? { id: { not: keep } } : {}) }, data: { endedAt: now } });
  return count;
}

export type ChangePasswordResult =
  | { ok: true; sessionsEnded: number }
  | { ok: false; reason: 'throttled'; retryAfterSeconds: number }
  | { ok: false; reason: 'wrong_password' | 'weak'; error: string };

/**
 * Changes a signed-in person's password on the current one (re-authentication). Guessing the
 * current password from a stolen session is throttled like sign-in (same 'sign_in' counters).
 */
export async function changePassword(
  deps: Pick<Deps, 'prisma' | 'now' | 'throttle'>,
  accountId: string,
  input: { current: string; next: string; keepSessionId: string | null },
  actor: Actor,
): Promise<ChangePasswordResult> {
  const account = await deps.prisma.account.findUnique({ where: { id: accountId } });
  if (!account) throw new NotFound('account');
  const ip = actor.ip ?? 'unknown';
  const verdict = await deps.throttle.attempt('sign_in', account.email, ip);
  if (!verdict.allowed) return { ok: false, reason: 'throttled', retryAfterSeconds: verdict.retryAfterSeconds };
  if (!(await verifyPassword(account.passwordHash, input.current))) return { ok: false, reason: 'wrong_password', error: 'That is not your current password.' };
  await deps.throttle.succeed('sign_in', account.email, ip);
  const weak = checkPassword(input.next, { email: account.email });
  if (weak) return { ok: false, reason: 'weak', error: weak };
  const passwordHash = await hashPassword(input.next);
  const now = deps.now();
  const sessionsEnded = await deps.prisma.$transaction(async (tx) => {
    await tx.account.update({ where: { id: accountId }, data: { passwordHash, passwordChangedAt: now } });
    const ended = await endCredentialsAfterPasswordChange(tx, accountId, input.keepSessionId, now);
    await appendAuditEvents(tx, [actorEvent(actor, 'account.password_changed', 'account', accountId, { sessionsEnded: ended })], now);
    return ended;
  });
  return { ok: true, sessionsEnded };
}
