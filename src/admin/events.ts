import type { Deps } from '../context.ts';

export interface SubjectEvent {
  seq: string;
  at: Date;
  type: string;
  actorType: string;
  actorId: string | null;
  /** The actor's email when the actor is an account (so a page can name the admin). */
  actorEmail: string | null;
  requestId: string | null;
  data: Record<string, unknown>;
}

/** The newest audit events about one object (the (subject_type, subject_id) index), with actors' emails. */
export async function recentEventsAbout(deps: Pick<Deps, 'prisma'>, subjectType: string, subjectId: string, take = 20): Promise<SubjectEvent[]> {
  const events = await deps.prisma.auditEvent.findMany({
    where: { subjectType, subjectId },
    orderBy: { seq: 'desc' },
    take,
    select: { seq: true, at: true, type: true, actorType: true, actorId: true, requestId: true, data: true },
  });
  const emails = await actorEmails(deps, events);
  return events.map((e) => ({
    seq: e.seq.toString(),
    at: e.at,
    type: e.type,
    actorType: e.actorType,
    actorId: e.actorId,
    actorEmail: e.actorId ? (emails.get(e.actorId) ?? null) : null,
    requestId: e.requestId,
    data: e.data && typeof e.data === 'object' && !Array.isArray(e.data) ? (e.data as Record<string, unknown>) : {},
  }));
}

/** The reason recorded by the newest event of one type about an object (same index), or null. */
export async function lastReasonAbout(deps: Pick<Deps, 'prisma'>, subjectType: string, subjectId: string, type: string): Promise<string | null> {
  const event = await deps.prisma.auditEvent.findFirst({ where: { subjectType, subjectId, type }, orderBy: { seq: 'desc' }, select: { data: true } });
  const reason = (event?.data as { reason?: unknown } | null | undefined)?.reason;
  return typeof reason === 'string' ? reason : null;
}

/** The emails of the accounts that acted in these events (one query), so that a page names the people. */
export async function actorEmails(deps: Pick<Deps, 'prisma'>, events: { actorType: string; actorId: string | null }[]): Promise<Map<string, string>> {
  const accountIds = [...new Set(events.filter((e) => e.actorType === 'account' && e.actorId).map((e) => e.actorId!))].filter((id) => /^[0-9a-f-]{36}$/i.test(id));
  const accounts = accountIds.length ? await deps.prisma.account.findMany({ where: { id: { in: accountIds } }, select: { id: true, email: true } }) : [];
  return new Map(accounts.map((a) => [a.id, a.email]));
}
