import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { Tx } from '../db/database.ts';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import { teamInviteMessage } from '../mail/messages.ts';
import { consumeLinkToken, issueLinkToken, LINK_LIFETIME_TEXT, peekLinkToken } from './links.ts';
import { normaliseEmail } from './accounts.ts';
import type { TeamRole } from '../policies/principal.ts';

/**
 * Teams own credentials; owners manage their people. Services answer expected refusals as
 * values ({ ok: false, error }) for the pages to show; they never check who may ask (that is
 * the policies' job, in the routes).
 */

export type TeamResult<T = void> = { ok: true; value: T } | { ok: false; field?: string; error: string };

const ok = <T>(value: T): TeamResult<T> => ({ ok: true, value });
const refuse = (error: string, field?: string): TeamResult<never> => ({ ok: false, error, field });

type TeamDeps = Pick<Deps, 'prisma' | 'keyring' | 'config' | 'now' | 'mailer' | 'throttle'>;

/** Serialises changes to one team's people, so that two owners cannot demote each other to none. */
async function lockTeam(tx: Tx, teamId: string): Promise<{ id: string; name: string; personal_account_id: string | null; status: string } | undefined> {
  const rows = await tx.$queryRaw<{ id: string; name: string; personal_account_id: string | null; status: string }[]>`
    SELECT id::text, name, personal_account_id::text, status FROM team WHERE id = ${teamId}::uuid FOR UPDATE`;
  return rows[0];
}

/** The team page's data: members with their addresses, live invitations. */
export async function teamOverview(deps: Pick<Deps, 'prisma' | 'now'>, teamId: string) {
  const [team, members, invitations] = await Promise.all([
    deps.prisma.team.findUnique({ where: { id: teamId } }),
    deps.prisma.membership.findMany({ where: { teamId }, include: { account: { select: { email: true } } }, orderBy: { createdAt: 'asc' } }),
    deps.prisma.linkToken.findMany({
      where: { teamId, purpose: 'team_invite', usedAt: null, expiresAt: { gt: deps.now() } },
      select: { id: true, email: true, role: true, expiresAt: true, createdAt: true },
      orderBy: { createdAt: 'desc' },
      take: 100,
    }),
  ]);
  return { team, members, invitations };
}

export async function createTeam(deps: Pick<Deps, 'prisma' | 'now'>, input: { name: string; ownerId: string }, actor: Actor) {
  const now = deps.now();
  return deps.prisma.$transaction(async (tx) => {
    const team = await tx.team.create({ data: { name: input.name, createdAt: now } });
    await tx.membership.create({ data: { teamId: team.id, accountId: input.ownerId, role: 'owner', createdAt: now } });
    await appendAuditEvents(tx, [actorEvent(actor, 'team.created', 'team', team.id, { teamId: team.id, name: input.name })], now);
    return team;
  });
}

export async function renameTeam(deps: Pick<Deps, 'prisma' | 'now'>, teamId: string, name: string, actor: Actor): Promise<void> {
  const now = deps.now();
  await deps.prisma.$transaction(async (tx) => {
    const before = await lockTeam(tx, teamId);
    await tx.team.update({ where: { id: teamId }, data: { name } });
    await appendAuditEvents(tx, [actorEvent(actor, 'team.renamed', 'team', teamId, { teamId, from: before?.name ?? null, to: name })], now);
  });
}

/**
 * Invites an address; the link goes by mail after the commit, and only its digest is stored.
 * Throttled per inviting account ('invite'), so the server is no mail relay.
 */
