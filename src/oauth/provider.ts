import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeJwt } from 'jose';
import type { Middleware } from 'koa';
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Deps } from '../context.ts';
import { AUTH_METHODS, clientSecretMatches, findClient } from '../credentials/clients.ts';
import { respondWithError } from '../http/oauth-errors.ts';
import { InvalidClient, InvalidRequest, isDatabaseUnavailable, LatchkeyError, PayloadTooLarge, TooManyRequests } from '../lib/errors.ts';
import { assertionLifetimeOk, claimedClientId } from './client-auth.ts';
import { jwksFetch } from './jwks-uri.ts';
import { createTokenVerifier, type TokenVerifier } from '../credentials/token-verifier.ts';
import { tokenRequestRetryAfter } from '../limits/token-limits.ts';
import { publicPart, type SigningKeySet } from '../signing/signing-keys.ts';
import { ClientAdapter, PrismaAdapter } from './adapter.ts';

export const INTROSPECTION_PATH = '/introspect';
/** The only paths oidc-provider is reached by (app.ts): the token endpoint, JWKS and discovery. */
export const PROTOCOL_PATHS = new Set(['/token', '/jwks', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']);
export const REVOCATION_PATH = '/revoke';
// Asymmetric only: clients have no usable shared secret (we keep digests), so no HS* assertions.
export const CLIENT_ASSERTION_ALGS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'PS256', 'RS256'];

export interface OAuthProvider {
  /** The oidc-provider instance serving now; replaced as a whole when the signing keys change. */
  readonly provider: Provider;
  /** The scope catalog, listed in discovery as scopes_supported; kept current by the server. */
  scopes: Set<string>;
  /** Verifies JWTs against the published keys of the instance serving now. */
  readonly verifier: TokenVerifier;
  /** Serves a request with the instance serving now. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Switches to a new key set: later requests see it, requests under way finish on the old one. */
  useKeys(keys: SigningKeySet): void;
}

interface Instance {
  provider: Provider;
  verifier: TokenVerifier;
  callback: (req: IncomingMessage, res: ServerResponse) => void;
}

/**
 * oidc-provider reads its keys once, at construction (lib/helpers/initialize_keystore.js keeps
 * them private, with no public way to change them), so a new key set means a new instance:
 * built beside the serving one, then swapped in by one assignment. Nothing on the request
 * path changes (one property read), and nothing a request needs lives in the instance — the
 * adapter stores everything in the database. Building one takes about a millisecond, once per
 * key change. (Its `ExternalSigningKey` could delegate signing instead, but it is an
 * experimental feature, and the keys JWKS lists would still be fixed at construction.)
 * `outer` runs around all of oidc-provider's own middleware (request id, headers, logging).
 */
export function createOAuthProvider(deps: Deps, keys: SigningKeySet, scopeNames: string[], outer: Middleware): OAuthProvider {
  const scopes = new Set(scopeNames);
  let serving = buildInstance(deps, keys, scopes, outer);
  return {
    get provider() {
      return serving.provider;
    },
    get verifier() {
      return serving.verifier;
    },
    scopes,
    handle: (req, res) => serving.callback(req, res),
    useKeys(next) {
      serving = buildInstance(deps, next, scopes, outer);
    },
  };
}

function buildInstance(deps: Deps, keys: SigningKeySet, scopes: Set<string>, outer: Middleware): Instance {
  const { config } = deps;
  const issuer = config.LATCHKEY_ISSUER;
  const accessTokenTTL = Math.floor(config.LATCHKEY_ACCESS_TOKEN_TTL / 1000);
  const clientAdapter = new ClientAdapter(deps);
  const signingAlg = keys.current.alg as 'ES256';
  // The keystore holds every published key (so /jwks lists them all) but only the current one
  // signs: tokens name it by kid (getResourceServerInfo), never leaving the choice to the order.
  const signWith = { alg: signingAlg, kid: keys.current.kid };
  // Token requests refused by the per-client limit (getResourceServerInfo runs after client
  // authentication and before a token is signed); answered 429 by the middleware below.
  const overLimit = new WeakMap<object, TooManyRequests>();

  const configuration: Configuration = {
    adapter: (name: string) => (name === 'Client' ? clientAdapter : new PrismaAdapter(deps, name)) as never,
    clients: [],
    jwks: { keys: keys.published } as Configuration['jwks'],
    clientAuthMethods: [...AUTH_METHODS],
    // Only client_credentials is offered: no response types (no implicit, no authorization_code),
    // and no offline_access scope (which would enable refresh_token). Discovery then lists
    // grant_types_supported ["client_credentials"] and response_types_supported [].
    responseTypes: [],
    scopes: [],
    enabledJWA: { clientAuthSigningAlgValues: CLIENT_ASSERTION_ALGS as never },
    // The same 10-minute cap as at /introspect (client-auth.ts); checked before oidc-provider
    // keeps its replay record until exp, so an absurd exp is invalid_client, never a 500.
    async assertJwtClientAuthClaimsAndHeader(_ctx, claims) {
      if (!assertionLifetimeOk(claims.exp, deps.now())) throw new errors.InvalidClientAuth('client_assertion exp is too far in the future');
    },
    // jwks_uri fetches refuse private targets and back off after failures (oauth/jwks-uri.ts).
    fetch: jwksFetch(deps) as never,
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      // oidc-provider signs JWT access tokens with this default algorithm.
      id_token_signed_response_alg: signingAlg,
    },
    cookies: { keys: deps.keyring.cookieKeys },
    ttl: { ClientCredentials: accessTokenTTL, AccessToken: accessTokenTTL },
    features: {
      devInteractions: { enabled: false },
      // Not offered until sign-in exists; enabled they would accept anonymous writes (sessions).
      rpInitiatedLogout: { enabled: false },
      userinfo: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      // Not honoured end to end (introspection and resource servers would have to check the
      // proof and cnf.jkt), so not offered: discovery lists only what works.
      dPoP: { enabled: false },
      clientCredentials: { enabled: true },
      // Latchkey answers these itself: oidc-provider cannot introspect or revoke JWTs or API keys.
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // RFC 8707: without a `resource`, the token is for the client's first audience.
        async defaultResource(ctx) {
          const client = ctx.oidc.client && (await findClient(deps, ctx.oidc.client.clientId));
          return client?.audiences[0] ?? config.LATCHKEY_DEFAULT_AUDIENCE;
        },
        useGrantedResource: () => true,
        // Every token request resolves a resource before its scopes, which makes this the one
        // place to apply Latchkey's scope rule with the catalog as it is now (oidc-provider's
        // own scope list is fixed at start and silently drops scopes it does not know).
        async getResourceServerInfo(ctx, resourceIndicator) {
          const client = ctx.oidc.client && (await findClient(deps, ctx.oidc.client.clientId));
          const wait = client ? deps.guard.admitClient(client.id) : 0;
          if (wait) {
            overLimit.set(ctx, new TooManyRequests(wait));
            throw new errors.InvalidRequest('too many requests');
          }
          if (!client?.audiences.includes(resourceIndicator)) {
            throw new errors.InvalidTarget('the client may not request tokens for this resource');
          }
          const params = ctx.oidc.params as { scope?: string };
          if (params.scope === undefined || params.scope === '') {
            // RFC 6749 §3.3: no scope asked for means the client's pre-defined default, all of them.
            params.scope = client.scopes.join(' ');
          } else {
            // RFC 6749 §5.2: unknown, or beyond what the client was granted, is invalid_scope.
            const refused = params.scope.split(' ').filter((scope) => !client.scopes.includes(scope));
            if (refused.length > 0) throw new errors.InvalidScope('requested scope is not allowed', refused.join(' '));
          }
          // A valid request from an authenticated client, about to be issued: its plan's turn.
          const retryAfter = await tokenRequestRetryAfter(deps, ctx, client);
          if (retryAfter !== null) {
            overLimit.set(ctx, new TooManyRequests(retryAfter, "the application's plan allows no more token requests now; retry after Retry-After seconds"));
            throw new errors.InvalidRequest('too many requests');
          }
          return {
            scope: client.scopes.join(' '),
            audience: resourceIndicator,
            accessTokenTTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: signWith },
          };
        },
      },
    },
    discovery: {
      introspection_endpoint: `${issuer}${INTROSPECTION_PATH}`,
      introspection_endpoint_auth_methods_supported: AUTH_METHODS,
      introspection_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGS,
      revocation_endpoint: `${issuer}${REVOCATION_PATH}`,
      revocation_endpoint_auth_methods_supported: AUTH_METHODS,
      revocation_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGS,
    },
    async findAccount() {
      return undefined;
    },
  };

  const provider = new Provider(issuer, configuration);
  provider.proxy = config.LATCHKEY_TRUST_PROXY;
  // Behind one trusted proxy, the client is the address it appended (the rightmost).
  provider.maxIpsCount = 1;
  pinOrigin(provider, issuer);
  reuseClientInstances(provider, deps);

  // Secrets are stored as keyed digests: compare digests in constant time, with the previous
  // secret accepted inside its rotation grace window. oidc-provider lets basic and post stand
  // in for each other; a client authenticates only the way it registered, as it must at
  // Latchkey's own endpoints.
  provider.Client.prototype.compareClientSecret = async function compareClientSecret(this: { clientId: string }, actual: string) {
    const client = await findClient(deps, this.clientId);
    // The rule oidc-provider itself follows (shared/client_auth.js): a secret in the body wins.
    const presented = Provider.ctx?.oidc.params?.client_secret ? 'client_secret_post' : 'client_secret_basic';
    return client !== null && client.authMethod === presented && clientSecretMatches(deps, client, actual);
  };

  // provider.use adds middleware in call order, just before oidc-provider's router.
  provider.use(outer as never);
  provider.use(async (ctx, next) => {
    // RFC 8414 metadata: the same document oidc-provider serves as OpenID discovery.
    if (ctx.path === '/.well-known/oauth-authorization-server') ctx.path = '/.well-known/openid-configuration';
    if (ctx.path === '/token') {
      // RFC 6749 §5.1 asks for both; oidc-provider sets only Cache-Control.
      ctx.set('Pragma', 'no-cache');
      // Self-protection before anything is read (limits/endpoint-guard.ts).
      const wait = deps.guard.admitPeer(ctx.ip);
      if (wait) {
        deps.junk.count({ type: 'request.throttled', actorType: 'anonymous', ip: ctx.ip, data: { endpoint: '/token' } }, ctx.state.requestId);
        return respondWithError(ctx, new TooManyRequests(wait), deps.log);
      }
      // RFC 6749 §3.2: the token endpoint takes POST only; answered like /introspect's 405.
      if (ctx.method !== 'POST' && ctx.method !== 'OPTIONS') return respondWithError(ctx, new LatchkeyError('method_not_allowed', 'use POST'), deps.log);
      // A secret in a URL ends up in logs and histories: refuse it (RFC 9700 §4.1).
      if (ctx.method === 'POST' && ctx.querystring) return respondWithError(ctx, new InvalidRequest('parameters must be sent in the request body, not the query string'), deps.log);
    }
    // oidc-provider refuses such a body too, but as a 400 and only after reading it (a chunked
    // body, which announces no length, still gets that 400).
    if ((ctx.request.length ?? 0) > MAX_PROVIDER_BODY) {
      ctx.set('Connection', 'close');
      return respondWithError(ctx, new PayloadTooLarge(), deps.log);
    }
    await next();
  });
  // oidc-provider renders its errors itself; the error object reaches us only through the
  // route's event, emitted before the response leaves (lib/shared/error_handler.js).
  const routeErrors = new WeakMap<object, unknown>();
  provider.on('grant.error', (ctx, error) => routeErrors.set(ctx, error));
  provider.on('server_error', (ctx, error) => {
    routeErrors.set(ctx, error);
    // The database out of reach is answered 503 below, and logged once per outage there.
    if (!isDatabaseUnavailable(error)) deps.log.error({ err: error, requestId: ctx.state.requestId }, 'oidc-provider server_error');
  });
  provider.use(async (ctx, next) => {
    await next();
    const oidcCtx = ctx as KoaContextWithOIDC;
    const route = oidcCtx.oidc?.route;
    // An adapter (or anything behind it) that could not reach the database made oidc-provider
    // answer 500 server_error: it is a 503 with Retry-After (DESIGN §2 HTTP), on every route.
    if (ctx.status === 500 && isDatabaseUnavailable(routeErrors.get(ctx))) return respondWithError(ctx, routeErrors.get(ctx), deps.log);
    if (route === 'token' && ctx.status === 200) await auditIssuedOrWithhold(deps, oidcCtx);
    else if (route === 'token') {
      const refusal = overLimit.get(ctx);
      if (refusal) return respondWithError(ctx, refusal, deps.log);
      if (isNoClientAuthentication(oidcCtx, routeErrors.get(ctx))) respondWithError(ctx, new InvalidClient('no client authentication provided'), deps.log);
      auditTokenFailure(deps, oidcCtx);
      if ((ctx.body as { error?: string } | undefined)?.error === 'invalid_client') {
        const refused = deps.guard.failed(ctx.ip, claimedClientId(ctx.get('authorization') || undefined, new Map(Object.entries(oidcCtx.oidc.params ?? {}))));
        if (refused) {
          // A 429 is not a challenge: oidc-provider's Basic challenge does not carry over.
          ctx.remove('WWW-Authenticate');
          respondWithError(ctx, new TooManyRequests(refused), deps.log);
        }
      }
    } else if (route === 'discovery' && ctx.status === 200) {
      const body = ctx.body as Record<string, unknown>;
      body.scopes_supported = [...scopes].sort();
      // oidc-provider always registers and lists an authorization endpoint; Latchkey offers no
      // flow through it (app.ts answers its path 404), so neither it nor its parameters are listed.
      for (const field of AUTHORIZATION_ENDPOINT_FIELDS) delete body[field];
    }
  });

  const verifier = createTokenVerifier(deps, { keys: keys.published.map(publicPart) }, provider);
  return { provider, verifier, callback: provider.callback() };
}

