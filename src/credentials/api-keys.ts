import { z } from 'zod';
import { resolveOwnerTeam } from '../accounts/owners.ts';
import { OWNER_SUSPENDED_SQL, parseReason, teamGroup } from '../accounts/suspension.ts';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { ApiKey, Tx } from '../db/database.ts';
import { Conflict, InvalidRequest, NotFound } from '../lib/errors.ts';
import { changeCredentials } from '../lib/invalidation.ts';
import { effectiveLimits, planIdByName, planName, type LimitColumns, type Limits } from '../limits/plans.ts';
import { KEY_ID, newApiKey, parseApiKey } from './api-key-format.ts';
import { credentialName, lockCredentialName, NameTaken } from './names.ts';
import { audiencesFor } from './apis.ts';
import { assertGrantableScopes, grantableOf, scopeName } from './scopes.ts';

export const createApiKeyInput = z.object({
  name: credentialName,
  // May be empty: on a fresh install the catalog has none (the portal then allows it; the CLI requires --scopes).
  scopes: z.array(scopeName),
  audiences: z.array(z.url({ protocol: /^https?$/ })).default([]),
  /** An operator names the owner (CLI): a team id or a person's email. */
  owner: z.string().trim().min(1).max(320).optional(),
  /** A page already knows the team. */
  teamId: z.uuid().optional(),
  expiresInMs: z.number().int().positive().optional(),
  /** The plan limiting its checks at /v1/keys/verify. */
  plan: planName.optional(),
});

export interface IssuedApiKey {
  id: string;
  /** The whole key: returned once, never stored. */
  key: string;
  scopes: string[];
  audiences: string[];
  expires_at: string | null;
}

export type ApiKeyStatus = 'active' | 'expiring' | 'revoked' | 'expired';

/**
 * The one rule for a live key: not revoked and not past its expiry (a key rotating out, inside
 * its grace window, is still live). As a Prisma filter here; apiKeyStatus is its in-memory
 * form and key-list.ts its SQL form.
 */
export const liveKeyWhere = (now: Date) => ({ revokedAt: null, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] }) satisfies import('../db/generated/client.ts').Prisma.ApiKeyWhereInput;

/** Live (see liveKeyWhere) unless revoked or expired; a live key with a successor is 'expiring'. */
export function apiKeyStatus(key: Pick<ApiKey, 'revokedAt' | 'expiresAt' | 'replacedById'>, now: Date): ApiKeyStatus {
  if (key.revokedAt) return 'revoked';
  if (key.expiresAt && key.expiresAt <= now) return 'expired';
  return key.replacedById ? 'expiring' : 'active';
}

/** NameTaken when a live key of the team already has this name (see createApiKey). */
export async function assertKeyNameFree(db: Pick<Tx, 'apiKey'>, teamId: string, name: string, now: Date): Promise<void> {
  const taken = await db.apiKey.findFirst({ where: { teamId, name, ...liveKeyWhere(now) }, select: { id: true } });
  if (taken) throw new NameTaken('api key', name);
}

/**
 * Issues a key. Within a team, names tell live keys apart (lists, audit, mails), so a live key
 * of the same team with the same name is a NameTaken conflict; a revoked or expired key frees
 * its name, and a rotation's successor shares its predecessor's name on purpose. Keys without
 * a team (an operator's, from the CLI without --owner) have no names to collide with.
 */
