import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor, RequestInfo } from '../actor.ts';
import type { Deps } from '../context.ts';
import { changeCredentials } from '../lib/invalidation.ts';
import { PRESENTED_API_KEY, tokenPolicy } from '../policies/tokens.ts';
import { looksLikeApiKey } from './api-key-format.ts';
import { revokeApiKey, verifyApiKey, verifyCachedApiKey, type ApiKeyRecord } from './api-keys.ts';
import { findClient, type ClientRecord } from './clients.ts';
import { issuedBeforeCutoff } from './token-cutoff.ts';
import type { TokenVerifier } from './token-verifier.ts';
import type { LimitVerdict } from '../limits/limiter.ts';

export type Introspection = { active: false } | ActiveToken;

export interface ActiveToken {
  active: true;
  token_type: 'Bearer' | 'api_key';
  /** RFC 7662 §2.2: OPTIONAL; absent for a key with no scope (an empty string is not a scope list). */
  scope?: string;
  client_id: string;
  sub: string;
  aud: string | string[];
  iss: string;
  exp?: number;
  iat: number;
  jti?: string;
}

const INACTIVE = { active: false } as const;
const epoch = (date: Date) => Math.floor(date.getTime() / 1000);
const audValue = (aud: string[]) => (aud.length === 1 ? aud[0]! : aud);
const isJwt = (token: string) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token);

/**
 * RFC 7662 for every kind of credential Latchkey issues. The kind is told by the token's own
 * shape, so token_type_hint is not needed and a wrong one never hides a token.
 * Anything that is not active and visible to the caller is `{active:false}` and nothing more.
 */
export async function introspect(deps: Deps, verifier: TokenVerifier, caller: ClientRecord, token: string, request: RequestInfo): Promise<Introspection> {
  if (looksLikeApiKey(token)) return introspectApiKey(deps, caller, token, request);
  if (isJwt(token)) return introspectJwt(deps, verifier, caller, token, request);
  return introspectOpaque(deps, verifier, caller, token);
}

/**
 * The answer for a token shaped like an API key (looksLikeApiKey) whose record is cached,
 * without waiting for anything (the endpoint's hot path); undefined when the full path must
 * run: a cache miss, or a failed check, which is audited.
 */
export function introspectCachedApiKey(deps: Deps, caller: ClientRecord, token: string, ip: string | undefined): Introspection | undefined {
  const verdict = verifyCachedApiKey(deps, token);
  // Malformed is junk: counted on the full path, which knows the request's address.
  if (verdict?.result !== 'VALID') return undefined;
  const { key } = verdict;
  if (!tokenPolicy.introspect(caller, key) || !countsTowardLimits(deps, key)) return apiKeyAnswer(deps, caller, key, ip) as Introspection;
  // Shared counters that must ask Redis first: the full path does, counting the use there.
  const limited = deps.limits.checkLocally('introspect', `k:${key.lineageId}`, key.limits!, 1, deps.now().getTime());
  return limited && limitedAnswer(deps, key, limited, ip);
}

/** Introspection counts toward a key's plan only when LATCHKEY_INTROSPECTION_LIMITS says so. */
const countsTowardLimits = (deps: Deps, key: ApiKeyRecord) => deps.config.LATCHKEY_INTROSPECTION_LIMITS && key.limits !== null;

async function introspectApiKey(deps: Deps, caller: ClientRecord, token: string, request: RequestInfo): Promise<Introspection> {
  const verdict = await verifyApiKey(deps, token);
  if (verdict.result === 'MALFORMED') return junkChecked(deps, caller, request, 'api_key', 'MALFORMED');
  if (verdict.result === 'NOT_FOUND') return junkChecked(deps, caller, request, 'api_key', 'NOT_FOUND');
  // Another audience's key is unknown to this caller: not counted, audited or throttled
  // against the key, so that nobody can make a stranger's key fail (or alert) by its public id.
  if (!tokenPolicy.introspect(caller, verdict.key)) return junkChecked(deps, caller, request, 'api_key', 'NOT_FOUND');
  if (verdict.result !== 'VALID') return checkFailed(deps, caller, request, 'api_key', verdict.keyId, verdict.result);
  return apiKeyAnswer(deps, caller, verdict.key, request.ip);
}

/**
 * Synchronous unless the key's plan must ask Redis (see countsTowardLimits and limits/limiter.ts).
 * `ip`: the resource server's peer address, for the networks a key is used from (limits/alerts.ts).
 */
