import { z } from 'zod';
import type { Deps } from '../context.ts';
import type { Prisma as PrismaNamespace } from '../db/generated/client.ts';
import type { AuditEvent } from '../db/database.ts';

/**
 * The audit log as people search it (the admin screen, `latchkey audit export`): filters,
 * newest first, keyset pagination on seq. Every filter has an index ending in seq
 * (migration 20261202020000_audit_checkpoints), so a page is one index range however deep
 * it is: bench/audit.ts measures it at 10 million events.
 */

/**
 * An event's outcome, derived from its type: `failure` is an attempt that was refused
 * (`token.failed`, `client_auth.failed`, `account.sign_in_failed`, `account.mfa_failed`: the
 * type ends in "failed"); everything else is `success` — including decisions such as
 * `request.denied`, which succeeded at denying.
 */
export type AuditOutcome = 'success' | 'failure';
export const outcomeOf = (type: string): AuditOutcome => (type.endsWith('failed') ? 'failure' : 'success');

const seqText = z.string().regex(/^\d{1,19}$/, 'must be an event sequence number').refine((v) => BigInt(v) <= 2n ** 63n - 1n, 'must be an event sequence number');
const text = (max: number) => z.string().trim().min(1).max(max);
const instant = z.union([z.date(), z.string().trim().min(1)]).transform((value, ctx) => {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO date such as 2026-12-01T00:00:00Z' });
    return z.NEVER;
  }
  return date;
});

/**
 * The filters, as a page's query string or the CLI's flags give them (both parse with this
 * schema). `type` is one type or several separated by commas; `from` is inclusive, `to`
 * exclusive.
 */
export const auditFilterSchema = z
  .object({
    actor: text(200).optional(),
    actorType: z.enum(['account', 'client', 'cli', 'system', 'anonymous']).optional(),
    type: text(1000)
      .transform((v) => v.split(',').map((t) => t.trim()).filter(Boolean))
      .refine((types) => types.length > 0 && types.length <= 50, 'must name 1 to 50 event types')
      .optional(),
    subjectType: text(100).optional(),
    subjectId: text(200).optional(),
    outcome: z.enum(['success', 'failure']).optional(),
    from: instant.optional(),
    to: instant.optional(),
  })
  .refine((f) => !(f.from && f.to) || f.from < f.to, { message: '--from must be before --to', path: ['to'] });

export type AuditFilter = z.output<typeof auditFilterSchema>;

/** An event as the viewer and the exports show it: the stored row, bigint and date as text, plus its outcome. */
export interface AuditEventView {
  seq: string;
  at: string;
  type: string;
  outcome: AuditOutcome;
  actorType: string;
  actorId: string | null;
  subjectType: string | null;
  subjectId: string | null;
  requestId: string | null;
  ip: string | null;
  data: unknown;
  prevHash: string;
  hash: string;
}

export function presentAuditEvent(row: AuditEvent): AuditEventView {
  return {
    seq: row.seq.toString(),
    at: row.at.toISOString(),
    type: row.type,
    outcome: outcomeOf(row.type),
    actorType: row.actorType,
    actorId: row.actorId,
    subjectType: row.subjectType,
    subjectId: row.subjectId,
    requestId: row.requestId,
    ip: row.ip,
    data: row.data,
    prevHash: row.prevHash,
    hash: row.hash,
  };
}

function whereOf(filter: AuditFilter, seq: { lt?: bigint; gt?: bigint; gte?: bigint; lte?: bigint }): PrismaNamespace.AuditEventWhereInput {
  const and: PrismaNamespace.AuditEventWhereInput[] = [];
  if (filter.actor !== undefined) and.push({ actorId: filter.actor });
  if (filter.actorType !== undefined) and.push({ actorType: filter.actorType });
  if (filter.type !== undefined) and.push(filter.type.length === 1 ? { type: filter.type[0]! } : { type: { in: filter.type } });
  if (filter.subjectType !== undefined) and.push({ subjectType: filter.subjectType });
  if (filter.subjectId !== undefined) and.push({ subjectId: filter.subjectId });
  if (filter.outcome === 'failure') and.push({ type: { endsWith: 'failed' } });
  if (filter.outcome === 'success') and.push({ NOT: { type: { endsWith: 'failed' } } });
  if (filter.from !== undefined) and.push({ at: { gte: filter.from } });
  if (filter.to !== undefined) and.push({ at: { lt: filter.to } });
  if (Object.keys(seq).length > 0) and.push({ seq });
  return { AND: and };
}

