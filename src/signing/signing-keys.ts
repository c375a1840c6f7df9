import { calculateJwkThumbprint, CompactSign, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { actorEvent, appendAuditEvents, type AuditEventInput } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { Tx } from '../db/database.ts';
import type { SigningKey } from '../db/generated/client.ts';
import { Conflict, LatchkeyError } from '../lib/errors.ts';
import { changeCredentials } from '../lib/invalidation.ts';

/**
 * Signing keys live through four states (issue 8 §1.4, DESIGN §3):
 *   next     published in JWKS, signs nothing yet: resource servers that cached the JWKS
 *            before it existed refresh within LATCHKEY_JWKS_CACHE_TTL, so it waits that long;
 *   current  the one key that signs (exactly one);
 *   retired  signs nothing, still published until every token it signed has expired
 *            (retired + access-token lifetime + leeway);
 *   removed  unpublished; its private part is wiped, the row and public JWK stay for history.
 * Every change of state is audited (`signing_key.*`) and announced on the invalidation bus
 * (SIGNING_KEYS_CHANGED), so that every node reloads its key set without a restart.
 */
export type SigningKeyState = 'next' | 'current' | 'retired' | 'removed';

export const DEFAULT_ALG = 'ES256';
/** The invalidation-bus key on which every node reloads its signing keys. */
export const SIGNING_KEYS_CHANGED = 'signing-keys';
/**
 * Kept published this long past the last exp a retired key could have signed: the clock skew
 * resource servers commonly allow, and the moment a node takes to hear a change.
 */
export const REMOVAL_LEEWAY_MS = 5 * 60_000;
/**
 * Added to the pre-publication window: a new key is in every node's JWKS only once the node has
 * heard of it (within a second, on the invalidation bus), and the window counts from there.
 */
export const PUBLICATION_MARGIN_MS = 2_000;
const KEY_LOCK = 72_707_371;

/** When a key published at `now` may start to sign. */
const activationAfter = (now: Date, config: Deps['config']) => new Date(now.getTime() + config.LATCHKEY_JWKS_CACHE_TTL + PUBLICATION_MARGIN_MS);

type KeyDeps = Pick<Deps, 'prisma' | 'keyring' | 'now'>;
type RotationDeps = Pick<Deps, 'prisma' | 'keyring' | 'now' | 'config' | 'cache'>;

export interface PrivateJwk extends JWK {
  kid: string;
  alg: string;
  use: 'sig';
}

/** The keys a node works with: the one that signs, and every one that is published. */
export interface SigningKeySet {
  current: PrivateJwk;
  /** next, current and retired keys (current first): what JWKS lists and tokens verify against. */
  published: PrivateJwk[];
  /** Changes whenever a key is added or changes state: a node rebuilds only when it differs. */
  version: string;
}

/** Creates the first signing key if there is none; safe when several nodes start at once. */
export async function ensureSigningKey(deps: KeyDeps, alg = DEFAULT_ALG): Promise<void> {
  if (await deps.prisma.signingKey.count({ where: { state: 'current' } })) return;
  const jwk = await newPrivateJwk(alg);
  await deps.prisma.$transaction(async (tx) => {
    await lock(tx);
    if (await tx.signingKey.count({ where: { state: 'current' } })) return;
    const now = deps.now();
    // Nothing has been signed yet, so there is nothing to pre-publish before: current at once.
    await insertKey(deps, tx, jwk, 'current', now, now);
    await appendAuditEvents(tx, [{ type: 'signing_key.created', actorType: 'system', subjectType: 'signing_key', subjectId: jwk.kid, data: { alg, state: 'current' } }], now);
  });
}

/** The node's key set, decrypted: current first, then next, then retired keys, newest first. */
export async function loadSigningKeys(deps: Pick<Deps, 'prisma' | 'keyring'>): Promise<SigningKeySet> {
  const rows = await deps.prisma.signingKey.findMany({ where: { state: { in: ['current', 'next', 'retired'] } }, orderBy: { createdAt: 'desc' } });
  const current = rows.find((row) => row.state === 'current');
  if (!current) throw new LatchkeyError('server_error', 'there is no current signing key');
  const rank = (row: SigningKey) => ['current', 'next', 'retired'].indexOf(row.state);
  const ordered = [...rows].sort((a, b) => rank(a) - rank(b));
  const published = ordered.map((row) => JSON.parse(deps.keyring.decrypt(row.privateJwkEncrypted!)) as PrivateJwk);
  return { current: published[0]!, published, version: versionOf(rows) };
}

/** Identifies a key set by its keys' states, to tell whether a reload changed anything. */
const versionOf = (rows: Pick<SigningKey, 'kid' | 'state'>[]) =>
  rows
    .map((row) => `${row.kid}:${row.state}`)
    .sort()
    .join(',');

/** What an admin screen or `latchkey signing list` shows of a key. */
export interface SigningKeyView {
  kid: string;
  alg: string;
  state: SigningKeyState;
  createdAt: Date;
  /** When it began to sign, or (next) when it will. */
  activatesAt: Date;
  /** When it stopped signing, or (current) when the schedule will retire it. */
  retiresAt: Date | null;
  /** When it was or will be unpublished. */
  removesAt: Date | null;
}

const LIFE_CYCLE = ['next', 'current', 'retired', 'removed'];

/** Every key, removed ones too, newest first. */
export async function listSigningKeys(deps: Pick<Deps, 'prisma' | 'config'>): Promise<SigningKeyView[]> {
  // Newest first; keys made in the same instant (an injected clock) by their place in the life cycle.
  const rows = (await deps.prisma.signingKey.findMany({ orderBy: [{ createdAt: 'desc' }, { kid: 'asc' }] })).sort(
    (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || LIFE_CYCLE.indexOf(a.state) - LIFE_CYCLE.indexOf(b.state),
  );
  const { LATCHKEY_SIGNING_ROTATION: period, LATCHKEY_JWKS_CACHE_TTL: prePublication } = deps.config;
  const next = rows.find((row) => row.state === 'next');
  return rows.map((row) => ({
    kid: row.kid,
    alg: row.alg,
    state: row.state as SigningKeyState,
    createdAt: row.createdAt,
    activatesAt: row.activatesAt,
    // A current key is retired when its successor activates: the next one's time if there is
    // one, otherwise the scheduled rotation's.
    retiresAt: row.retiredAt ?? (row.state === 'current' ? (next?.activatesAt ?? new Date(row.activatesAt.getTime() + period + prePublication + PUBLICATION_MARGIN_MS)) : null),
    removesAt: row.removedAt ?? row.removesAt,
  }));
}

export interface RotationResult {
  kid: string;
  alg: string;
  state: 'next';
  createdAt: Date;
  /** When it replaces the current key: now + LATCHKEY_JWKS_CACHE_TTL (+ PUBLICATION_MARGIN_MS). */
  activatesAt: Date;
  /** The key it replaces. */
  replaces: string;
}

/**
 * On demand: publishes a `next` key now; it becomes current once LATCHKEY_JWKS_CACHE_TTL has
 * passed (not at once: a resource server holding an older copy of the JWKS would reject its
 * tokens). The current key then retires and stays published until its tokens have expired.
 * A rotation already under way is reported, not doubled.
 */
export async function rotateSigningKeys(deps: RotationDeps, actor: Actor, options: { reason?: string } = {}): Promise<RotationResult> {
  const current = await deps.prisma.signingKey.findFirst({ where: { state: 'current' } });
  const jwk = await newPrivateJwk(current?.alg ?? DEFAULT_ALG);
  return changeCredentials(deps, async (tx, invalidate) => {
    await lock(tx);
    const next = await tx.signingKey.findFirst({ where: { state: 'next' } });
    if (next) throw new Conflict(`a rotation is already under way: key ${next.kid} is published and becomes current at ${next.activatesAt.toISOString()}`);
    const replaced = await tx.signingKey.findFirst({ where: { state: 'current' } });
    if (!replaced) throw new Conflict('there is no current signing key to rotate; start the server once to create one');
    const now = deps.now();
    const created = await insertKey(deps, tx, jwk, 'next', now, activationAfter(now, deps.config));
    await appendAuditEvents(tx, [actorEvent(actor, 'signing_key.created', 'signing_key', jwk.kid, { alg: jwk.alg, state: 'next', activatesAt: created.activatesAt.toISOString(), replaces: replaced.kid, trigger: 'on_demand', ...(options.reason ? { reason: options.reason } : {}) })], now);
    await invalidate(SIGNING_KEYS_CHANGED);
    return { kid: created.kid, alg: created.alg, state: 'next', createdAt: created.createdAt, activatesAt: created.activatesAt, replaces: replaced.kid };
  });
}

export interface SigningKeyChange {
  kid: string;
  event: 'created' | 'activated' | 'retired' | 'removed';
}

export interface AdvanceResult {
  changes: SigningKeyChange[];
  /** When the next time-driven change is due (the schedule's next wake-up). */
  nextDueAt: Date | null;
}

/**
 * The schedule's step, run by a timer on every node: a `next` key whose time has come
 * becomes current (and the current one retires), retired keys whose tokens have all expired
 * are removed, and a current key older than LATCHKEY_SIGNING_ROTATION gets a successor.
 * Safe when several nodes run it at once: the changes are made under an advisory lock, after
 * reading the keys again.
 */
export async function advanceSigningKeys(deps: RotationDeps): Promise<AdvanceResult> {
  const before = await deps.prisma.signingKey.findMany({ where: { state: { in: ['current', 'next', 'retired'] } } });
  const plan = dueChanges(before, deps.now(), deps.config);
  if (plan.length === 0) return { changes: [], nextDueAt: nextDueAt(before, deps.config) };
  // Generated outside the transaction (and the lock); unused if another node got there first.
  const fresh = plan.includes('create') ? await newPrivateJwk(before.find((row) => row.state === 'current')?.alg ?? DEFAULT_ALG) : undefined;
  const changes = await changeCredentials(deps, async (tx, invalidate) => {
    await lock(tx);
    const now = deps.now();
    const rows = await tx.signingKey.findMany({ where: { state: { in: ['current', 'next', 'retired'] } } });
    const made: SigningKeyChange[] = [];
    const events: AuditEventInput[] = [];
    const system = (type: string, kid: string, data: Record<string, unknown>): AuditEventInput => ({ type, actorType: 'system', subjectType: 'signing_key', subjectId: kid, data });
    let current = rows.find((row) => row.state === 'current');
    const next = rows.find((row) => row.state === 'next');

    if (next && next.activatesAt <= now) {
      if (current) {
        const removesAt = new Date(now.getTime() + deps.config.LATCHKEY_ACCESS_TOKEN_TTL + REMOVAL_LEEWAY_MS);
        await tx.signingKey.update({ where: { kid: current.kid }, data: { state: 'retired', retiredAt: now, removesAt } });
        events.push(system('signing_key.retired', current.kid, { replacedBy: next.kid, removesAt: removesAt.toISOString() }));
        made.push({ kid: current.kid, event: 'retired' });
      }
      current = await tx.signingKey.update({ where: { kid: next.kid }, data: { state: 'current', activatesAt: now } });
      events.push(system('signing_key.activated', next.kid, { replaces: rows.find((row) => row.state === 'current')?.kid ?? null }));
      made.push({ kid: next.kid, event: 'activated' });
    }
    for (const retired of rows.filter((row) => row.state === 'retired' && row.removesAt !== null && row.removesAt <= now)) {
      // The private part is of no further use to anyone: wiped, not kept encrypted.
      await tx.signingKey.update({ where: { kid: retired.kid }, data: { state: 'removed', removedAt: now, privateJwkEncrypted: null } });
      events.push(system('signing_key.removed', retired.kid, {}));
      made.push({ kid: retired.kid, event: 'removed' });
    }
    const hasNext = next !== undefined && current?.kid !== next.kid;
    if (fresh && current && !hasNext && current.activatesAt.getTime() + deps.config.LATCHKEY_SIGNING_ROTATION <= now.getTime()) {
      const created = await insertKey(deps, tx, fresh, 'next', now, activationAfter(now, deps.config));
      events.push(system('signing_key.created', fresh.kid, { alg: fresh.alg, state: 'next', activatesAt: created.activatesAt.toISOString(), replaces: current.kid, trigger: 'schedule' }));
      made.push({ kid: fresh.kid, event: 'created' });
    }
    if (made.length > 0) {
      await appendAuditEvents(tx, events, now);
      await invalidate(SIGNING_KEYS_CHANGED);
    }
    return made;
  });
  const after = await deps.prisma.signingKey.findMany({ where: { state: { in: ['current', 'next', 'retired'] } } });
  return { changes, nextDueAt: nextDueAt(after, deps.config) };
}

type Step = 'activate' | 'remove' | 'create';

function dueChanges(rows: SigningKey[], now: Date, config: RotationDeps['config']): Step[] {
  const steps: Step[] = [];
  const current = rows.find((row) => row.state === 'current');
  const next = rows.find((row) => row.state === 'next');
  if (next && next.activatesAt <= now) steps.push('activate');
  if (rows.some((row) => row.state === 'retired' && row.removesAt !== null && row.removesAt <= now)) steps.push('remove');
  if (!next && current && current.activatesAt.getTime() + config.LATCHKEY_SIGNING_ROTATION <= now.getTime()) steps.push('create');
  return steps;
}

function nextDueAt(rows: SigningKey[], config: RotationDeps['config']): Date | null {
  const current = rows.find((row) => row.state === 'current');
  const next = rows.find((row) => row.state === 'next');
  const times = [
    next?.activatesAt.getTime(),
    ...rows.filter((row) => row.state === 'retired').map((row) => row.removesAt?.getTime()),
    !next && current ? current.activatesAt.getTime() + config.LATCHKEY_SIGNING_ROTATION : undefined,
  ].filter((time): time is number => time !== undefined);
  return times.length > 0 ? new Date(Math.min(...times)) : null;
}

/**
 * Signs `payload` (claims, or text) as a compact JWS with the current key, `kid` in the header,
 * for Latchkey's own signed documents (audit checkpoints). Verify with publicKeysForVerification.
 */
export async function signWithCurrentKey(deps: Pick<Deps, 'prisma' | 'keyring'>, payload: object | string, options: { typ?: string } = {}): Promise<string> {
  const row = await deps.prisma.signingKey.findFirst({ where: { state: 'current' } });
  if (!row?.privateJwkEncrypted) throw new LatchkeyError('server_error', 'there is no current signing key');
  const jwk = JSON.parse(deps.keyring.decrypt(row.privateJwkEncrypted)) as PrivateJwk;
  const bytes = new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return new CompactSign(bytes).setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, ...(options.typ ? { typ: options.typ } : {}) }).sign(await importJWK(jwk, jwk.alg));
}

