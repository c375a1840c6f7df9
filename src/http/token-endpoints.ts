import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestInfo } from '../actor.ts';
import type { Deps } from '../context.ts';
import { looksLikeApiKey } from '../credentials/api-key-format.ts';
import { introspect, introspectCachedApiKey, revokeToken, type Introspection } from '../credentials/introspection.ts';
import { InvalidRequest, LatchkeyError, TooManyRequests } from '../lib/errors.ts';
import { authenticateCachedClient, authenticateClient } from '../oauth/client-auth.ts';
import { CLIENT_ASSERTION_ALGS, INTROSPECTION_PATH, REVOCATION_PATH, type OAuthProvider } from '../oauth/provider.ts';
import { requestFinished, requestIdFor, securityHeaders } from './common.ts';
import { readForm } from './form-body.ts';
import type { Metrics } from './metrics.ts';
import { errorAnswer, NO_STORE } from './oauth-errors.ts';

export const TOKEN_ENDPOINT_PATHS = new Set([INTROSPECTION_PATH, REVOCATION_PATH]);

/**
 * Introspection (RFC 7662) and revocation (RFC 7009) for JWTs, opaque tokens and API keys.
 * Every API call of every resource server lands here, so these endpoints are served straight
 * from node:http rather than through a koa stack, and a cached client introspecting a cached
 * API key is answered without a single promise (under Node 20's async hooks each one costs).
 * They share request ids, headers, error answers, metrics and the access log with the koa
 * apps (http/common.ts).
 */
export function tokenEndpoints(deps: Deps, oauth: OAuthProvider, metrics: Metrics) {
  const issuer = deps.config.LATCHKEY_ISSUER;
  // Headers in Node's flat [name, value, …] form, built once: measurably cheaper per response
  // than an object (bench/introspection.ts).
  const noContentHeaders = Object.entries({ ...securityHeaders(issuer), ...NO_STORE }).flat();
  const jsonHeaders = [...noContentHeaders, 'Content-Type', 'application/json; charset=utf-8'];

  /** The full path: any client authentication, any kind of token, failures audited. */
  async function answer(req: IncomingMessage, path: string, params: Map<string, string>, request: RequestInfo): Promise<Introspection | null> {
    const audiences = [issuer, `${issuer}${path}`, `${issuer}/token`];
    const caller = await authenticateClient(deps, { ...request, authorization: req.headers.authorization, endpoint: path }, params, audiences, CLIENT_ASSERTION_ALGS);
    const token = requiredToken(params);
    if (path === INTROSPECTION_PATH) return introspect(deps, oauth.verifier, caller, token, request);
    await revokeToken(deps, oauth.verifier, caller, token, request);
    return null;
  }

  /**
   * The hot path: undefined whenever the full path has to decide. Only an API key can be
   * answered here, so nothing else is authenticated twice.
   */
  function answerFromCache(req: IncomingMessage, path: string, params: Map<string, string>, ip: string | undefined): Introspection | undefined {
    const token = params.get('token');
    if (path !== INTROSPECTION_PATH || !token || !looksLikeApiKey(token)) return undefined;
    const caller = authenticateCachedClient(deps, req.socket, req.headers.authorization, params);
    if (!caller) return undefined;
    const wait = deps.guard.admitClient(caller.id);
    if (wait) throw new TooManyRequests(wait);
    return introspectCachedApiKey(deps, caller, token, ip);
  }

  return (req: IncomingMessage, res: ServerResponse, path: string): void => {
    const started = process.hrtime.bigint();
    const requestId = requestIdFor(req);
    const send = (status: number, headers: string[], body: string) => {
      res.writeHead(status, [...headers, 'X-Request-Id', requestId, 'Content-Length', String(Buffer.byteLength(body))]);
      res.end(body);
      requestFinished(deps, metrics, { requestId, method: req.method ?? '', route: path === INTROSPECTION_PATH ? 'introspect' : 'revoke', status, started });
    };
    const introspected = (result: Introspection) => {
      metrics.introspected(result.active);
      send(200, jsonHeaders, JSON.stringify(result));
    };
    const fail = (thrown: unknown) => {
      const error = errorAnswer(thrown, req.headers.authorization, deps.log, requestId);
      if (res.headersSent) return void res.destroy();
      // Refused for its size: do not read the rest of it, close the connection instead.
      if (error.status === 413) error.headers.Connection = 'close';
      // A body refused before it was read must not be left in the connection.
      if (error.status === 413) res.once('finish', () => req.socket.destroy());
      else req.resume();
      const extra = Object.entries(error.headers).filter(([name]) => !(name in NO_STORE));
      send(error.status, [...jsonHeaders, ...extra.flat()], JSON.stringify(error.body));
    };

    // Self-protection first: a flooding or failing peer costs a map lookup, not a body read.
    const ip = clientIp(req, deps.config.LATCHKEY_TRUST_PROXY);
    const wait = deps.guard.admitPeer(ip);
    if (wait) {
      deps.junk.count({ type: 'request.throttled', actorType: 'anonymous', ip, data: { endpoint: path } }, requestId);
      return fail(new TooManyRequests(wait));
    }
    // RFC 7662 §2.1: POST with a form body; GET would put tokens in URLs and logs.
    if (req.method !== 'POST') return fail(new LatchkeyError('method_not_allowed', 'use POST'));
    readForm(req, (error, params) => {
      if (error) return fail(error);
      try {
        const cached = answerFromCache(req, path, params!, ip);
        if (cached) return introspected(cached);
      } catch (thrown) {
        return fail(thrown);
      }
      answer(req, path, params!, { requestId, ip })
        .then((result) => (result === null ? send(200, noContentHeaders, '') : introspected(result)))
        .catch(fail);
    });
  };
}

// token_type_hint is not read: the token's own shape tells its kind, so a wrong or unknown
// hint can neither hide a token nor cause an error (RFC 7662 §2.1, RFC 7009 §2.1).
function requiredToken(params: Map<string, string>): string {
  const token = params.get('token');
  if (!token) throw new InvalidRequest('missing required parameter token');
  return token;
}

/**
 * The peer address; behind a trusted proxy (DESIGN §4), the address that proxy appended to
 * X-Forwarded-For: the rightmost, since anything left of it is whatever the client sent.
 */
export function clientIp(req: IncomingMessage, trustProxy: boolean): string | undefined {
  const forwarded = trustProxy ? req.headers['x-forwarded-for'] : undefined;
  if (typeof forwarded === 'string' && forwarded) return forwarded.split(',').at(-1)!.trim();
  return req.socket.remoteAddress;
}
