import { randomBytes } from 'node:crypto';
import type { Actor } from '../actor.ts';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import { Conflict } from '../lib/errors.ts';
import type { Deps } from '../context.ts';
import type { Account, Session } from '../db/database.ts';

/** Password accepted and a second factor due ("mfa"), or signed in ("full"). */
export type SessionStage = 'mfa' | 'full';

// The last-seen time is written at most this often: a page view is not a database write.
const TOUCH_EVERY_MS = 60_000;

type SessionDeps = Pick<Deps, 'prisma' | 'keyring' | 'config' | 'now'>;

/** Only a digest of the cookie value is stored: a read of the table signs nobody in. */
export const sessionDigest = (deps: Pick<Deps, 'keyring'>, cookieValue: string) =>
  Buffer.from(deps.keyring.digest(`session:${cookieValue}`)).toString('hex');

export interface StartedSession {
  /** The cookie value: shown to the browser once, never stored. */
  cookie: string;
  session: Session;
}

/**
 * A new session id at every step up (password, then second factor: ASVS 7.2.4), so a session
 * id planted before sign-in is worth nothing after it.
 */
export async function startSession(
  deps: SessionDeps,
  input: { accountId: string; stage: SessionStage; teamId?: string | null; ip?: string; userAgent?: string; replacing?: string | null; mfa?: boolean },
): Promise<StartedSession> {
  const cookie = randomBytes(32).toString('base64url');
  const now = deps.now();
  const session = await deps.prisma.$transaction(async (tx) => {
    if (input.replacing) await tx.session.updateMany({ where: { id: input.replacing, endedAt: null }, data: { endedAt: now } });
    return tx.session.create({
      data: {
        id: sessionDigest(deps, cookie),
        accountId: input.accountId,
        teamId: input.teamId ?? null,
        stage: input.stage,
        ip: input.ip?.slice(0, 64),
        userAgent: input.userAgent?.slice(0, 300),
        createdAt: now,
        lastSeenAt: now,
        // A half-finished sign-in (password only) lives minutes, not hours.
        expiresAt: new Date(now.getTime() + (input.stage === 'mfa' ? 10 * 60_000 : deps.config.LATCHKEY_SESSION_MAX)),
        mfaAt: input.mfa ? now : null,
      },
    });
  });
  return { cookie, session };
}

/** A team membership as every signed-in page needs it. */
export interface SessionMembership {
  teamId: string;
  role: string;
  team: { id: string; name: string; personalAccountId: string | null; status: string };
}

export interface LiveSession {
  session: Session;
  account: Account & { memberships: SessionMembership[] };
}

// Every page view of a signed-in person starts here, so it is one round trip below Prisma: the
// session, its account and the account's teams (named: parsed once per connection).
const LIVE_SESSION_SQL = `
  SELECT s.id, s.account_id, s.team_id, s.stage, s.ip, s.user_agent, s.created_at, s.last_seen_at, s.expires_at, s.ended_at, s.mfa_at,
         a.email, a.password_hash, a.role, a.status, a.email_verified_at, a.password_changed_at, a.mfa_secret_encrypted,
         a.mfa_enabled_at, a.mfa_last_step::text AS mfa_last_step, a.created_at AS account_created_at,
         COALESCE((SELECT json_agg(json_build_object('teamId', m.team_id, 'role', m.role, 'name', t.name,
                                                     'personalAccountId', t.personal_account_id, 'status', t.status) ORDER BY m.created_at)
                     FROM membership m JOIN team t ON t.id = m.team_id WHERE m.account_id = a.id), '[]'::json) AS memberships
    FROM session s JOIN account a ON a.id = s.account_id
   WHERE s.id = $1`;

interface LiveSessionRow {
  id: string;
  account_id: string;
  team_id: string | null;
  stage: string;
  ip: string | null;
  user_agent: string | null;
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
  ended_at: Date | null;
  mfa_at: Date | null;
  email: string;
  password_hash: string | null;
  role: string;
  status: string;
  email_verified_at: Date | null;
  password_changed_at: Date | null;
  mfa_secret_encrypted: string | null;
  mfa_enabled_at: Date | null;
  mfa_last_step: string | null;
  account_created_at: Date;
  memberships: { teamId: string; role: string; name: string; personalAccountId: string | null; status: string }[];
}

/**
 * The live session behind a cookie with its account and teams, or null: ended, past its
 * absolute or idle timeout, or unknown.
 */