function apiKeyAnswer(deps: Deps, caller: ClientRecord, key: ApiKeyRecord, ip: string | undefined): Introspection | Promise<Introspection> {
  if (!tokenPolicy.introspect(caller, key)) return INACTIVE;
  if (countsTowardLimits(deps, key)) {
    const limited = deps.limits.check('introspect', `k:${key.lineageId}`, key.limits!, 1, deps.now().getTime(), deps.config.LATCHKEY_VERIFY_LIMITS_ON_REDIS_FAILURE);
    return limited instanceof Promise ? limited.then((verdict) => limitedAnswer(deps, key, verdict, ip)) : limitedAnswer(deps, key, limited, ip);
  }
  return activeKey(deps, key, ip);
}

// RFC 7662 has no "over its limit": such a key is simply not active for now.
function limitedAnswer(deps: Deps, key: ApiKeyRecord, verdict: LimitVerdict, ip: string | undefined): Introspection {
  if (!verdict.refused) return activeKey(deps, key, ip);
  deps.usage.record('api_key', key.id, false);
  return INACTIVE;
}

function activeKey(deps: Deps, key: ApiKeyRecord, ip: string | undefined): Introspection {
  deps.usage.touch(key.id, ip);
  return {
    active: true,
    token_type: 'api_key',
    ...(key.scopes.length > 0 ? { scope: key.scopes.join(' ') } : {}),
    client_id: key.id,
    // The owning principal (its team); a key without one stands for itself.
    sub: key.teamId ?? key.id,
    aud: audValue(key.audiences),
    iss: deps.config.LATCHKEY_ISSUER,
    ...(key.expiresAt ? { exp: epoch(key.expiresAt) } : {}),
    iat: epoch(key.createdAt),
  };
}

async function isRevokedJti(deps: Deps, jti: string): Promise<boolean> {
  const entry = await deps.cache.get(`jti:${jti}`, () => deps.prisma.revokedToken.findUnique({ where: { jti }, select: { jti: true } }));
  return entry !== null;
}

async function introspectJwt(deps: Deps, verifier: TokenVerifier, caller: ClientRecord, token: string, request: RequestInfo): Promise<Introspection> {
  const { claims, failure } = await verifier.verifyJwt(token);
  const jti = typeof claims?.jti === 'string' ? claims.jti : null;
  // Not ours (forged, garbled, another issuer's): not audited one by one, since resource
  // servers pass on whatever bearer value reaches them, and junk would flood the log; counted
  // and summarised instead. A JWT has no checksum to tell junk from a real attempt without this check.
  if (failure === 'INVALID') return junkChecked(deps, caller, request, 'access_token', 'INVALID');
  if (typeof claims.client_id !== 'string' || !jti) return INACTIVE;
  const audiences = claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  // Not meant for the caller: inactive, and none of its business why (nor an audit matter).
  if (!tokenPolicy.introspect(caller, { audiences, clientId: claims.client_id })) return INACTIVE;
  if (failure === 'EXPIRED') return checkFailed(deps, caller, request, 'access_token', jti, 'EXPIRED');
  // A revoked client takes its tokens with it; a suspended one (its team is) holds them back.
  const client = await findClient(deps, claims.client_id);
  if (client?.status !== 'active') return checkFailed(deps, caller, request, 'access_token', jti, client?.status === 'suspended' ? 'SUSPENDED' : 'CLIENT_INACTIVE');
  if (client.tokensRevokedBefore && (await issuedBeforeCutoff(deps, { jti, iat: claims.iat! }, client.tokensRevokedBefore))) {
    return checkFailed(deps, caller, request, 'access_token', jti, 'REVOKED');
  }
  if (await isRevokedJti(deps, jti)) return checkFailed(deps, caller, request, 'access_token', jti, 'REVOKED');
  return {
    active: true,
    token_type: 'Bearer',
    scope: typeof claims.scope === 'string' ? claims.scope : '',
    client_id: claims.client_id,
    sub: claims.sub ?? claims.client_id,
    aud: audValue(audiences),
    iss: claims.iss!,
    exp: claims.exp!,
    iat: claims.iat!,
    jti,
  };
}

/**
 * A failed check of a credential that is ours (an API key that passed its checksum, a JWT
 * whose signature held) is audited (`api_key.check_failed`, `access_token.check_failed`) with
 * its id, never the credential itself, and answers inactive. An id that names nothing is junk
 * anyone can make up: summarised, one event per caller and window (issue 9 §1.3). Failures
 * of one credential past the limit are summarised too (still answered inactive).
 */
