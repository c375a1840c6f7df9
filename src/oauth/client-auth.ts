import { hash, timingSafeEqual } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeJwt, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { RequestInfo } from '../actor.ts';
import type { Deps } from '../context.ts';
import { cachedClient, clientSecretMatch, clientSecretMatches, findClient, type AuthMethod, type ClientRecord } from '../credentials/clients.ts';
import { InvalidClient, InvalidRequest, TooManyRequests } from '../lib/errors.ts';
import { jwksFetch } from './jwks-uri.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface Presented {
  method: AuthMethod;
  clientId: string;
  secret?: string;
  assertion?: string;
}

/** RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64. */
function parseBasic(header: string): { clientId: string; secret: string } | null {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!match) return null;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  try {
    const unescape = (text: string) => decodeURIComponent(text.replace(/\+/g, ' '));
    return { clientId: unescape(decoded.slice(0, colon)), secret: unescape(decoded.slice(colon + 1)) };
  } catch {
    return null;
  }
}

function presentedCredentials(header: string | undefined, params: Map<string, string>): Presented {
  const methods: Presented[] = [];
  if (header) {
    const basic = parseBasic(header);
    if (!basic) throw new InvalidClient('invalid Authorization header');
    methods.push({ method: 'client_secret_basic', clientId: basic.clientId, secret: basic.secret });
  }
  if (params.has('client_secret')) {
    methods.push({ method: 'client_secret_post', clientId: params.get('client_id') ?? '', secret: params.get('client_secret') });
  }
  if (params.has('client_assertion') || params.has('client_assertion_type')) {
    if (params.get('client_assertion_type') !== JWT_BEARER) throw new InvalidRequest('unsupported client_assertion_type');
    const assertion = params.get('client_assertion') ?? '';
    let clientId = '';
    try {
      const claims = decodeJwt(assertion);
      clientId = typeof claims.sub === 'string' ? claims.sub : '';
    } catch {
      throw new InvalidClient('invalid client_assertion');
    }
    methods.push({ method: 'private_key_jwt', clientId, assertion });
  }
  // RFC 6749 §2.3: a client must not use more than one authentication method per request.
  if (methods.length > 1) throw new InvalidRequest('only one client authentication method may be used');
  const [presented] = methods;
  if (!presented) throw new InvalidClient('no client authentication provided');
  const claimed = params.get('client_id');
  if (claimed !== undefined && claimed !== presented.clientId) throw new InvalidRequest('client_id does not match the authenticated client');
  return presented;
}

const MAX_ASSERTION_LIFETIME_S = 600;

/**
 * A client assertion is a short-lived proof: an `exp` more than 10 minutes ahead would keep it
 * (and its replay record) alive for long, and a non-finite or absurd one must not reach the
 * database as a date. The same rule at the token endpoint (oidc-provider's
 * assertJwtClientAuthClaimsAndHeader hook) and at Latchkey's own endpoints.
 */
export function assertionLifetimeOk(exp: unknown, now: Date): boolean {
  return typeof exp === 'number' && Number.isFinite(exp) && exp - now.getTime() / 1000 <= MAX_ASSERTION_LIFETIME_S;
}

/** oidc-provider's ReplayDetection id for an assertion (lib/models/replay_detection.js). */
const replayId = (issuer: string, jti: string) => hash('sha256', `${issuer}${jti}`, 'base64url');

// Remote key sets are cached by jose (per client and URI), shared by all requests.
const remoteKeySets = new Map<string, JWTVerifyGetKey>();

/**
 * Authenticates the caller of Latchkey's own endpoints (introspection, revocation) with the
 * same methods and rules oidc-provider applies at the token endpoint.
 */
export async function authenticateClient(
  deps: Deps,
  request: RequestInfo & { authorization: string | undefined; endpoint: string },
  params: Map<string, string>,
  allowedAudiences: string[],
  algorithms: string[],
): Promise<ClientRecord> {
  let presented: Presented;
  try {
    presented = presentedCredentials(request.authorization, params);
  } catch (error) {
    if (error instanceof InvalidClient) refuseClient(deps, request, claimedClientId(request.authorization, params), 'none');
    throw error;
  }
  const client = await findClient(deps, presented.clientId);
  const ok = client !== null && client.status === 'active' && client.authMethod === presented.method && (await verify(deps, client, presented, allowedAudiences, algorithms));
  if (!ok) {
    // A real application's failed authentications count toward its usage (and a burst alert).
    if (client !== null) deps.usage.record('client', client.id, false);
    refuseClient(deps, request, presented.clientId, presented.method);
  }
  const wait = deps.guard.admitClient(client.id);
  if (wait) throw new TooManyRequests(wait);
  return client;
}

/**
 * A failed client authentication: summarised in the audit log (one event per address and
 * window, not one row each: issue 9 §1.3) and counted against the address and the claimed
 * client id; past the limit the answer is 429 rather than 401.
 */