export async function findSession(deps: SessionDeps & Pick<Deps, 'db'>, cookie: string): Promise<LiveSession | null> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(cookie)) return null;
  const [row] = (await deps.db.query({ name: 'live_session', text: LIVE_SESSION_SQL, values: [sessionDigest(deps, cookie)] })) as LiveSessionRow[];
  const now = deps.now();
  if (!row || row.ended_at || row.expires_at <= now) return null;
  if (now.getTime() - row.last_seen_at.getTime() > deps.config.LATCHKEY_SESSION_IDLE) return null;
  if (now.getTime() - row.last_seen_at.getTime() > TOUCH_EVERY_MS) {
    await deps.prisma.session.update({ where: { id: row.id }, data: { lastSeenAt: now } });
  }
  const session: Session = {
    id: row.id,
    accountId: row.account_id,
    teamId: row.team_id,
    stage: row.stage,
    ip: row.ip,
    userAgent: row.user_agent,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    expiresAt: row.expires_at,
    endedAt: row.ended_at,
    mfaAt: row.mfa_at,
  };
  const account = {
    id: row.account_id,
    email: row.email,
    passwordHash: row.password_hash,
    role: row.role,
    status: row.status,
    emailVerifiedAt: row.email_verified_at,
    passwordChangedAt: row.password_changed_at,
    mfaSecretEncrypted: row.mfa_secret_encrypted,
    mfaEnabledAt: row.mfa_enabled_at,
    mfaLastStep: row.mfa_last_step === null ? null : BigInt(row.mfa_last_step),
    createdAt: row.account_created_at,
    memberships: row.memberships.map((m) => ({
      teamId: m.teamId,
      role: m.role,
      team: { id: m.teamId, name: m.name, personalAccountId: m.personalAccountId, status: m.status },
    })),
  } satisfies Account & { memberships: SessionMembership[] };
  return { session, account };
}

export async function endSession(deps: SessionDeps, id: string): Promise<void> {
  await deps.prisma.session.updateMany({ where: { id, endedAt: null }, data: { endedAt: deps.now() } });
}

/** Ends every session of an account but `keep` (a password change, "sign out everywhere"). */
export async function endOtherSessions(deps: SessionDeps, accountId: string, keep: string | null): Promise<number> {
  const { count } = await deps.prisma.session.updateMany({
    where: { accountId, endedAt: null, ...(keep ? { id: { not: keep } } : {}) },
    data: { endedAt: deps.now() },
  });
  return count;
}

export async function setSessionTeam(deps: SessionDeps, id: string, teamId: string): Promise<void> {
  await deps.prisma.session.update({ where: { id }, data: { teamId } });
}

/** The live sessions of an account, newest first, for the Sessions page. */
export function listSessions(deps: SessionDeps, accountId: string) {
  const now = deps.now();
  return deps.prisma.session.findMany({
    where: { accountId, endedAt: null, stage: 'full', expiresAt: { gt: now }, lastSeenAt: { gt: new Date(now.getTime() - deps.config.LATCHKEY_SESSION_IDLE) } },
    orderBy: { lastSeenAt: 'desc' },
    take: 100,
  });
}

/** How recent an authentication code must be for a destructive admin action (issue 8 §1.1). */
export const STEP_UP_WINDOW_MS = 5 * 60_000;

/** Whether this session checked an authentication code within the step-up window. */
export const steppedUp = (session: Pick<Session, 'mfaAt'>, now: Date): boolean =>
  session.mfaAt !== null && now.getTime() - session.mfaAt.getTime() < STEP_UP_WINDOW_MS;

/** A code was just checked in this session (step-up): destructive actions are open for a while. */
export async function recordStepUp(deps: SessionDeps, id: string): Promise<Date> {
  const now = deps.now();
  await deps.prisma.session.updateMany({ where: { id, endedAt: null }, data: { mfaAt: now } });
  return now;
}

/**
 * An admin ends every live session of an account (issue 8 §1.2) but `keep` (their own, when it
 * is their account), recorded with the reason in the same transaction. None: Conflict, no event.
 */
export async function endAccountSessions(deps: SessionDeps, accountId: string, reason: string, actor: Actor, keep?: string): Promise<number> {
  const now = deps.now();
  return deps.prisma.$transaction(async (tx) => {
    const { count } = await tx.session.updateMany({
      where: { accountId, endedAt: null, expiresAt: { gt: now }, ...(keep ? { id: { not: keep } } : {}) },
      data: { endedAt: now },
    });
    if (count === 0) throw new Conflict('they have no live session');
    await appendAuditEvents(tx, [actorEvent(actor, 'session.ended', 'account', accountId, { count, reason })], now);
    return count;
  });
}