export async function createApiKey(deps: Deps, input: z.input<typeof createApiKeyInput>, actor: Actor): Promise<IssuedApiKey> {
  const parsed = createApiKeyInput.parse(input);
  const scopes = [...new Set(parsed.scopes)];
  const now = deps.now();
  const expiresAt = parsed.expiresInMs ? new Date(now.getTime() + parsed.expiresInMs) : null;
  const issued = newApiKey();
  const audiences = await changeCredentials(deps, async (tx, invalidate) => {
    await assertGrantableScopes(tx, scopes);
    const audiences = await audiencesFor(deps, tx, scopes, parsed.audiences);
    const teamId = parsed.teamId ?? (parsed.owner ? await resolveOwnerTeam(tx, parsed.owner) : null);
    if (teamId) {
      await lockCredentialName(tx, 'api_key', teamId, parsed.name);
      await assertKeyNameFree(tx, teamId, parsed.name, now);
    }
    const planId = parsed.plan === undefined ? null : await planIdByName(tx, parsed.plan);
    await tx.apiKey.create({
      data: { id: issued.id, name: parsed.name, teamId, scopes, audiences, digest: deps.keyring.digest(issued.key), expiresAt, createdAt: now, planId },
    });
    await appendAuditEvents(
      tx,
      [actorEvent(actor, 'api_key.created', 'api_key', issued.id, { name: parsed.name, scopes, audiences, teamId, expiresAt: expiresAt?.toISOString() ?? null, ...(parsed.plan ? { plan: parsed.plan } : {}) })],
      now,
    );
    await invalidate(`key:${issued.id}`);
    return audiences;
  });
  return { id: issued.id, key: issued.key, scopes, audiences, expires_at: expiresAt?.toISOString() ?? null };
}


