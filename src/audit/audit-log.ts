import { createHash } from 'node:crypto';
import type { Prisma, Tx } from '../db/database.ts';
import { canonicalJson } from './canonical-json.ts';

export interface AuditEventInput {
  type: string;
  actorType: 'system' | 'cli' | 'client' | 'account' | 'anonymous';
  actorId?: string | null;
  subjectType?: string | null;
  subjectId?: string | null;
  requestId?: string | null;
  ip?: string | null;
  /** Never a secret: ids, scopes, reasons, error codes. */
  data?: Record<string, unknown>;
}

export const GENESIS_HASH = '0'.repeat(64);
// Serialises writers of the hash chain across every node sharing the database.
const CHAIN_LOCK = 72_707_370;

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

export function chainHash(prevHash: string, event: ChainFields): string {
  // Only the chained fields: a stored row also carries seq (a BigInt), prevHash and hash.
  const { at, type, actorType, actorId, subjectType, subjectId, requestId, ip, data } = event;
  const body = canonicalJson({ at: at.toISOString(), type, actorType, actorId, subjectType, subjectId, requestId, ip, data });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/**
 * Appends events inside the caller's transaction, so that they commit or roll back with the
 * change they describe.
 */
export async function appendAuditEvents(tx: Tx, events: AuditEventInput[], now = new Date()): Promise<void> {
  if (events.length === 0) return;
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${CHAIN_LOCK})`;
  const last = await tx.auditEvent.findFirst({ orderBy: { seq: 'desc' }, select: { hash: true } });
  let prevHash = last?.hash ?? GENESIS_HASH;
  const rows = events.map((event) => {
    const fields: ChainFields = {
      at: now,
      type: event.type,
      actorType: event.actorType,
      actorId: event.actorId ?? null,
      subjectType: event.subjectType ?? null,
      subjectId: event.subjectId ?? null,
      requestId: event.requestId ?? null,
      ip: event.ip ?? null,
      data: event.data ?? {},
    };
    const hash = chainHash(prevHash, fields);
    const row = { ...fields, data: fields.data as object, prevHash, hash };
    prevHash = hash;
    return row;
  });
  await tx.auditEvent.createMany({ data: rows });
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
