import { randomBytes } from 'node:crypto';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { Account } from '../db/database.ts';
import { normaliseEmail } from './accounts.ts';
import { hashPassword, verifyPassword } from './passwords.ts';

type SignInDeps = Pick<Deps, 'prisma' | 'now' | 'throttle'>;

// Verified against when the address has no account (or no password), so an unknown address
// costs the same argon2 time as a wrong password (no enumeration by timing).
let dummyHash: Promise<string> | undefined;
const dummy = () => (dummyHash ??= hashPassword(randomBytes(24).toString('base64url')));

export type SignInResult =
  | { ok: true; account: Account }
  /** Unknown address, wrong password or suspended account: one answer for all. */
  | { ok: false; reason: 'invalid' }
  | { ok: false; reason: 'throttled'; retryAfterSeconds: number }
  /** Correct password, address not yet verified. */
  | { ok: false; reason: 'unverified'; email: string };

/** Checks an email and password, throttled per account and IP and per IP (limits/throttle.ts). */
export async function signIn(deps: SignInDeps, input: { email: string; password: string; ip: string }, actor: Actor): Promise<SignInResult> {
  const email = normaliseEmail(input.email).slice(0, 254);
  const throttle = deps.throttle;
  // Consumed before argon2 runs: concurrent guesses cannot all slip under the limit.
  const verdict = await throttle.attempt('sign_in', email, input.ip);
  if (!verdict.allowed) return { ok: false, reason: 'throttled', retryAfterSeconds: verdict.retryAfterSeconds };

  const account = email ? await deps.prisma.account.findUnique({ where: { email } }) : null;
  const passwordOk = await verifyPassword(account?.passwordHash ?? (await dummy()), input.password.slice(0, 4096));
  if (!account || !account.passwordHash || !passwordOk || account.status !== 'active') {
    const reason = !account ? 'unknown_email' : !passwordOk ? 'wrong_password' : 'suspended';
    // The account id when known; never the password, and no address that has no account.
    await audit(deps, actorEvent(actor, 'account.sign_in_failed', 'account', account?.id ?? null, { reason }));
    return { ok: false, reason: 'invalid' };
  }
  await throttle.succeed('sign_in', email, input.ip);
  if (!account.emailVerifiedAt) return { ok: false, reason: 'unverified', email: account.email };
  return { ok: true, account };
}

/** An audit event in a transaction of its own (sign-in, sign-out: no other change to join). */
export async function audit(deps: SignInDeps, event: ReturnType<typeof actorEvent>): Promise<void> {
  const now = deps.now();
  await deps.prisma.$transaction((tx) => appendAuditEvents(tx, [event], now));
}