export async function inviteMember(
  deps: TeamDeps,
  input: { teamId: string; email: string; role: TeamRole; invitedBy: { id: string; email: string } },
  actor: Actor,
): Promise<TeamResult<{ expiresAt: Date }> | { ok: false; reason: 'throttled'; retryAfterSeconds: number }> {
  const verdict = await deps.throttle.attempt('invite', input.invitedBy.id, actor.ip ?? 'unknown');
  if (!verdict.allowed) return { ok: false, reason: 'throttled', retryAfterSeconds: verdict.retryAfterSeconds };
  const email = normaliseEmail(input.email);
  const now = deps.now();
  const outcome = await deps.prisma.$transaction(async (tx) => {
    const team = await lockTeam(tx, input.teamId);
    if (!team) return refuse('This team no longer exists.');
    const existing = await tx.membership.findFirst({ where: { teamId: input.teamId, account: { email } }, select: { accountId: true } });
    if (existing) return refuse(`${email} is already a member of this team.`, 'email');
    // A new invitation replaces an older one to the same address: one live link per person.
    await tx.linkToken.updateMany({ where: { teamId: input.teamId, purpose: 'team_invite', email, usedAt: null }, data: { usedAt: now } });
    const issued = await issueLinkToken(tx, deps, { purpose: 'team_invite', email, teamId: input.teamId, role: input.role, createdById: input.invitedBy.id });
    await appendAuditEvents(
      tx,
      [actorEvent(actor, 'team.member_invited', 'team', input.teamId, { teamId: input.teamId, invitationId: issued.id, email, role: input.role })],
      now,
    );
    return ok({ link: issued.link, expiresAt: issued.expiresAt, teamName: team.name });
  });
  if (!outcome.ok) return outcome;
  deps.mailer.send(
    teamInviteMessage({ to: email, teamName: outcome.value.teamName, invitedBy: input.invitedBy.email, link: outcome.value.link, expiresInText: LINK_LIFETIME_TEXT.team_invite }),
  );
  return ok({ expiresAt: outcome.value.expiresAt });
}

/** Withdraws a pending invitation (its link stops working). */
export async function cancelInvitation(deps: Pick<Deps, 'prisma' | 'now'>, invitation: { id: string; teamId: string | null; email: string }, actor: Actor): Promise<void> {
  const now = deps.now();
  await deps.prisma.$transaction(async (tx) => {
    const { count } = await tx.linkToken.updateMany({ where: { id: invitation.id, usedAt: null }, data: { usedAt: now } });
    if (count === 0) return;
    await appendAuditEvents(
      tx,
      [actorEvent(actor, 'team.invitation_cancelled', 'team', invitation.teamId, { teamId: invitation.teamId, invitationId: invitation.id, email: invitation.email })],
      now,
    );
  });
}

const LAST_OWNER = 'A team needs at least one owner: make someone else an owner first.';

export async function changeMemberRole(deps: Pick<Deps, 'prisma' | 'now'>, teamId: string, accountId: string, role: TeamRole, actor: Actor): Promise<TeamResult> {
  const now = deps.now();
  return deps.prisma.$transaction(async (tx) => {
    const team = await lockTeam(tx, teamId);
    if (!team) return refuse('This team no longer exists.');
    const member = await tx.membership.findUnique({ where: { teamId_accountId: { teamId, accountId } } });
    if (!member) return refuse('This person is no longer a member of the team.');
    if (member.role === role) return ok(undefined);
    // As removeMember: a personal team's person stays its owner.
    if (team.personal_account_id === accountId) return refuse('A personal team keeps its owner.');
    if (member.role === 'owner' && (await tx.membership.count({ where: { teamId, role: 'owner' } })) <= 1) return refuse(LAST_OWNER);
    await tx.membership.update({ where: { teamId_accountId: { teamId, accountId } }, data: { role } });
    await appendAuditEvents(tx, [actorEvent(actor, 'team.member_role_changed', 'team', teamId, { teamId, accountId, from: member.role, to: role })], now);
    return ok(undefined);
  });
}

