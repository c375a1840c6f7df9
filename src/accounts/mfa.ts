import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { Tx } from '../db/database.ts';
import { Conflict, NotFound } from '../lib/errors.ts';
import { isStaffRole } from './accounts.ts';
import { newRecoveryCodes, newTotpSecret, normaliseRecoveryCode, totpQrSvg, totpUri, verifyTotp } from './totp.ts';

/**
 * Two-factor authentication (TOTP, RFC 6238) and its recovery codes (ASVS 5.0 §6.5):
 * the shared secret is kept encrypted under the keyring, recovery codes only as keyed digests,
 * every code is single use, and each change is audited in the transaction that makes it.
 */
type MfaDeps = Pick<Deps, 'prisma' | 'keyring' | 'audit' | 'now' | 'throttle'>;

/** A refusal by the brute-force limits ('mfa': per account and address, limits/throttle.ts). */
export type Throttled = { ok: false; reason: 'throttled'; retryAfterSeconds: number };

export interface Enrolment {
  /** Base32, for typing into an app that cannot scan. */
  secret: string;
  /** otpauth:// URI the QR code encodes. */
  uri: string;
  /** Our own qrcode output (checked in totp.ts), safe to inline. */
  qrSvg: string;
}

/** The stored form of a recovery code: a keyed digest, never the code (domain-separated from other digests). */
export const recoveryCodeDigest = (deps: Pick<Deps, 'keyring'>, normalised: string) => deps.keyring.digest(`recovery-code:${normalised}`);

async function loadAccount(deps: Pick<Deps, 'prisma'>, accountId: string) {
  const account = await deps.prisma.account.findUnique({ where: { id: accountId } });
  if (!account) throw new NotFound('account');
  return account;
}

async function enrolmentFor(email: string, secret: string): Promise<Enrolment> {
  const uri = totpUri({ secret, email });
  return { secret, uri, qrSvg: await totpQrSvg(uri) };
}

async function replaceRecoveryCodes(deps: Pick<Deps, 'keyring'>, tx: Tx, accountId: string, now: Date): Promise<string[]> {
  const codes = newRecoveryCodes();
  await tx.recoveryCode.deleteMany({ where: { accountId } });
  await tx.recoveryCode.createMany({ data: codes.map((code) => ({ accountId, digest: recoveryCodeDigest(deps, code), createdAt: now })) });
  return codes;
}

/**
 * Starts (or restarts) enrolment: a new secret, stored encrypted while MFA is still off. The
 * secret never travels in a form; confirmation reads it back from the account.
 */
export async function beginEnrolment(deps: MfaDeps, accountId: string): Promise<Enrolment> {
  const account = await loadAccount(deps, accountId);
  if (account.mfaEnabledAt) throw new Conflict('two-factor authentication is already on');
  const secret = newTotpSecret();
  const { count } = await deps.prisma.account.updateMany({
    where: { id: accountId, mfaEnabledAt: null },
    data: { mfaSecretEncrypted: deps.keyring.encrypt(secret), mfaLastStep: null },
  });
  if (count !== 1) throw new Conflict('two-factor authentication is already on');
  return enrolmentFor(account.email, secret);
}

/** The enrolment in progress (to show the same QR code again after a wrong code), or null. */
export async function pendingEnrolment(deps: MfaDeps, accountId: string): Promise<Enrolment | null> {
  const account = await loadAccount(deps, accountId);
  if (account.mfaEnabledAt || !account.mfaSecretEncrypted) return null;
  return enrolmentFor(account.email, deps.keyring.decrypt(account.mfaSecretEncrypted));
}

/**
 * Turns MFA on once a code from the app proves it holds the secret. Returns the ten recovery
 * codes (shown once, stored as digests), or null when the code is wrong or no enrolment is pending.
 */
export async function confirmEnrolment(deps: MfaDeps, accountId: string, code: string, actor: Actor): Promise<string[] | null> {
  const now = deps.now();
  return deps.prisma.$transaction(async (tx) => {
    // Locked, so two confirmations (or a re-begin) cannot interleave.
    const [account] = await tx.$queryRaw<{ mfa_secret_encrypted: string | null; mfa_enabled_at: Date | null }[]>`
      SELECT mfa_secret_encrypted, mfa_enabled_at FROM account WHERE id = ${accountId}::uuid FOR UPDATE`;
    if (!account || account.mfa_enabled_at || !account.mfa_secret_encrypted) return null;
    const verdict = verifyTotp({ secret: deps.keyring.decrypt(account.mfa_secret_encrypted), code, now, lastStep: null });
    if (!verdict.ok) return null;
    await tx.account.update({ where: { id: accountId }, data: { mfaEnabledAt: now, mfaLastStep: verdict.step } });
    const codes = await replaceRecoveryCodes(deps, tx, accountId, now);
    await appendAuditEvents(tx, [actorEvent(actor, 'account.mfa_enabled', 'account', accountId)], now);
    return codes;
  });
}

