import { createHash } from 'node:crypto';
import type { Actor } from '../actor.ts';
import type { Database, Prisma, Tx } from '../db/database.ts';
import { canonicalJson } from './canonical-json.ts';

export interface AuditEventInput {
  type: string;
  actorType: Actor['type'] | 'anonymous';
  actorId?: string | null;
  subjectType?: string | null;
  subjectId?: string | null;
  requestId?: string | null;
  ip?: string | null;
  /** Never a secret: ids, scopes, reasons, error codes. */
  data?: Record<string, unknown>;
}

/** The event for a change someone made: who (with request id and address), to what. */
export function actorEvent(actor: Actor, type: string, subjectType: string, subjectId: string | null, data?: Record<string, unknown>): AuditEventInput {
  return { type, actorType: actor.type, actorId: actor.id, subjectType, subjectId, requestId: actor.requestId, ip: actor.ip, data };
}

export const GENESIS_HASH = '0'.repeat(64);

interface ChainFields {
  at: Date;
  type: string;
  actorType: string;
  actorId: string | null;
  subjectType: string | null;
  subjectId: string | null;
  requestId: string | null;
  ip: string | null;
  data: unknown;
}

/** The canonical text an event is chained by (only the chained fields: a row also has seq, hashes). */
function chainBody(event: ChainFields): string {
  const { at, type, actorType, actorId, subjectType, subjectId, requestId, ip, data } = event;
  return canonicalJson({ at: at.toISOString(), type, actorType, actorId, subjectType, subjectId, requestId, ip, data });
}

export function chainHash(prevHash: string, event: ChainFields): string {
  return createHash('sha256').update(prevHash).update('\n').update(chainBody(event)).digest('hex');
}

// jsonb refuses NUL and lone surrogates; one such character must not sink a whole batch.
const storable = (text: string) => text.replace(/\u0000/g, '').toWellFormed();
const nullableStorable = (text: string | null | undefined) => (text == null ? null : storable(text));

/**
 * The argument of the database's audit_append(): the events' canonical bodies, which it
 * links into the chain under the chain lock in one statement (one round trip, which is what
 * keeps token issuance fast with its audit committed).
 */
function appendPayload(events: AuditEventInput[], now: Date): string {
  return JSON.stringify(
    events.map((event) => {
      const fields: ChainFields = {
        at: now,
        type: storable(event.type),
        actorType: event.actorType,
        actorId: nullableStorable(event.actorId),
        subjectType: nullableStorable(event.subjectType),
        subjectId: nullableStorable(event.subjectId),
        requestId: nullableStorable(event.requestId),
        ip: nullableStorable(event.ip),
        // Through JSON once, so the body hashes exactly what jsonb will store.
        data: JSON.parse(JSON.stringify(event.data ?? {}, (_key, value) => (typeof value === 'string' ? storable(value) : value))),
      };
      return chainBody(fields);
    }),
  );
}

/**
 * Appends events inside the caller's transaction, so that they commit or roll back with the
 * change they describe. `now` is the caller's clock (deps.now()), the same instant the change
 * itself records.
 */
export async function appendAuditEvents(tx: Tx, events: AuditEventInput[], now: Date): Promise<void> {
  if (events.length === 0) return;
  await tx.$executeRaw`SELECT audit_append(${appendPayload(events, now)}::jsonb)`;
}

/** Appends events in a transaction of their own (the batched writer's path). */
export async function appendAuditEventsNow(db: Pick<Database, 'query'>, events: AuditEventInput[], now: Date): Promise<void> {
  if (events.length === 0) return;
  await db.query({ name: 'audit_append', text: 'SELECT audit_append($1::jsonb)', values: [appendPayload(events, now)] });
}

export interface AuditVerification {
  ok: boolean;
  events: number;
  /** First sequence number whose hash or link does not check out. */
  brokenAt?: string;
}

/** Walks the chain in order; any edit, deletion or reordering shows as a broken link. */
export async function verifyAuditChain(prisma: Prisma, pageSize = 5_000): Promise<AuditVerification> {
  let prevHash = GENESIS_HASH;
  let cursor: bigint | undefined;
  let count = 0;
  for (;;) {
    const page = await prisma.auditEvent.findMany({
      orderBy: { seq: 'asc' },
      take: pageSize,
      ...(cursor !== undefined ? { where: { seq: { gt: cursor } } } : {}),
    });
    for (const event of page) {
      const expected = chainHash(prevHash, event);
      if (event.prevHash !== prevHash || event.hash !== expected) {
        return { ok: false, events: count, brokenAt: event.seq.toString() };
      }
      prevHash = event.hash;
      count++;
      cursor = event.seq;
    }
    if (page.length < pageSize) return { ok: true, events: count };
  }
}
