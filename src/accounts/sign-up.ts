import { z } from 'zod';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import { accountExistsMessage, passwordResetMessage, verifyEmailMessage } from '../mail/messages.ts';
import { createAccount, normaliseEmail } from './accounts.ts';
import { endCredentialsAfterPasswordChange, hashPassword } from './passwords.ts';
import { consumeLinkToken, issueLinkToken, LINK_LIFETIME_TEXT, peekLinkToken } from './links.ts';
import { checkPassword } from './password-policy.ts';

type SignUpDeps = Pick<Deps, 'prisma' | 'keyring' | 'config' | 'mailer' | 'now' | 'throttle' | 'log'>;

/**
 * Work whose duration would tell whether an address has an account (a transaction, an audit
 * event, a mail) runs after the answer: the page is the same and comes as fast either way.
 * `done` settles when the work has (it never rejects: a failure is logged).
 */
export type Answered = { ok: true; done: Promise<void> };

function inBackground(deps: Pick<Deps, 'log'>, what: string, work: Promise<void>): Promise<void> {
  return work.catch((error: unknown) => deps.log.error({ err: error }, `${what} failed`));
}

/** A refusal by the brute-force limits (limits/throttle.ts); the page answers 429. */
export type Throttled = { ok: false; reason: 'throttled'; retryAfterSeconds: number };

/** Every request counts ('reset': per address and per IP), since each may send a mail. */
async function mailThrottle(deps: Pick<Deps, 'throttle'>, email: string, actor: Actor): Promise<Throttled | null> {
  const verdict = await deps.throttle.attempt('reset', email, actor.ip ?? 'unknown');
  return verdict.allowed ? null : { ok: false, reason: 'throttled', retryAfterSeconds: verdict.retryAfterSeconds };
}

export type FieldErrors = Partial<Record<'email' | 'password' | 'invite', string>>;

const emailSchema = z.email().max(254);

/** A trimmed, lowercased address, or a message for the Email field. */
export function parseEmail(raw: string): { ok: true; email: string } | { ok: false; error: string } {
  const email = normaliseEmail(raw);
  if (!email) return { ok: false, error: 'Enter your email address.' };
  if (!emailSchema.safeParse(email).success) return { ok: false, error: 'Enter an email address like name@example.com.' };
  return { ok: true, email };
}

/** LATCHKEY_SIGNUP as the sign-up page sees it. */
export type SignUpMode = { kind: 'open' } | { kind: 'invite' } | { kind: 'domain'; domain: string };

export function signUpMode(config: Pick<Deps['config'], 'LATCHKEY_SIGNUP'>): SignUpMode {
  const value = config.LATCHKEY_SIGNUP;
  if (value === 'invite') return { kind: 'invite' };
  if (value.startsWith('domain:')) return { kind: 'domain', domain: value.slice('domain:'.length).toLowerCase() };
  return { kind: 'open' };
}

/** Whether an invitation token allows a sign-up in invite mode (the invitation itself is accepted after sign-in). */
export async function validInvitation(deps: Pick<Deps, 'prisma' | 'keyring' | 'now'>, token: unknown) {
  return peekLinkToken(deps.prisma, deps, 'team_invite', token);
}

/**
 * Sign-up (ASVS 6.2, no enumeration): the answer is the same "check your inbox" whether or not
 * the address already has an account; only the mail differs. The password is hashed either way
 * so the time is alike.
 */
