import type { Prisma } from '../db/database.ts';

/** Events in chain order, as plain JSON (seq as a string: it is a bigint). */
export async function exportAuditEvents(prisma: Prisma, since?: Date, limit = 10_000) {
  const events = await prisma.auditEvent.findMany({
    where: since ? { at: { gte: since } } : {},
    orderBy: { seq: 'asc' },
    take: limit,
  });
  return events.map((event) => ({ ...event, seq: event.seq.toString(), at: event.at.toISOString() }));
}