/**
 * oidc-provider builds every URL it states (discovery's endpoints) and accepts (a client
 * assertion's `aud`) from the request's href (helpers/oidc_context.js urlFor), that is from
 * `Host`, or X-Forwarded-Host/-Proto behind a proxy, or an absolute request target. Every
 * request is answered as the issuer's instead: its origin comes from LATCHKEY_ISSUER alone.
 * Set on this koa app's request prototype, so it holds for oidc-provider only and costs nothing
 * per request.
 */
function pinOrigin(provider: Provider, issuer: string): void {
  const { host, hostname, protocol, origin } = new URL(issuer);
  const scheme = protocol.slice(0, -1);
  Object.defineProperties(provider.request, {
    host: { get: () => host, configurable: true },
    hostname: { get: () => hostname, configurable: true },
    protocol: { get: () => scheme, configurable: true },
    href: {
      get(this: { path: string; search: string }) {
        return `${origin}${this.path}${this.search}`;
      },
      configurable: true,
    },
  });
}

/**
 * oidc-provider's Client.find asks the adapter on every request and hashes the JSON of the
 * metadata it gets back to find its cached instance (models/client.js). Latchkey's client
 * record is itself cached, and replaced (a new object) whenever the client changes on any
 * node, so the instance built for a record object is reused for as long as that object is
 * current: the same answer, without a serialisation and a SHA-256 per token request.
 */