export async function signUp(
  deps: SignUpDeps,
  input: { email: string; password: string; invite?: string },
  actor: Actor,
): Promise<{ ok: true; email: string; invited: boolean } | { ok: false; reason?: undefined; errors: FieldErrors } | Throttled> {
  const parsed = parseEmail(input.email);
  if (!parsed.ok) return { ok: false, errors: { email: parsed.error, ...passwordError(input.password, undefined) } };
  const email = parsed.email;
  const mode = signUpMode(deps.config);
  // An invitation for this very address stands in for the verification mail (whoever holds
  // it read that mailbox) and for the sign-up restriction (an owner asked for this person).
  const invitation = input.invite ? await validInvitation(deps, input.invite) : null;
  if (mode.kind === 'invite') {
    if (!invitation) return { ok: false, errors: { invite: 'Sign-up is by invitation only. Ask a team owner to invite you.' } };
    if (invitation.email !== email) return { ok: false, errors: { email: 'Use the address your invitation was sent to.' } };
  }
  const invited = invitation !== null && invitation.email === email;
  if (mode.kind === 'domain' && !invited && email.split('@')[1] !== mode.domain) {
    return { ok: false, errors: { email: `Sign-up is open to ${mode.domain} addresses only.` } };
  }
  const weak = passwordError(input.password, email);
  if (weak) return { ok: false, errors: weak };

  // Before argon2 and any mail: per address (mail to one inbox) and per IP (us as a mailer).
  const verdict = await deps.throttle.attempt('sign_up', email, actor.ip ?? 'unknown');
  if (!verdict.allowed) return { ok: false, reason: 'throttled', retryAfterSeconds: verdict.retryAfterSeconds };
  const passwordHash = await hashPassword(input.password);
  const existing = await deps.prisma.account.findUnique({ where: { email }, select: { id: true } });
  if (existing) {
    await sendAccountExists(deps, email);
    return { ok: true, email, invited };
  }
  const now = deps.now();
  let link: string | null;
  try {
    link = await deps.prisma.$transaction(async (tx) => {
      const { account, team } = await createAccount(tx, { email, passwordHash, now, emailVerifiedAt: invited ? now : null });
      const issued = invited ? null : await issueLinkToken(tx, deps, { purpose: 'verify_email', email, accountId: account.id });
      await appendAuditEvents(tx, [actorEvent({ ...actor, id: account.id }, 'account.signed_up', 'account', account.id, { teamId: team.id, invited })], now);
      return issued?.link ?? null;
    });
  } catch (error) {
    // Two sign-ups for one address at once: the loser is told what anyone else is.
    if ((error as { code?: string }).code !== 'P2002') throw error;
    await sendAccountExists(deps, email);
    return { ok: true, email, invited };
  }
  if (link) deps.mailer.send(verifyEmailMessage({ to: email, link, expiresInText: LINK_LIFETIME_TEXT.verify_email }));
  return { ok: true, email, invited };
}

function passwordError(password: string, email: string | undefined): FieldErrors | null {
  const message = checkPassword(password, { email });
  return message ? { password: message } : null;
}

/** At most one "account exists" mail per address an hour ('exists_mail'), whoever asks. */
async function sendAccountExists(deps: SignUpDeps, email: string): Promise<void> {
  if (!(await deps.throttle.attempt('exists_mail', email, '')).allowed) return;
  const base = `${deps.config.LATCHKEY_ISSUER}/portal`;
  deps.mailer.send(accountExistsMessage({ to: email, signInLink: `${base}/sign-in`, resetLink: `${base}/reset-password` }));
}

/** Uses a verification link: marks the address verified. Null when the link is not (or no longer) good. */
export async function verifyEmail(deps: SignUpDeps, token: unknown, actor: Actor): Promise<{ accountId: string } | null> {
  const now = deps.now();
  return deps.prisma.$transaction(async (tx) => {
    const used = await consumeLinkToken(tx, deps, 'verify_email', token);
    if (!used?.accountId) return null;
    const account = await tx.account.findUnique({ where: { id: used.accountId } });
    // The address the link was sent to must still be the account's.
    if (!account || account.email !== used.email) return null;
    if (!account.emailVerifiedAt) await tx.account.update({ where: { id: account.id }, data: { emailVerifiedAt: now } });
    await appendAuditEvents(tx, [actorEvent({ ...actor, id: actor.id ?? account.id }, 'account.email_verified', 'account', account.id)], now);
    return { accountId: account.id };
  });
}

/**
 * A new verification link for an address that has an unverified account; nothing otherwise.
 * The caller answers the same page either way.
 */