export async function lockKey(tx: Tx, id: string): Promise<ApiKey> {
  if (!KEY_ID.test(id)) throw new NotFound('api key');
  const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM api_key WHERE id = ${id} FOR UPDATE`;
  if (rows.length === 0) throw new NotFound('api key');
  return tx.apiKey.findUniqueOrThrow({ where: { id } });
}

/**
 * Issues a successor with the same grants, less any scope retired since (the catalog's rule:
 * a retired scope lives on only until rotation); the old key keeps working until `graceMs`
 * from now (never longer than it would have). A key has at most one successor, so of
 * concurrent rotations exactly one wins and the others get a conflict.
 */
export async function rotateApiKey(deps: Deps, id: string, options: { graceMs: number }, actor: Actor): Promise<IssuedApiKey & { previous_expires_at: string }> {
  if (!Number.isFinite(options.graceMs) || options.graceMs < 0) throw new InvalidRequest('grace must be a non-negative duration');
  const now = deps.now();
  const issued = newApiKey();
  return changeCredentials(deps, async (tx, invalidate) => {
    const old = await lockKey(tx, id);
    const status = apiKeyStatus(old, now);
    if (status === 'revoked' || status === 'expired') throw new Conflict(`api key is ${status}`);
    if (old.replacedById) throw new Conflict(`api key was already rotated; rotate its successor ${old.replacedById}`);
    const graceEnd = new Date(now.getTime() + options.graceMs);
    const previousExpiresAt = old.expiresAt && old.expiresAt < graceEnd ? old.expiresAt : graceEnd;
    // The successor lives as long as the original was meant to.
    const expiresAt = old.expiresAt ? new Date(now.getTime() + (old.expiresAt.getTime() - old.createdAt.getTime())) : null;
    const { kept: scopes, dropped } = await grantableOf(tx, old.scopes);
    await tx.apiKey.create({
      data: {
        id: issued.id,
        name: old.name,
        teamId: old.teamId,
        scopes,
        audiences: old.audiences,
        digest: deps.keyring.digest(issued.key),
        expiresAt,
        createdAt: now,
        // The successor is limited as its predecessor was, on the same counters.
        lineageId: old.lineageId ?? old.id,
        planId: old.planId,
        rateLimit: old.rateLimit,
        rateWindowSeconds: old.rateWindowSeconds,
        quotaLimit: old.quotaLimit,
        quotaPeriod: old.quotaPeriod,
      },
    });
    await tx.apiKey.update({ where: { id }, data: { replacedById: issued.id, expiresAt: previousExpiresAt } });
    await appendAuditEvents(tx, [actorEvent(actor, 'api_key.rotated', 'api_key', id, { successor: issued.id, previousExpiresAt: previousExpiresAt.toISOString(), teamId: old.teamId, ...(dropped.length > 0 ? { droppedScopes: dropped } : {}) })], now);
    await invalidate(`key:${id}`, `key:${issued.id}`);
    return {
      id: issued.id,
      key: issued.key,
      scopes,
      audiences: old.audiences,
      expires_at: expiresAt?.toISOString() ?? null,
      previous_expires_at: previousExpiresAt.toISOString(),
    };
  });
}

export async function revokeApiKey(deps: Deps, id: string, options: { reason?: string }, actor: Actor) {
  const reason = options.reason?.slice(0, 500) ?? null;
  const now = deps.now();
  return changeCredentials(deps, async (tx, invalidate) => {
    const key = await lockKey(tx, id);
    if (!key.revokedAt) {
      await tx.apiKey.update({ where: { id }, data: { revokedAt: now, revokedReason: reason } });
      await appendAuditEvents(tx, [actorEvent(actor, 'api_key.revoked', 'api_key', id, { reason, teamId: key.teamId })], now);
      await invalidate(`key:${id}`);
    }
    // `changed` tells a caller that raced another revocation that its own changed nothing.
    return { id, status: 'revoked' as const, revoked_at: (key.revokedAt ?? now).toISOString(), changed: !key.revokedAt };
  });
}

/**
 * Suspends one key, reversibly (unlike revocation): its checks answer SUSPENDED on every node
 * within a second until unsuspendApiKey. Used by an alert under the team's auto-suspend policy
 * (limits/alerts.ts) and by operators. Suspending a suspended key changes nothing.
 */
export async function suspendApiKey(deps: Pick<Deps, 'prisma' | 'cache' | 'now'>, id: string, reason: string, actor: Actor): Promise<KeySuspension> {
  return setKeySuspension(deps, id, reason, actor, true);
}

export async function unsuspendApiKey(deps: Pick<Deps, 'prisma' | 'cache' | 'now'>, id: string, reason: string, actor: Actor): Promise<KeySuspension> {
  return setKeySuspension(deps, id, reason, actor, false);
}

/** `changed` is false when the key already was as asked: decided under the key's lock, so of two concurrent requests exactly one changes it. */
export interface KeySuspension {
  id: string;
  suspended: boolean;
  changed: boolean;
}

async function setKeySuspension(deps: Pick<Deps, 'prisma' | 'cache' | 'now'>, id: string, reason: string, actor: Actor, suspend: boolean): Promise<KeySuspension> {
  const why = parseReason(reason);
  const now = deps.now();
  return changeCredentials(deps, async (tx, invalidate) => {
    const key = await lockKey(tx, id);
    if (suspend && key.revokedAt) throw new Conflict('api key is revoked');
    const changed = (key.suspendedAt !== null) !== suspend;
    if (changed) {
      await tx.apiKey.update({ where: { id }, data: { suspendedAt: suspend ? now : null } });
      await appendAuditEvents(tx, [actorEvent(actor, suspend ? 'api_key.suspended' : 'api_key.unsuspended', 'api_key', id, { reason: why, teamId: key.teamId })], now);
      await invalidate(`key:${id}`);
    }
    return { id, suspended: suspend, changed };
  });
}

/** The cached view of a key that verification reads. */
export interface ApiKeyRecord {
  id: string;
  teamId: string | null;
  scopes: string[];
  audiences: string[];
  digest: Uint8Array;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  /** The key itself (suspendApiKey) or its team (or the team's person) is suspended. */
  suspended: boolean;
  /** Its plan's limits with its own overrides, resolved when loaded; null when none apply. */
  limits: Limits | null;
  /** What its plan's counters are kept under: the first key of its rotation line. */
  lineageId: string;
}

export type ApiKeyVerification =
  | { result: 'VALID'; key: ApiKeyRecord }
  | { result: 'MALFORMED' }
  | { result: 'NOT_FOUND'; keyId: string }
  // The record too: whoever reports or counts a failure must first ask whether the caller may
  // see the key, or a stranger could make another team's key fail (and alert) by its public id.
  | { result: 'INVALID_SECRET' | 'REVOKED' | 'EXPIRED' | 'SUSPENDED'; keyId: string; key: ApiKeyRecord };

// One round trip with the owner's state (accounts/suspension.ts), written for the primary key.
// One read for everything a check needs: the key, its owner's suspension and its plan's limits.
const KEY_RECORD_SQL = `
  SELECT k.id, k.team_id::text AS "teamId", k.scopes, k.audiences, k.digest, k.created_at AS "createdAt",
         k.expires_at AS "expiresAt", k.revoked_at AS "revokedAt", (k.suspended_at IS NOT NULL OR ${OWNER_SUSPENDED_SQL}) AS suspended, COALESCE(k.lineage_id, k.id) AS "lineageId",
         k.rate_limit AS "rateLimit", k.rate_window_seconds AS "rateWindowSeconds", k.quota_limit AS "quotaLimit", k.quota_period AS "quotaPeriod",
         p.rate_limit AS "planRateLimit", p.rate_window_seconds AS "planRateWindowSeconds", p.quota_limit AS "planQuotaLimit", p.quota_period AS "planQuotaPeriod"
    FROM api_key k LEFT JOIN team t ON t.id = k.team_id LEFT JOIN account a ON a.id = t.personal_account_id LEFT JOIN plan p ON p.id = k.plan_id
   WHERE k.id = $1`;

type KeyRow = Omit<ApiKeyRecord, 'limits'> &
  LimitColumns & { planRateLimit: number | null; planRateWindowSeconds: number | null; planQuotaLimit: number | null; planQuotaPeriod: string | null };

// Cached in its team's group: suspending the team drops it with one message (suspension.ts).
const loadKey = (deps: Pick<Deps, 'prisma' | 'cache'>, id: string) =>
  deps.cache.get<ApiKeyRecord>(
    `key:${id}`,
    async () => {
      const row = (await deps.prisma.$queryRawUnsafe<KeyRow[]>(KEY_RECORD_SQL, id))[0];
      if (!row) return null;
      const { rateLimit, rateWindowSeconds, quotaLimit, quotaPeriod, planRateLimit, planRateWindowSeconds, planQuotaLimit, planQuotaPeriod, ...key } = row;
      const plan = { rateLimit: planRateLimit, rateWindowSeconds: planRateWindowSeconds, quotaLimit: planQuotaLimit, quotaPeriod: planQuotaPeriod };
      return { ...key, limits: effectiveLimits({ rateLimit, rateWindowSeconds, quotaLimit, quotaPeriod }, plan) };
    },
    (key) => (key.teamId ? teamGroup(key.teamId) : null),
  );

/** Expected outcomes are values: callers decide what each one means for them. */
export async function verifyApiKey(deps: Pick<Deps, 'prisma' | 'cache' | 'keyring' | 'now'>, presented: string): Promise<ApiKeyVerification> {
  const parsed = parseApiKey(presented);
  if (!parsed) return { result: 'MALFORMED' };
  return checkApiKey(deps, parsed.id, await loadKey(deps, parsed.id), presented);
}

/** The same verdict, synchronously, when the key's record is cached; undefined when it is not. */
export function verifyCachedApiKey(deps: Pick<Deps, 'cache' | 'keyring' | 'now'>, presented: string): ApiKeyVerification | undefined {
  const parsed = parseApiKey(presented);
  if (!parsed) return { result: 'MALFORMED' };
  const key = deps.cache.peek<ApiKeyRecord>(`key:${parsed.id}`);
  return key === undefined ? undefined : checkApiKey(deps, parsed.id, key, presented);
}

function checkApiKey(deps: Pick<Deps, 'keyring' | 'now'>, keyId: string, key: ApiKeyRecord | null, presented: string): ApiKeyVerification {
  if (!key) return { result: 'NOT_FOUND', keyId };
  if (!deps.keyring.matches(presented, key.digest)) return { result: 'INVALID_SECRET', keyId, key };
  if (key.revokedAt) return { result: 'REVOKED', keyId, key };
  // Expiry, including the end of a rotation's grace window, is checked on every use: no cron.
  if (key.expiresAt && key.expiresAt <= deps.now()) return { result: 'EXPIRED', keyId, key };
  // After revoked and expired, which outlast a suspension and say more about the key itself.
  if (key.suspended) return { result: 'SUSPENDED', keyId, key };
  return { result: 'VALID', key };
}