function reuseClientInstances(provider: Provider, deps: Deps): void {
  type Client = Awaited<ReturnType<Provider['Client']['find']>>;
  const Clients = provider.Client as unknown as { find(id: string): Promise<Client> };
  const find = Clients.find.bind(Clients);
  const instances = new WeakMap<object, Client>();
  Clients.find = async (id: string) => {
    const record = typeof id === 'string' ? await findClient(deps, id) : null;
    if (!record) return find(id);
    let client = instances.get(record);
    if (client === undefined) {
      client = await find(id);
      if (client) instances.set(record, client);
    }
    return client;
  };
}

/** Discovery fields that describe only the authorization endpoint, which Latchkey does not offer. */
const AUTHORIZATION_ENDPOINT_FIELDS = [
  'authorization_endpoint',
  'response_modes_supported',
  'code_challenge_methods_supported',
  'authorization_response_iss_parameter_supported',
  'claims_parameter_supported',
  'request_uri_parameter_supported',
];

/** oidc-provider's own limit for request bodies (lib/shared/selective_body.js). */
const MAX_PROVIDER_BODY = 56 * 1024;

/**
 * RFC 6749 §5.2 files "no client authentication included" under invalid_client (401);
 * oidc-provider answers invalid_request. Told apart by structure, not wording: an
 * InvalidRequest once the parameters were read (so not a malformed body) from a request that
 * carries none of the things oidc-provider authenticates a client by (shared/client_auth.js),
 * where that is the only InvalidRequest its client authentication raises.
 */
