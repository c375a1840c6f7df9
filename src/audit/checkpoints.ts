import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import type { Deps } from '../context.ts';
import { InvalidRequest } from '../lib/errors.ts';
import { auditCheckpointMessage } from '../mail/messages.ts';
import { signWithCurrentKey } from '../signing/signing-keys.ts';
import { verifyAuditChain, type AuditAnchor, type AuditVerification } from './audit-log.ts';
import { warnUnlessOutage } from '../lib/failure-log.ts';

/**
 * Signed checkpoints of the audit chain (issue 8 §1.3). The chain alone cannot show its newest
 * events deleted, nor a rewrite by someone who can recompute every hash; a checkpoint, signed
 * with the server's signing key and kept outside the database (mailed to admins daily,
 * downloadable), can: `latchkey audit verify --checkpoint FILE`.
 */

/** The JWS `typ`: a checkpoint is no access token (no aud, no exp) and says so. */
export const CHECKPOINT_TYP = 'latchkey-audit-checkpoint';

export interface Checkpoint {
  seq: string;
  hash: string;
  /** When it was signed (deps.now()). */
  at: string;
  iss: string;
  kid: string;
  jws: string;
}

type CheckpointDeps = Pick<Deps, 'prisma' | 'keyring' | 'config' | 'now'>;

/** Signed with the current signing key; the kid in the header says which, for verification. */
async function signCheckpoint(deps: Pick<Deps, 'prisma' | 'keyring'>, payload: object): Promise<{ jws: string; kid: string }> {
  const jws = await signWithCurrentKey(deps, payload, { typ: CHECKPOINT_TYP });
  return { jws, kid: decodeProtectedHeader(jws).kid! };
}

/**
 * The one place a checkpoint's key is found: any key this server ever signed with (a retired
 * key, even a removed one, still vouches for what it signed: its public part is kept).
 */
async function checkpointKey(deps: Pick<Deps, 'prisma'>, kid: string): Promise<{ jwk: JWK; alg: string } | null> {
  const row = await deps.prisma.signingKey.findUnique({ where: { kid }, select: { publicJwk: true, alg: true } });
  return row ? { jwk: row.publicJwk as JWK, alg: row.alg } : null;
}

const present = (row: { seq: bigint; hash: string; at: Date; kid: string; jws: string }, iss: string): Checkpoint => ({
  seq: row.seq.toString(),
  hash: row.hash,
  at: row.at.toISOString(),
  iss,
  kid: row.kid,
  jws: row.jws,
});

/**
 * Signs and stores a checkpoint of the chain's head when one is due: `force`, or no
 * checkpoint yet, or LATCHKEY_AUDIT_CHECKPOINT_EVENTS sequence numbers since the last one
 * (seq may skip a number a rolled-back transaction took, so "about" that many events), or
 * LATCHKEY_AUDIT_CHECKPOINT_INTERVAL since it. Nothing new since the last checkpoint: none.
 * Several nodes may try at once; the seq is the primary key, so one row is written.
 */
export async function writeCheckpoint(deps: CheckpointDeps, options: { force?: boolean } = {}): Promise<Checkpoint | null> {
  const [head, last] = await Promise.all([
    deps.prisma.auditEvent.findFirst({ orderBy: { seq: 'desc' }, select: { seq: true, hash: true } }),
    deps.prisma.auditCheckpoint.findFirst({ orderBy: { seq: 'desc' }, select: { seq: true, at: true } }),
  ]);
  if (!head) return null;
  const iss = deps.config.LATCHKEY_ISSUER;
  // The head is signed already (by this node's timer or another node, maybe a moment ago):
  // nothing to write, and a forced call gets the checkpoint on record.
  if (last && last.seq >= head.seq) return options.force ? present(await deps.prisma.auditCheckpoint.findUniqueOrThrow({ where: { seq: last.seq } }), iss) : null;
  const now = deps.now();
  const due =
    options.force ||
    !last ||
    head.seq - last.seq >= BigInt(deps.config.LATCHKEY_AUDIT_CHECKPOINT_EVENTS) ||
    now.getTime() - last.at.getTime() >= deps.config.LATCHKEY_AUDIT_CHECKPOINT_INTERVAL;
  if (!due) return null;
  const claims = { iss, seq: head.seq.toString(), hash: head.hash, at: now.toISOString() };
  const { jws, kid } = await signCheckpoint(deps, { ...claims, mac: checkpointMac(deps, claims) });
  const row = { seq: head.seq, hash: head.hash, at: now, kid, jws };
  const { count } = await deps.prisma.auditCheckpoint.createMany({ data: [row], skipDuplicates: true });
  if (count === 0) {
    // Another node signed this head first: its checkpoint is the one on record.
    const theirs = await deps.prisma.auditCheckpoint.findUniqueOrThrow({ where: { seq: head.seq } });
    return present(theirs, iss);
  }
  return present(row, iss);
}

