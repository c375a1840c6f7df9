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

/** A (seq, hash) pair vouched for from outside the chain: a signed checkpoint. */
export interface AuditAnchor {
  seq: bigint;
  hash: string;
  /** How a message names it: "checkpoint 1200 (signed 2026-12-01T10:00:00.000Z)". */
  source: string;
}

export type AuditProblem = 'altered' | 'missing' | 'reordered' | 'rewritten' | 'truncated';

export interface AuditVerification {
  ok: boolean;
  events: number;
  /** The newest event's seq and hash (what a new checkpoint would sign). */
  head?: { seq: string; hash: string };
  /** Anchors (checkpoints) the chain was checked against. */
  anchors: number;
  /** The first event that does not check out: altered, first missing, out of order, or (truncated) the first one gone. */
  brokenAt?: string;
  problem?: AuditProblem;
  /** One line for people. */
  message?: string;
}

interface ChainRow extends ChainFields {
  seq: bigint;
  prevHash: string;
  hash: string;
}

/**
 * Walks the chain in order and names the first event that does not check out. Every row
 * carries its predecessor's hash, so a row whose own hash is right but whose link is wrong
 * tells what happened before it: the predecessor it names is elsewhere (reordered), gone
 * (missing, with a gap in seq), or was rewritten in place (altered). A gap in seq with an
 * intact link is no loss: a rolled-back transaction consumed the number.
 *
 * The chain alone cannot see its newest events deleted, nor a full recompute by someone who
 * can write the table: `anchors` (signed checkpoints) can.
 */
export async function verifyAuditChain(prisma: Prisma, options: { anchors?: AuditAnchor[]; pageSize?: number } = {}): Promise<AuditVerification> {
  const pageSize = options.pageSize ?? 5_000;
  const anchors = [...(options.anchors ?? [])].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  let nextAnchor = 0;
  let lastGoodAnchor: bigint | undefined;
  let prevHash = GENESIS_HASH;
  let prevSeq: bigint | undefined;
  let count = 0;
  const broken = (problem: AuditProblem, brokenAt: bigint, message: string): AuditVerification => ({
    ok: false,
    events: count,
    anchors: nextAnchor,
    brokenAt: brokenAt.toString(),
    problem,
    message,
  });
  for (;;) {
    const page: ChainRow[] = await prisma.auditEvent.findMany({
      orderBy: { seq: 'asc' },
      take: pageSize,
      ...(prevSeq !== undefined ? { where: { seq: { gt: prevSeq } } } : {}),
    });
    for (const event of page) {
      const anchor = anchors[nextAnchor];
      if (anchor && anchor.seq < event.seq) {
        return broken('missing', anchor.seq, `event ${anchor.seq} is missing: ${anchor.source} vouches for it`);
      }
      if (event.hash !== chainHash(event.prevHash, event)) {
        return broken('altered', event.seq, `event ${event.seq} was altered: its hash does not match its content`);
      }
      if (event.prevHash !== prevHash) {
        const found = await prisma.auditEvent.findUnique({ where: { hash: event.prevHash }, select: { seq: true } });
        const gap = prevSeq === undefined ? event.seq > 1n : event.seq > prevSeq + 1n;
        const firstGone = prevSeq === undefined ? 1n : prevSeq + 1n;
        if (found) {
          return broken('reordered', event.seq, `event ${event.seq} is out of order: it was written right after event ${found.seq}, not after ${prevSeq ?? 'the start'}`);
        }
        if (gap) {
          const range = firstGone === event.seq - 1n ? `event ${firstGone} is` : `events ${firstGone} to ${event.seq - 1n} are`;
          return broken('missing', firstGone, `${range} missing: event ${event.seq} follows an event that is gone`);
        }
        if (prevSeq === undefined) return broken('altered', event.seq, `event ${event.seq} was altered: it no longer starts the chain`);
        return broken('altered', prevSeq, `event ${prevSeq} was altered and its hash recomputed: event ${event.seq} still links to the original`);
      }
      if (anchor && anchor.seq === event.seq) {
        if (anchor.hash !== event.hash) {
          const from = lastGoodAnchor === undefined ? 'the start' : `event ${lastGoodAnchor + 1n}`;
          return broken('rewritten', event.seq, `the chain was rewritten between ${from} and event ${event.seq}: ${anchor.source} vouches for a different hash`);
        }
        lastGoodAnchor = anchor.seq;
        nextAnchor++;
        // Several checkpoints may name one seq (a stored one and a kept file).
        while (anchors[nextAnchor]?.seq === event.seq) {
          if (anchors[nextAnchor]!.hash !== event.hash) {
            return broken('rewritten', event.seq, `the chain was rewritten at or before event ${event.seq}: ${anchors[nextAnchor]!.source} vouches for a different hash`);
          }
          nextAnchor++;
        }
      }
      prevHash = event.hash;
      prevSeq = event.seq;
      count++;
    }
    if (page.length < pageSize) break;
  }
  const head = prevSeq === undefined ? undefined : { seq: prevSeq.toString(), hash: prevHash };
  const beyond = anchors[nextAnchor];
  if (beyond) {
    const firstGone = (prevSeq ?? 0n) + 1n;
    return {
      ...broken('truncated', firstGone, `the log ends at event ${prevSeq ?? 0} but ${beyond.source} vouches for event ${beyond.seq}: the newest events were deleted`),
      head,
    };
  }
  return { ok: true, events: count, head, anchors: nextAnchor };
}