/**
 * Public JWKs of every key that is not removed (what JWKS publishes). With `includeRemoved`,
 * removed keys' too: a document signed long ago (an old audit checkpoint) stays verifiable.
 */
export async function publicKeysForVerification(deps: Pick<Deps, 'prisma'>, options: { includeRemoved?: boolean } = {}): Promise<{ keys: JWK[] }> {
  const rows = await deps.prisma.signingKey.findMany({
    where: options.includeRemoved ? {} : { state: { in: ['current', 'next', 'retired'] } },
    select: { publicJwk: true },
    orderBy: { createdAt: 'desc' },
  });
  return { keys: rows.map((row) => row.publicJwk as JWK) };
}

async function lock(tx: Tx): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${KEY_LOCK})`;
}

function insertKey(deps: Pick<Deps, 'keyring'>, tx: Tx, jwk: PrivateJwk, state: 'next' | 'current', now: Date, activatesAt: Date) {
  return tx.signingKey.create({
    data: {
      kid: jwk.kid,
      alg: jwk.alg,
      publicJwk: publicPart(jwk),
      privateJwkEncrypted: deps.keyring.encrypt(JSON.stringify(jwk)),
      state,
      createdAt: now,
      activatesAt,
    },
  });
}

async function newPrivateJwk(alg: string): Promise<PrivateJwk> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' };
}

export function publicPart(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub;
}
