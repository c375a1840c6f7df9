import { z } from 'zod';
import type { Deps } from '../context.ts';
import type { LimitVerdict, LimitWindow } from '../limits/limiter.ts';
import { tokenPolicy } from '../policies/tokens.ts';
import { verifyApiKey, verifyCachedApiKey, type ApiKeyRecord, type ApiKeyVerification } from './api-keys.ts';
import type { ClientRecord } from './clients.ts';

/** DESIGN §2 Key verification (contract): the closed set of codes. */
export const VERIFY_CODES = ['VALID', 'NOT_FOUND', 'REVOKED', 'EXPIRED', 'INSUFFICIENT_SCOPE', 'RATE_LIMITED', 'QUOTA_EXCEEDED', 'SUSPENDED'] as const;
export type VerifyCode = (typeof VERIFY_CODES)[number];

/** POST /v1/keys/verify's body (client authentication fields aside). */
export const verifyKeyInput = z.object({
  key: z.string().min(1).max(512),
  /** Every one of these must be granted to the key. */
  scopes: z.array(z.string().min(1).max(128)).max(100).optional(),
  /** Uses this check counts for, toward usage and the plan's limits. */
  cost: z.number().int().min(1).max(1000).default(1),
});
export type VerifyKeyInput = z.output<typeof verifyKeyInput>;

export interface KeyVerification {
  valid: boolean;
  code: VerifyCode;
  key_id: string | null;
  owner: string | null;
  scopes: string[];
  expires_at: string | null;
  ratelimit?: LimitWindow;
  quota?: LimitWindow;
}

/**
 * The one answer for a key the caller may not learn about: unknown id, wrong secret, another
 * audience, malformed. Frozen and shared, so the three cannot differ by a byte.
 */
const NOT_FOUND: KeyVerification = Object.freeze({ valid: false, code: 'NOT_FOUND', key_id: null, owner: null, scopes: [], expires_at: null }) as KeyVerification;

/**
 * How each verdict of verifyApiKey is reported once the caller may see the key. A verdict
 * added there fails to compile here until it is mapped.
 */
const VERDICT_CODES: Record<Exclude<ApiKeyVerification['result'], 'VALID' | 'MALFORMED' | 'NOT_FOUND' | 'INVALID_SECRET'>, VerifyCode> = {
  REVOKED: 'REVOKED',
  EXPIRED: 'EXPIRED',
  SUSPENDED: 'SUSPENDED',
};

const describeKey = (key: ApiKeyRecord) => ({
  key_id: key.id,
  // The owning principal, as introspection's `sub`: its team, or the key itself.
  owner: key.teamId ?? key.id,
  scopes: key.scopes,
  expires_at: key.expiresAt?.toISOString() ?? null,
});

/**
 * Verifies a key for an authenticated caller (a gateway): identity, audience, state, scopes,
 * then the plan's limits, counting `cost` uses. Answered without waiting on anything when the
 * key's record is cached and its limits can be decided on this node: always with counters in
 * memory, and with Redis between batches far from the limit (limits/limiter.ts); a promise otherwise.
 * Outcomes are counted (usage, metrics), not audited one row each: a gateway passes on every
 * junk key that reaches it (issue 9 §1.3). `ip`: the gateway's peer address, for the networks a
 * key is used from (limits/alerts.ts).
 */
export function verifyKeyFor(deps: Deps, caller: ClientRecord, input: VerifyKeyInput, ip?: string): KeyVerification | Promise<KeyVerification> {
  const cached = verifyCachedApiKey(deps, input.key);
  if (cached !== undefined) return decide(deps, caller, input, cached, ip);
  return verifyApiKey(deps, input.key).then((verdict) => decide(deps, caller, input, verdict, ip));
}

function decide(deps: Deps, caller: ClientRecord, input: VerifyKeyInput, verdict: ApiKeyVerification, ip: string | undefined): KeyVerification | Promise<KeyVerification> {
  if (verdict.result === 'MALFORMED' || verdict.result === 'NOT_FOUND') return NOT_FOUND;
  const { key } = verdict;
  // Not meant for this caller: none of its business whether the key exists (RFC 7662 §4 in
  // spirit), and nothing counted against the key: a stranger must not make it fail or alert.
  if (!tokenPolicy.introspect(caller, key)) return NOT_FOUND;
  if (verdict.result === 'INVALID_SECRET') {
    deps.usage.record('api_key', key.id, false, ip);
    return NOT_FOUND;
  }
  if (verdict.result !== 'VALID') {
    deps.usage.record('api_key', key.id, false, ip, input.cost);
    return { valid: false, code: VERDICT_CODES[verdict.result], ...describeKey(key) };
  }
  if (input.scopes && !input.scopes.every((scope) => key.scopes.includes(scope))) {
    deps.usage.record('api_key', key.id, false, ip, input.cost);
    return { valid: false, code: 'INSUFFICIENT_SCOPE', ...describeKey(key) };
  }
  if (!key.limits) {
    deps.usage.touch(key.id, ip, input.cost);
    return { valid: true, code: 'VALID', ...describeKey(key) };
  }
  const limited = deps.limits.check('verify', `k:${key.lineageId}`, key.limits, input.cost, deps.now().getTime(), deps.config.LATCHKEY_VERIFY_LIMITS_ON_REDIS_FAILURE);
  return limited instanceof Promise ? limited.then((l) => withLimits(deps, key, input, l, ip)) : withLimits(deps, key, input, limited, ip);
}

function withLimits(deps: Deps, key: ApiKeyRecord, input: VerifyKeyInput, limited: LimitVerdict, ip: string | undefined): KeyVerification {
  deps.usage.record('api_key', key.id, limited.refused === null, ip, input.cost);
  return {
    valid: limited.refused === null,
    code: limited.refused ?? 'VALID',
    ...describeKey(key),
    ...(limited.ratelimit ? { ratelimit: limited.ratelimit } : {}),
    ...(limited.quota ? { quota: limited.quota } : {}),
  };
}