/** Removes a member (or, when the actor is that member, leaves). A personal team keeps its person. */
export async function removeMember(deps: Pick<Deps, 'prisma' | 'now'>, teamId: string, accountId: string, actor: Actor): Promise<TeamResult> {
  const now = deps.now();
  const leaving = actor.id === accountId;
  return deps.prisma.$transaction(async (tx) => {
    const team = await lockTeam(tx, teamId);
    if (!team) return refuse('This team no longer exists.');
    if (team.personal_account_id === accountId) return refuse(leaving ? 'You cannot leave your personal team.' : 'A personal team keeps its owner.');
    const member = await tx.membership.findUnique({ where: { teamId_accountId: { teamId, accountId } } });
    if (!member) return refuse('This person is no longer a member of the team.');
    if (member.role === 'owner' && (await tx.membership.count({ where: { teamId, role: 'owner' } })) <= 1) return refuse(LAST_OWNER);
    await tx.membership.delete({ where: { teamId_accountId: { teamId, accountId } } });
    // Sessions working in this team fall back to the person's personal team (signed-in.ts).
    await tx.session.updateMany({ where: { accountId, teamId }, data: { teamId: null } });
    await appendAuditEvents(tx, [actorEvent(actor, leaving ? 'team.member_left' : 'team.member_removed', 'team', teamId, { teamId, accountId, role: member.role })], now);
    return ok(undefined);
  });
}

export type InvitationView = { ok: true; invitation: { id: string; email: string; role: TeamRole; expiresAt: Date }; team: { id: string; name: string } } | { ok: false };

/** What an invitation link offers, without using it (a GET, which mail scanners may prefetch). */
export async function peekInvitation(deps: Pick<Deps, 'prisma' | 'keyring' | 'now'>, token: unknown): Promise<InvitationView> {
  const row = await peekLinkToken(deps.prisma, deps, 'team_invite', token);
  if (!row?.teamId) return { ok: false };
  const team = await deps.prisma.team.findUnique({ where: { id: row.teamId }, select: { id: true, name: true, status: true } });
  if (!team || team.status !== 'active') return { ok: false };
  return { ok: true, invitation: { id: row.id, email: row.email, role: row.role === 'owner' ? 'owner' : 'member', expiresAt: row.expiresAt }, team: { id: team.id, name: team.name } };
}

/**
 * Joins a team by its invitation: the link is used in the same transaction as the membership
 * it grants, and only by the invited address (another person's link is refused, unspent).
 */
export async function acceptInvitation(
  deps: Pick<Deps, 'prisma' | 'keyring' | 'now'>,
  token: unknown,
  account: { id: string; email: string },
  actor: Actor,
): Promise<TeamResult<{ teamId: string; teamName: string; role: TeamRole }> & { reason?: 'invalid' | 'wrong_person' }> {
  const now = deps.now();
  return deps.prisma.$transaction(async (tx) => {
    const peeked = await peekLinkToken(tx, deps, 'team_invite', token);
    if (!peeked?.teamId) return { ...refuse('This invitation link is no longer valid.'), reason: 'invalid' as const };
    if (normaliseEmail(peeked.email) !== normaliseEmail(account.email)) {
      return { ...refuse(`This invitation was sent to another address. Sign in as the invited person, or ask the team's owner to invite ${account.email}.`), reason: 'wrong_person' as const };
    }
    // A team that is not active (suspended) takes nobody in; the link stays unspent.
    const team = await lockTeam(tx, peeked.teamId);
    if (!team || team.status !== 'active') return { ...refuse('This invitation link is no longer valid.'), reason: 'invalid' as const };
    const row = await consumeLinkToken(tx, deps, 'team_invite', token);
    if (!row?.teamId) return { ...refuse('This invitation link is no longer valid.'), reason: 'invalid' as const };
    const role: TeamRole = row.role === 'owner' ? 'owner' : 'member';
    const existing = await tx.membership.findUnique({ where: { teamId_accountId: { teamId: row.teamId, accountId: account.id } } });
    if (!existing) await tx.membership.create({ data: { teamId: row.teamId, accountId: account.id, role, createdAt: now } });
    await appendAuditEvents(
      tx,
      [actorEvent(actor, 'team.member_joined', 'team', row.teamId, { teamId: row.teamId, accountId: account.id, invitationId: row.id, role: existing?.role ?? role })],
      now,
    );
    return ok({ teamId: row.teamId, teamName: team.name, role: (existing?.role as TeamRole | undefined) ?? role });
  });
}