export async function resendVerification(deps: SignUpDeps, rawEmail: string, actor: Actor): Promise<Answered | Throttled> {
  const throttled = await mailThrottle(deps, rawEmail.trim(), actor);
  if (throttled) return throttled;
  // Not awaited: see Answered (existence must not show in the time to answer).
  return { ok: true, done: inBackground(deps, 'verification resend', sendVerificationAgain(deps, rawEmail)) };
}

async function sendVerificationAgain(deps: SignUpDeps, rawEmail: string): Promise<void> {
  const parsed = parseEmail(rawEmail);
  if (!parsed.ok) return;
  const account = await deps.prisma.account.findUnique({ where: { email: parsed.email } });
  if (!account || account.emailVerifiedAt || account.status !== 'active') return;
  const link = await deps.prisma.$transaction(async (tx) => (await issueLinkToken(tx, deps, { purpose: 'verify_email', email: account.email, accountId: account.id })).link);
  deps.mailer.send(verifyEmailMessage({ to: account.email, link, expiresInText: LINK_LIFETIME_TEXT.verify_email }));
}

/** Mails a reset link when the address has an active account; nothing otherwise (same answer). */
export async function requestPasswordReset(deps: SignUpDeps, rawEmail: string, actor: Actor): Promise<Answered | Throttled> {
  const throttled = await mailThrottle(deps, rawEmail.trim(), actor);
  if (throttled) return throttled;
  // Not awaited: see Answered (a known address cost a transaction and an audit event, ~89 ms vs 35 ms).
  return { ok: true, done: inBackground(deps, 'password reset request', sendResetLink(deps, rawEmail, actor)) };
}

async function sendResetLink(deps: SignUpDeps, rawEmail: string, actor: Actor): Promise<void> {
  const parsed = parseEmail(rawEmail);
  if (!parsed.ok) return;
  const account = await deps.prisma.account.findUnique({ where: { email: parsed.email } });
  if (!account || account.status !== 'active') return;
  const now = deps.now();
  const link = await deps.prisma.$transaction(async (tx) => {
    const issued = await issueLinkToken(tx, deps, { purpose: 'reset_password', email: account.email, accountId: account.id });
    await appendAuditEvents(tx, [actorEvent(actor, 'account.password_reset_requested', 'account', account.id)], now);
    return issued.link;
  });
  deps.mailer.send(passwordResetMessage({ to: account.email, link, expiresInText: LINK_LIFETIME_TEXT.reset_password }));
}

/**
 * Sets a new password through a reset link: ends every session of the account in the same
 * transaction, and signs nobody in (the next sign-in still asks for the second factor).
 */
export async function resetPassword(
  deps: SignUpDeps,
  token: unknown,
  password: string,
  actor: Actor,
): Promise<{ ok: true; accountId: string } | { ok: false; reason: 'link' } | { ok: false; reason: 'password'; error: string }> {
  const peeked = await peekLinkToken(deps.prisma, deps, 'reset_password', token);
  if (!peeked?.accountId) return { ok: false, reason: 'link' };
  const weak = checkPassword(password, { email: peeked.email });
  if (weak) return { ok: false, reason: 'password', error: weak };
  const passwordHash = await hashPassword(password);
  const now = deps.now();
  const accountId = await deps.prisma.$transaction(async (tx) => {
    const used = await consumeLinkToken(tx, deps, 'reset_password', token);
    if (!used?.accountId) return null;
    const account = await tx.account.findUnique({ where: { id: used.accountId } });
    if (!account || account.email !== used.email || account.status !== 'active') return null;
    // The mailbox answered, so the address is verified too.
    await tx.account.update({ where: { id: account.id }, data: { passwordHash, passwordChangedAt: now, emailVerifiedAt: account.emailVerifiedAt ?? now } });
    // Every session and every other reset or verification link ends with the change (ASVS 7.4.3),
    // atomically: no window where the old password's sessions or links live on.
    const ended = await endCredentialsAfterPasswordChange(tx, account.id, null, now);
    await appendAuditEvents(tx, [actorEvent({ ...actor, id: actor.id ?? account.id }, 'account.password_reset', 'account', account.id, { sessionsEnded: ended })], now);
    return account.id;
  });
  return accountId ? { ok: true, accountId } : { ok: false, reason: 'link' };
}