function isNoClientAuthentication(ctx: KoaContextWithOIDC, error: unknown): boolean {
  if (!(error instanceof errors.InvalidRequest) || ctx.oidc.client !== undefined) return false;
  const params = ctx.oidc.params as Record<string, unknown> | undefined;
  return (
    params !== undefined &&
    !params.client_id &&
    !params.client_secret &&
    params.client_assertion === undefined &&
    ctx.headers.authorization === undefined &&
    ctx.headers['oauth-client-attestation'] === undefined
  );
}

/** Runs before the response leaves: no audit event committed, no token (DESIGN §4). */
async function auditIssuedOrWithhold(deps: Deps, ctx: KoaContextWithOIDC): Promise<void> {
  try {
    await auditTokenIssued(deps, ctx);
    deps.metrics?.tokenIssued();
    if (ctx.oidc.client) deps.usage.record('client', ctx.oidc.client.clientId, true, ctx.ip);
  } catch (error) {
    // The database out of reach: a 503 to retry (logged once per outage by the mapping).
    if (isDatabaseUnavailable(error)) return respondWithError(ctx, error, deps.log);
    deps.log.error({ err: error, requestId: ctx.state.requestId }, 'could not audit an issued token; withholding it');
    respondWithError(ctx, new LatchkeyError('server_error', 'the token could not be issued'), deps.log);
  }
}

