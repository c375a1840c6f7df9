import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { Prisma } from '../db/database.ts';
import { actorEvent } from './audit-log.ts';
import { presentAuditEvent, type AuditEventView, type AuditExportFormat, type AuditFilter } from './audit-query.ts';

export interface AuditExportPage {
  events: AuditEventView[];
  /** Present when more events follow: pass it back as `afterSeq` for the next page. */
  next_after_seq?: string;
}

/**
 * Events in chain order, as plain JSON (seq as a string: it is a bigint), a page at a time.
 * Paging is by seq, not time: `at` is taken before the chain lock, so it is not monotonic.
 */
export async function exportAuditEvents(prisma: Prisma, options: { since?: Date; afterSeq?: bigint; limit?: number } = {}): Promise<AuditExportPage> {
  const limit = options.limit ?? 10_000;
  const rows = await prisma.auditEvent.findMany({
    where: {
      ...(options.since ? { at: { gte: options.since } } : {}),
      ...(options.afterSeq !== undefined ? { seq: { gt: options.afterSeq } } : {}),
    },
    orderBy: { seq: 'asc' },
    take: limit + 1,
  });
  const events = rows.slice(0, limit).map(presentAuditEvent);
  return rows.length > limit ? { events, next_after_seq: events.at(-1)!.seq } : { events };
}

/**
 * Who took a copy of the log, in what format, with which filters (parsed ones: ids, types,
 * dates, never a secret). Callers await it before reading the first event, so that even an
 * interrupted download is traced and an export whose event cannot be committed is refused.
 */
export function recordAuditExport(
  deps: Pick<Deps, 'audit'>,
  actor: Actor,
  format: AuditExportFormat | 'json',
  filters: AuditFilter | { since?: Date; afterSeq?: string },
): Promise<void> {
  // undefined filters drop out, and dates become ISO text, on the writer's way through JSON.
  return deps.audit.record(actorEvent(actor, 'audit.exported', 'audit_log', null, { format, filters }));
}