/**
 * How far an event's `at` may be out of step with its place in the chain. `at` is the
 * writer's clock when its transaction began (deps.now()), and seq is taken under the chain
 * lock at commit, so events commit slightly out of time order: by a transaction's length, or
 * by the clock difference between nodes. A minute covers both with room to spare.
 */
export const AUDIT_CLOCK_SLACK_MS = 60_000;

/**
 * A time range as a range of seq, from two probes of the `at` index, so that a page of an old
 * time range is read by seq where the range is, not from the newest event back (which the
 * planner picks, and which reads millions of rows for a day six months ago: bench/audit.ts).
 * An event more than AUDIT_CLOCK_SLACK_MS before `from` has a smaller seq than every event in
 * the range, one more than that after `to` a larger one; the bounds only narrow the scan,
 * the exact `at` conditions still decide.
 */
async function seqBounds(deps: Pick<Deps, 'prisma'>, filter: AuditFilter): Promise<{ gte?: bigint; lte?: bigint }> {
  const [before, after] = await Promise.all([
    filter.from === undefined
      ? null
      : deps.prisma.auditEvent.findFirst({ where: { at: { lt: new Date(filter.from.getTime() - AUDIT_CLOCK_SLACK_MS) } }, orderBy: { at: 'desc' }, select: { seq: true } }),
    filter.to === undefined
      ? null
      : deps.prisma.auditEvent.findFirst({ where: { at: { gte: new Date(filter.to.getTime() + AUDIT_CLOCK_SLACK_MS) } }, orderBy: { at: 'asc' }, select: { seq: true } }),
  ]);
  return { ...(before ? { gte: before.seq } : {}), ...(after ? { lte: after.seq } : {}) };
}

export interface AuditPage {
  events: AuditEventView[];
  /** Present when older events match: pass it back as `older` for the next page. */
  older?: string;
}

export const AUDIT_PAGE_SIZE = 50;

/** One page of matching events, newest first; `older` is the cursor a previous page returned. */
export async function queryAuditEvents(
  deps: Pick<Deps, 'prisma'>,
  filter: AuditFilter,
  page: { older?: string; limit?: number } = {},
): Promise<AuditPage> {
  const limit = Math.min(Math.max(page.limit ?? AUDIT_PAGE_SIZE, 1), 500);
  const older = page.older === undefined ? undefined : BigInt(seqText.parse(page.older));
  const bounds = await seqBounds(deps, filter);
  const rows = await deps.prisma.auditEvent.findMany({
    where: whereOf(filter, { ...bounds, ...(older === undefined ? {} : { lt: older }) }),
    orderBy: { seq: 'desc' },
    take: limit + 1,
  });
  const events = rows.slice(0, limit).map(presentAuditEvent);
  return rows.length > limit ? { events, older: events.at(-1)!.seq } : { events };
}

/**
 * Every matching event in chain order (oldest first, as a log file reads), a keyset page at
 * a time: memory holds one page, whatever the size of the log.
 */
export async function* streamAuditEvents(deps: Pick<Deps, 'prisma'>, filter: AuditFilter, pageSize = 2_000): AsyncGenerator<AuditEventView> {
  const { gte, lte } = await seqBounds(deps, filter);
  let after: bigint | undefined;
  for (;;) {
    const rows = await deps.prisma.auditEvent.findMany({
      where: whereOf(filter, { ...(lte === undefined ? {} : { lte }), ...(after === undefined ? (gte === undefined ? {} : { gte }) : { gt: after }) }),
      orderBy: { seq: 'asc' },
      take: pageSize,
    });
    for (const row of rows) yield presentAuditEvent(row);
    if (rows.length < pageSize) return;
    after = rows.at(-1)!.seq;
  }
}

export type AuditExportFormat = 'jsonl' | 'csv';

export const CSV_COLUMNS = ['seq', 'at', 'type', 'outcome', 'actorType', 'actorId', 'subjectType', 'subjectId', 'requestId', 'ip', 'data', 'prevHash', 'hash'] as const;

/**
 * One CSV cell (RFC 4180). A cell a spreadsheet would run as a formula (=, +, -, @, or a tab
 * or carriage return first: OWASP "CSV injection") gets a leading apostrophe: event data
 * carries text people typed (names, reasons).
 */
export function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The export as text chunks (one line each, header first for CSV): pipe it to a file, stdout or a response. */
export async function* exportAuditLines(events: AsyncIterable<AuditEventView>, format: AuditExportFormat): AsyncGenerator<string> {
  if (format === 'csv') yield `${CSV_COLUMNS.join(',')}\r\n`;
  for await (const event of events) {
    yield format === 'jsonl' ? `${JSON.stringify(event)}\n` : `${CSV_COLUMNS.map((column) => csvCell(event[column])).join(',')}\r\n`;
  }
}