async function checkFailed(deps: Deps, caller: ClientRecord, request: RequestInfo, kind: 'api_key' | 'access_token', id: string | null, result: string): Promise<Introspection> {
  if (result === 'NOT_FOUND') return junkChecked(deps, caller, request, kind, result);
  if (kind === 'api_key' && id !== null) deps.usage.record('api_key', id, false);
  if (id !== null && deps.guard.failedCheck(`${kind}:${id}`)) {
    deps.junk.count({ type: `${kind}.check_failed`, actorType: 'client', actorId: caller.id, subjectType: kind, subjectId: id, ip: request.ip, data: { result } }, request.requestId);
    return INACTIVE;
  }
  await deps.audit.record(actorEvent({ type: 'client', id: caller.id, ...request }, `${kind}.check_failed`, kind, id, { result }));
  return INACTIVE;
}

/** Junk (malformed, forged, unknown): counted and summarised, one event per caller, address and result per window. */
function junkChecked(deps: Deps, caller: ClientRecord, request: RequestInfo, kind: 'api_key' | 'access_token', result: string): Introspection {
  deps.junk.count({ type: `${kind}.check_failed`, actorType: 'client', actorId: caller.id, subjectType: kind, ip: request.ip, data: { result } }, request.requestId);
  return INACTIVE;
}

async function introspectOpaque(deps: Deps, verifier: TokenVerifier, caller: ClientRecord, token: string): Promise<Introspection> {
  const found = await verifier.findOpaque(token);
  if (!found || !tokenPolicy.introspect(caller, { audiences: found.aud, clientId: found.clientId })) return INACTIVE;
  const client = await findClient(deps, found.clientId);
  if (client?.status !== 'active') return INACTIVE;
  return {
    active: true,
    token_type: 'Bearer',
    scope: found.scope ?? '',
    client_id: found.clientId,
    sub: found.accountId ?? found.clientId,
    aud: audValue(found.aud.length ? found.aud : [deps.config.LATCHKEY_ISSUER]),
    iss: deps.config.LATCHKEY_ISSUER,
    exp: found.exp,
    iat: found.iat,
    jti: found.jti,
  };
}

/**
 * RFC 7009. Unknown, malformed and already-dead tokens are a silent success (§2.2), and so
 * is a token the caller may not revoke (tokenPolicy.revoke): nothing is revealed about it.
 */
export async function revokeToken(deps: Deps, verifier: TokenVerifier, caller: ClientRecord, token: string, request: RequestInfo): Promise<void> {
  const actor: Actor = { type: 'client', id: caller.id, ...request };
  if (looksLikeApiKey(token)) {
    const verdict = await verifyApiKey(deps, token);
    // A suspended key can still be revoked: the revocation outlasts the suspension.
    if ((verdict.result === 'VALID' || verdict.result === 'EXPIRED' || verdict.result === 'SUSPENDED') && tokenPolicy.revoke(caller, PRESENTED_API_KEY)) {
      const keyId = verdict.result === 'VALID' ? verdict.key.id : verdict.keyId;
      await revokeApiKey(deps, keyId, { reason: `revoked by client ${caller.id} (RFC 7009)` }, actor);
    }
    return;
  }
  if (isJwt(token)) {
    const { claims, failure } = await verifier.verifyJwt(token);
    // An expired token needs no revoking; a forged one cannot be.
    if (failure || typeof claims.client_id !== 'string' || typeof claims.jti !== 'string') return;
    if (!tokenPolicy.revoke(caller, { kind: 'token', clientId: claims.client_id })) return;
    const jti = claims.jti;
    const now = deps.now();
    await changeCredentials(deps, async (tx, invalidate) => {
      const inserted = await tx.revokedToken.createMany({
        data: [{ jti, clientId: caller.id, expiresAt: new Date(claims.exp! * 1000), revokedAt: now }],
        skipDuplicates: true,
      });
      if (inserted.count === 0) return;
      await appendAuditEvents(tx, [actorEvent(actor, 'access_token.revoked', 'access_token', jti)], now);
      await invalidate(`jti:${jti}`);
    });
    return;
  }
  const found = await verifier.findOpaque(token);
  if (found && tokenPolicy.revoke(caller, { kind: 'token', clientId: found.clientId })) {
    // The deletion and its audit event commit together.
    await deps.prisma.$transaction(async (tx) => {
      await tx.oidcPayload.deleteMany({ where: { model: found.model, id: found.jti } });
      await appendAuditEvents(tx, [actorEvent(actor, 'access_token.revoked', 'access_token', found.jti)], deps.now());
    });
  }
}