/** The newest stored checkpoint, or null before the first. */
export async function latestCheckpoint(deps: Pick<Deps, 'prisma' | 'config'>): Promise<Checkpoint | null> {
  const row = await deps.prisma.auditCheckpoint.findFirst({ orderBy: { seq: 'desc' } });
  return row ? present(row, deps.config.LATCHKEY_ISSUER) : null;
}

/**
 * A key under LATCHKEY_SECRET over what a checkpoint vouches for. The signing key's public part
 * lives in the database the checkpoint protects, so someone who owns that database could add a
 * key of their own and sign a checkpoint for a rewritten chain; without the master secret they
 * cannot make this MAC, which verification demands.
 */
function checkpointMac(deps: Pick<Deps, 'keyring'>, claims: { iss: string; seq: string; hash: string; at: string }): string {
  return Buffer.from(deps.keyring.digest(macInput(claims))).toString('base64url');
}
const macInput = ({ iss, seq, hash, at }: { iss: string; seq: string; hash: string; at: string }) => `latchkey-audit-checkpoint\n${iss}\n${seq}\n${hash}\n${at}`;

/**
 * Checks a checkpoint's signature against this server's keys, and its MAC against the master
 * secret, and returns what it vouches for. Anything else — not a JWS, another typ, an unknown kid, a bad signature, a payload
 * that is not a checkpoint — is refused with one line.
 */
export async function verifyCheckpointJws(deps: Pick<Deps, 'prisma' | 'keyring'>, jws: string): Promise<Checkpoint> {
  const refuse = (why: string) => new InvalidRequest(`checkpoint refused: ${why}`);
  const text = jws.trim();
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    if (text.split('.').length !== 3) throw new Error('not compact');
    header = decodeProtectedHeader(text);
  } catch {
    throw refuse('not a compact JWS');
  }
  if (header.typ !== CHECKPOINT_TYP) throw refuse(`not an audit checkpoint (typ ${JSON.stringify(header.typ ?? null)})`);
  if (typeof header.kid !== 'string') throw refuse('no key id');
  const key = await checkpointKey(deps, header.kid);
  if (!key) throw refuse(`signed with a key this server does not have (kid ${header.kid})`);
  let payload: Uint8Array;
  try {
    // The algorithm is the key's own, never the header's choice.
    ({ payload } = await compactVerify(text, await importJWK(key.jwk, key.alg), { algorithms: [key.alg] }));
  } catch {
    throw refuse('the signature does not verify');
  }
  const claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
  if (typeof claims.seq !== 'string' || !/^\d{1,19}$/.test(claims.seq) || typeof claims.hash !== 'string' || !/^[0-9a-f]{64}$/.test(claims.hash) || typeof claims.at !== 'string') {
    throw refuse('the payload is not a checkpoint');
  }
  const vouched = { iss: String(claims.iss ?? ''), seq: claims.seq, hash: claims.hash, at: claims.at };
  if (typeof claims.mac !== 'string' || !deps.keyring.matches(macInput(vouched), Buffer.from(claims.mac, 'base64url'))) {
    throw refuse('it was not made with this server\'s LATCHKEY_SECRET');
  }
  return { ...vouched, kid: header.kid, jws: text };
}

