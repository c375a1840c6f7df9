import { z } from 'zod';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { Tx } from '../db/database.ts';
import { Conflict, InvalidRequest, NotFound } from '../lib/errors.ts';
import { changeCredentials } from '../lib/invalidation.ts';
import { normaliseEmail } from './accounts.ts';

/**
 * Suspension (issue 8 §1.2, §3): an admin makes every credential of a team, or of a person's
 * personal team, inactive at once and reversibly. Only `team.status` / `account.status`
 * change; credential rows keep their own state, and every credential lookup reads its owner's
 * state alongside (OWNER_SUSPENDED_SQL). Unsuspending therefore restores exactly what was
 * active before: a key revoked or expired meanwhile stays so.
 *
 * Reaching every node: each cached credential record joins the group `team:<id>` of its team
 * (lib/invalidation.ts), so one invalidation message per team drops all of them on every node.
 */

/**
 * The one rule, in SQL, for "this credential's owner is suspended": its team is, or the team is
 * a person's personal team and that person is. Expects the team as `t` and the personal
 * account as `a` (both LEFT JOINed: a credential without a team is never suspended).
 */
export const OWNER_SUSPENDED_SQL = `COALESCE(t.status = 'suspended' OR a.status = 'suspended', false)`;

/** The cache group of a team's credentials (see CredentialCache.get). */
export const teamGroup = (teamId: string) => `team:${teamId}`;

const reasonSchema = z.string().trim().min(1, 'a reason is required').max(500, 'the reason is too long (500 characters at most)');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Admin actions record why: a blank reason is refused before anything changes. */
export function parseReason(reason: unknown): string {
  const parsed = reasonSchema.safeParse(reason);
  if (!parsed.success) throw new InvalidRequest(parsed.error.issues[0]!.message);
  return parsed.data;
}

/** The account an operator names by address (CLI); NotFound when there is none. */
export async function accountIdByEmail(deps: Pick<Deps, 'prisma'>, email: string): Promise<string> {
  const account = await deps.prisma.account.findUnique({ where: { email: normaliseEmail(email) }, select: { id: true } });
  if (!account) throw new NotFound('account');
  return account.id;
}

export interface TeamSuspension {
  team_id: string;
  status: 'active' | 'suspended';
}

export interface AccountSuspension {
  account_id: string;
  email: string;
  status: 'active' | 'suspended';
  /** Sessions ended by a suspension (0 when unsuspending). */
  sessions_ended: number;
}

async function lockTeam(tx: Tx, teamId: string): Promise<{ id: string; status: string }> {
  if (!UUID.test(teamId)) throw new NotFound('team');
  const rows = await tx.$queryRaw<{ id: string; status: string }[]>`SELECT id::text, status FROM team WHERE id = ${teamId.toLowerCase()}::uuid FOR UPDATE`;
  if (!rows[0]) throw new NotFound('team');
  return rows[0];
}

async function lockAccount(tx: Tx, accountId: string): Promise<{ id: string; email: string; status: string }> {
  if (!UUID.test(accountId)) throw new NotFound('account');
  const rows = await tx.$queryRaw<{ id: string; email: string; status: string }[]>`
    SELECT id::text, email, status FROM account WHERE id = ${accountId.toLowerCase()}::uuid FOR UPDATE`;
  if (!rows[0]) throw new NotFound('account');
  return rows[0];
}

async function setTeamStatus(deps: Deps, actor: Actor, teamId: string, reason: unknown, status: 'active' | 'suspended'): Promise<TeamSuspension> {
  const why = parseReason(reason);
  const now = deps.now();
  return changeCredentials(deps, async (tx, invalidate) => {
    const team = await lockTeam(tx, teamId);
    // A repeat is refused, and leaves no second event (issue 8 §2).
    if (team.status === status) throw new Conflict(status === 'suspended' ? 'team is already suspended' : 'team is not suspended');
    await tx.team.update({ where: { id: team.id }, data: { status } });
    await appendAuditEvents(tx, [actorEvent(actor, status === 'suspended' ? 'team.suspended' : 'team.unsuspended', 'team', team.id, { reason: why, teamId: team.id })], now);
    await invalidate(teamGroup(team.id));
    return { team_id: team.id, status };
  });
}

/** Every API key and application of the team becomes inactive, on every node within a second. */
export const suspendTeam = (deps: Deps, actor: Actor, teamId: string, reason: string) => setTeamStatus(deps, actor, teamId, reason, 'suspended');

/** Restores exactly the team's credentials that are live on their own (not revoked, not expired). */
export const unsuspendTeam = (deps: Deps, actor: Actor, teamId: string, reason: string) => setTeamStatus(deps, actor, teamId, reason, 'active');

async function setAccountStatus(deps: Deps, actor: Actor, accountId: string, reason: unknown, status: 'active' | 'suspended'): Promise<AccountSuspension> {
  const why = parseReason(reason);
  if (status === 'suspended' && actor.type === 'account' && actor.id?.toLowerCase() === accountId.toLowerCase()) {
    // An admin locking themselves out mid-incident helps nobody; another admin can.
    throw new InvalidRequest('you cannot suspend your own account');
  }
  const now = deps.now();
  return changeCredentials(deps, async (tx, invalidate) => {
    const account = await lockAccount(tx, accountId);
    if (account.status === status) throw new Conflict(status === 'suspended' ? 'account is already suspended' : 'account is not suspended');
    await tx.account.update({ where: { id: account.id }, data: { status } });
    // Sessions are read from the database on every page view: ended here, they end on every node.
    const ended = status === 'suspended' ? (await tx.session.updateMany({ where: { accountId: account.id, endedAt: null }, data: { endedAt: now } })).count : 0;
    const personal = await tx.team.findUnique({ where: { personalAccountId: account.id }, select: { id: true } });
    await appendAuditEvents(
      tx,
      [actorEvent(actor, status === 'suspended' ? 'account.suspended' : 'account.unsuspended', 'account', account.id, { reason: why, teamId: personal?.id ?? null, sessionsEnded: ended })],
      now,
    );
    if (personal) await invalidate(teamGroup(personal.id));
    return { account_id: account.id, email: account.email, status, sessions_ended: ended };
  });
}

/**
 * The person can no longer sign in (accounts/sign-in.ts answers as for a wrong password), their
 * sessions end, and their personal team's credentials become inactive as under suspendTeam.
 * Their account's own state is kept apart from the team's, so that a team suspended on its own
 * stays suspended when the person is unsuspended.
 */
export const suspendAccount = (deps: Deps, actor: Actor, accountId: string, reason: string) => setAccountStatus(deps, actor, accountId, reason, 'suspended');

/** Sign-in works again and the personal team's credentials are restored; ended sessions stay ended. */
export const unsuspendAccount = (deps: Deps, actor: Actor, accountId: string, reason: string) => setAccountStatus(deps, actor, accountId, reason, 'active');