export type SecondFactorResult = { ok: true } | { ok: false; reason: 'wrong_code' } | Throttled;

/**
 * Checks a second factor: a TOTP code (single use: the step is claimed by a conditional update,
 * so two concurrent uses of one code cannot both pass) or an unused recovery code (claimed the
 * same way). Throttled ('mfa', per account and the actor's address): the try is counted before
 * the code is looked at, and given back on success. A failure is audited as `account.mfa_failed`.
 */
export async function verifySecondFactor(deps: MfaDeps, accountId: string, code: string, actor: Actor): Promise<SecondFactorResult> {
  const ip = actor.ip ?? 'unknown';
  const verdict = await deps.throttle.attempt('mfa', accountId, ip);
  if (!verdict.allowed) return { ok: false, reason: 'throttled', retryAfterSeconds: verdict.retryAfterSeconds };
  if (!(await checkSecondFactor(deps, accountId, code, actor))) {
    await deps.audit.record(actorEvent(actor, 'account.mfa_failed', 'account', accountId));
    return { ok: false, reason: 'wrong_code' };
  }
  await deps.throttle.succeed('mfa', accountId, ip);
  return { ok: true };
}

async function checkSecondFactor(deps: MfaDeps, accountId: string, code: string, actor: Actor): Promise<boolean> {
  const account = await deps.prisma.account.findUnique({ where: { id: accountId } });
  if (!account?.mfaEnabledAt || !account.mfaSecretEncrypted) return false;
  const now = deps.now();
  if (/^[0-9]{6}$/.test(code.replace(/\s+/g, ''))) {
    const verdict = verifyTotp({ secret: deps.keyring.decrypt(account.mfaSecretEncrypted), code, now, lastStep: account.mfaLastStep });
    if (!verdict.ok) return false;
    const { count } = await deps.prisma.account.updateMany({
      where: { id: accountId, mfaEnabledAt: { not: null }, OR: [{ mfaLastStep: null }, { mfaLastStep: { lt: verdict.step } }] },
      data: { mfaLastStep: verdict.step },
    });
    return count === 1;
  }
  const normalised = normaliseRecoveryCode(code);
  if (!normalised) return false;
  return deps.prisma.$transaction(async (tx) => {
    const { count } = await tx.recoveryCode.updateMany({
      where: { accountId, digest: recoveryCodeDigest(deps, normalised), usedAt: null },
      data: { usedAt: now },
    });
    if (count !== 1) return false;
    const left = await tx.recoveryCode.count({ where: { accountId, usedAt: null } });
    await appendAuditEvents(tx, [actorEvent(actor, 'account.recovery_code_used', 'account', accountId, { left })], now);
    return true;
  });
}

export type MfaChange = { ok: true } | { ok: false; reason: 'wrong_code' | 'admin' | 'not_enabled' } | Throttled;

/**
 * Turns MFA off, on a current code (re-authentication). Admins may not: MFA is mandatory for them.
 */
export async function disableMfa(deps: MfaDeps, accountId: string, code: string, actor: Actor): Promise<MfaChange> {
  const account = await loadAccount(deps, accountId);
  if (!account.mfaEnabledAt) return { ok: false, reason: 'not_enabled' };
  if (isStaffRole(account.role)) return { ok: false, reason: 'admin' };
  const checked = await verifySecondFactor(deps, accountId, code, actor);
  if (!checked.ok) return checked;
  const now = deps.now();
  await deps.prisma.$transaction(async (tx) => {
    await tx.account.update({ where: { id: accountId }, data: { mfaEnabledAt: null, mfaSecretEncrypted: null, mfaLastStep: null } });
    await tx.recoveryCode.deleteMany({ where: { accountId } });
    await appendAuditEvents(tx, [actorEvent(actor, 'account.mfa_disabled', 'account', accountId)], now);
  });
  return { ok: true };
}

/** Ten new recovery codes (the old ones stop working), on a current code. */
export async function regenerateRecoveryCodes(
  deps: MfaDeps,
  accountId: string,
  code: string,
  actor: Actor,
): Promise<{ ok: true; codes: string[] } | { ok: false; reason: 'wrong_code' } | Throttled> {
  const checked = await verifySecondFactor(deps, accountId, code, actor);
  if (!checked.ok) return checked;
  const now = deps.now();
  const codes = await deps.prisma.$transaction(async (tx) => {
    const fresh = await replaceRecoveryCodes(deps, tx, accountId, now);
    await appendAuditEvents(tx, [actorEvent(actor, 'account.recovery_codes_regenerated', 'account', accountId)], now);
    return fresh;
  });
  return { ok: true, codes };
}

export function recoveryCodesLeft(deps: Pick<Deps, 'prisma'>, accountId: string): Promise<number> {
  return deps.prisma.recoveryCode.count({ where: { accountId, usedAt: null } });
}