async function auditTokenIssued(deps: Deps, ctx: KoaContextWithOIDC): Promise<void> {
  const requestId: string | undefined = ctx.state.requestId;
  const ip = ctx.ip;
  const token = ctx.oidc.entities.ClientCredentials;
  // A JWT access token's exp is computed while signing and never stored on the entity.
  const accessToken = (ctx.body as { access_token?: string } | undefined)?.access_token;
  const exp = token?.exp ?? (accessToken ? decodeJwt(accessToken).exp : undefined) ?? null;
  await deps.audit.record({
    type: 'token.issued',
    actorType: 'client',
    actorId: ctx.oidc.client?.clientId ?? null,
    subjectType: 'access_token',
    subjectId: token?.jti ?? null,
    requestId,
    ip,
    data: { grantType: ctx.oidc.params?.grant_type, scope: token?.scope ?? null, aud: token?.resourceServer?.audience ?? null, exp },
  });
}

/**
 * A refused token request: summarised in the audit log, one event per address, client and
 * error code per window (audit/summariser.ts), so that junk cannot flood it.
 */
function auditTokenFailure(deps: Deps, ctx: KoaContextWithOIDC): void {
  const clientId = ctx.oidc.client?.clientId ?? null;
  const code = (ctx.body as { error?: string } | undefined)?.error ?? 'server_error';
  deps.junk.count({ type: 'token.failed', actorType: clientId ? 'client' : 'anonymous', actorId: clientId, ip: ctx.ip, data: { error: code } }, ctx.state.requestId);
}