/**
 * `latchkey audit verify`: the chain, checked against every stored checkpoint (each one's
 * signature first) and against `checkpointJws`, one an admin kept outside the database.
 */
export async function verifyAuditLog(deps: Pick<Deps, 'prisma' | 'keyring'>, options: { checkpointJws?: string } = {}): Promise<AuditVerification> {
  const anchors: AuditAnchor[] = [];
  if (options.checkpointJws !== undefined) {
    const kept = await verifyCheckpointJws(deps, options.checkpointJws);
    anchors.push({ seq: BigInt(kept.seq), hash: kept.hash, source: `the checkpoint file (event ${kept.seq}, signed ${kept.at})` });
  }
  // A few thousand rows at most (one per 1000 events by default): read at once.
  for (const row of await deps.prisma.auditCheckpoint.findMany({ orderBy: { seq: 'asc' } })) {
    const source = `checkpoint ${row.seq} (signed ${row.at.toISOString()})`;
    let signed: Checkpoint;
    try {
      signed = await verifyCheckpointJws(deps, row.jws);
    } catch (error) {
      return { ok: false, events: 0, anchors: 0, brokenAt: row.seq.toString(), problem: 'rewritten', message: `stored ${source}: ${(error as Error).message}` };
    }
    if (signed.seq !== row.seq.toString() || signed.hash !== row.hash) {
      return { ok: false, events: 0, anchors: 0, brokenAt: row.seq.toString(), problem: 'rewritten', message: `stored ${source} was altered: its row differs from what its signature covers` };
    }
    anchors.push({ seq: row.seq, hash: row.hash, source });
  }
  return verifyAuditChain(deps.prisma, { anchors });
}

const utcDay = (date: Date) => new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));

/**
 * Mails every active admin the checkpoint that closed the previous UTC day (the newest signed
 * before today's midnight), once per day across all nodes: the node that inserts the day's
 * row sends. A fresh installation mails from its second day on. Returns how many admins it
 * was sent to.
 */
export async function mailDailyCheckpoint(deps: Pick<Deps, 'prisma' | 'config' | 'mailer' | 'now'>): Promise<number> {
  const now = deps.now();
  const day = utcDay(now);
  if (await deps.prisma.auditCheckpointMailing.findUnique({ where: { day }, select: { day: true } })) return 0;
  const row = await deps.prisma.auditCheckpoint.findFirst({ where: { at: { lt: day } }, orderBy: { seq: 'desc' } });
  if (!row) return 0;
  const checkpoint = present(row, deps.config.LATCHKEY_ISSUER);
  const { count } = await deps.prisma.auditCheckpointMailing.createMany({ data: [{ day, seq: row.seq, sentAt: now }], skipDuplicates: true });
  if (count === 0) return 0;
  const admins = await deps.prisma.account.findMany({ where: { role: 'admin', status: 'active' }, select: { email: true } });
  const closedDay = new Date(day.getTime() - 86_400_000).toISOString().slice(0, 10);
  for (const admin of admins) deps.mailer.send(auditCheckpointMessage({ to: admin.email, day: closedDay, checkpoint }));
  return admins.length;
}

/** How often a node looks whether a checkpoint or the day's mail is due (cheap: two primary-key reads). */
export const CHECKPOINT_TICK_MS = 15_000;

/** One look: a checkpoint if due, then the day's mail if not sent yet. */
export async function checkpointTick(deps: Pick<Deps, 'prisma' | 'keyring' | 'config' | 'mailer' | 'now'>): Promise<void> {
  await writeCheckpoint(deps);
  await mailDailyCheckpoint(deps);
}

/** The server's timer; returns its stop. Times come from deps.now(), so tests drive checkpointTick directly. */
export function startAuditCheckpoints(deps: Pick<Deps, 'prisma' | 'keyring' | 'config' | 'mailer' | 'now' | 'log'>): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    checkpointTick(deps)
      .catch((err) => warnUnlessOutage(deps.log, err, 'audit checkpoint failed'))
      .finally(() => (running = false));
  }, CHECKPOINT_TICK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