function refuseClient(deps: Deps, request: RequestInfo & { endpoint: string }, clientId: string | undefined, method: string): never {
  deps.junk.count({ type: 'client_auth.failed', actorType: 'anonymous', subjectType: 'client', ip: request.ip, data: { method, endpoint: request.endpoint } }, request.requestId);
  const wait = deps.guard.failed(request.ip, clientId);
  if (wait) throw new TooManyRequests(wait);
  throw new InvalidClient();
}

/** The client id a request claims, authenticated or not (for counting failures by id). */
export function claimedClientId(authorization: string | undefined, params: { get(name: string): unknown }): string | undefined {
  const basic = authorization ? parseBasic(authorization) : null;
  const id = basic?.clientId ?? params.get('client_id');
  return typeof id === 'string' && id ? id : undefined;
}

/**
 * The same decision without waiting, for a cached client that presents a matching secret;
 * undefined for anything else (cache miss, private_key_jwt, failure), which authenticateClient
 * then decides, and audits. `connection` is the request's socket: see verifiedOnConnection.
 */
export function authenticateCachedClient(deps: Deps, connection: object, authorization: string | undefined, params: Map<string, string>): ClientRecord | undefined {
  const remembered = authorization !== undefined && onlyBasic(params) ? rememberedBasic(deps, connection, authorization) : undefined;
  if (remembered) return params.has('client_id') && params.get('client_id') !== remembered.id ? undefined : remembered;
  const presented = presentedCredentials(authorization, params);
  if (presented.method === 'private_key_jwt') return undefined;
  const client = cachedClient(deps, presented.clientId);
  if (!client || client.status !== 'active' || client.authMethod !== presented.method) return undefined;
  const matched = clientSecretMatch(deps, client, presented.secret ?? '');
  if (!matched) return undefined;
  if (presented.method === 'client_secret_basic') {
    // While a previous secret is live, the memory lasts only until its grace ends.
    const graceEnds = client.previousSecretExpiresAt && client.previousSecretExpiresAt > deps.now() ? client.previousSecretExpiresAt : null;
    verifiedOnConnection.set(connection, { header: Buffer.from(authorization!, 'latin1'), client, graceEnds, previous: matched === 'previous' });
  }
  return client;
}

/**
 * A resource server sends the same Basic header on every request of a keep-alive connection,
 * so each connection remembers the one it last verified, and for which cached client record.
 * The memory holds while that exact record is still the cached one (any change to the client
 * replaces or drops it, on every node) and, after a rotation, only until the grace ends.
 * The header is compared in constant time, since a proxy may carry many callers on one
 * connection; it lives no longer than the connection that carried it.
 */
const verifiedOnConnection = new WeakMap<object, { header: Buffer; client: ClientRecord; graceEnds: Date | null; previous: boolean }>();

function rememberedBasic(deps: Deps, connection: object, authorization: string): ClientRecord | undefined {
  const memo = verifiedOnConnection.get(connection);
  if (!memo || cachedClient(deps, memo.client.id) !== memo.client || (memo.graceEnds && memo.graceEnds <= deps.now())) return undefined;
  const presented = Buffer.from(authorization, 'latin1');
  if (presented.length !== memo.header.length || !timingSafeEqual(presented, memo.header)) return undefined;
  // Still the previous secret: usage notes it, as clientSecretMatch would.
  if (memo.previous) deps.usage.previousSecretUsed(memo.client.id);
  return memo.client;
}

/** No credentials in the body: the Authorization header is the request's only method. */
const onlyBasic = (params: Map<string, string>) => !params.has('client_secret') && !params.has('client_assertion') && !params.has('client_assertion_type');

async function verify(deps: Deps, client: ClientRecord, presented: Presented, audience: string[], algorithms: string[]): Promise<boolean> {
  if (presented.method !== 'private_key_jwt') return clientSecretMatches(deps, client, presented.secret ?? '');
  let keys: JWTVerifyGetKey | undefined;
  if (client.jwks) keys = createLocalJWKSet(client.jwks as never);
  else if (client.jwksUri) {
    const cacheKey = `${client.id} ${client.jwksUri}`;
    keys = remoteKeySets.get(cacheKey);
    if (!keys) remoteKeySets.set(cacheKey, (keys = createRemoteJWKSet(new URL(client.jwksUri), { [customFetch]: jwksFetch(deps) as never })));
  }
  if (!keys) return false;
  const now = deps.now();
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(presented.assertion ?? '', keys, {
      algorithms,
      issuer: client.id,
      subject: client.id,
      audience,
      requiredClaims: ['exp', 'jti'],
      currentDate: now,
    }));
  } catch {
    return false;
  }
  if (!assertionLifetimeOk(payload.exp, now)) return false;
  // One use per assertion (RFC 7523 §3), shared with the token endpoint: the same record
  // oidc-provider keeps, inserted only once (the primary key refuses a replayed jti). Any
  // other database failure is a server error, not a failed authentication.
  try {
    await deps.prisma.oidcPayload.create({
      data: { model: 'ReplayDetection', id: replayId(client.id, payload.jti!), payload: { iss: client.id }, expiresAt: new Date(payload.exp! * 1000) },
    });
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'P2002') return false;
    throw error;
  }
}
