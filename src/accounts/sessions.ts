import { randomBytes } from 'node:crypto';
import type { Deps } from '../context.ts';
import type { Session } from '../db/database.ts';

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

/** The live session behind a cookie, or null: ended, past its absolute or idle timeout, or unknown. */
export async function findSession(deps: SessionDeps, cookie: string): Promise<Session | null> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(cookie)) return null;
  const session = await deps.prisma.session.findUnique({ where: { id: sessionDigest(deps, cookie) } });
  const now = deps.now();
  if (!session || session.endedAt || session.expiresAt <= now) return null;
  if (now.getTime() - session.lastSeenAt.getTime() > deps.config.LATCHKEY_SESSION_IDLE) return null;
  if (now.getTime() - session.lastSeenAt.getTime() > TOUCH_EVERY_MS) {
    await deps.prisma.session.update({ where: { id: session.id }, data: { lastSeenAt: now } });
  }
  return session;
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
