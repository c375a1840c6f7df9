import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Deps } from '../context.ts';
import { introspect, revokeToken } from '../credentials/introspection.ts';
import { InvalidRequest, LatchkeyError } from '../lib/errors.ts';
import { authenticateClient } from '../oauth/client-auth.ts';
import { CLIENT_ASSERTION_ALGS, INTROSPECTION_PATH, REVOCATION_PATH, type OAuthProvider } from '../oauth/provider.ts';
import { requestFinished, requestIdFor, securityHeaders } from './common.ts';
import { readForm } from './form-body.ts';
import type { Metrics } from './metrics.ts';
import { errorAnswer, NO_STORE } from './oauth-errors.ts';
import { runWithRequestContext } from './request-context.ts';

/**
 * Introspection (RFC 7662) and revocation (RFC 7009) for JWTs, opaque tokens and API keys.
 * Every API call of every resource server lands here, so these two endpoints are served
 * straight from node:http rather than through a koa stack; they share the request id,
 * headers, error rendering, metrics and access log with the koa apps (http/common.ts).
 */
export function tokenEndpoints(deps: Deps, oauth: OAuthProvider, metrics: Metrics) {
  const issuer = deps.config.LATCHKEY_ISSUER;
  const baseHeaders = { ...securityHeaders(issuer), ...NO_STORE, 'Content-Type': 'application/json; charset=utf-8' };
  const audiences = (path: string) => [issuer, `${issuer}${path}`, `${issuer}/token`];

  async function answer(req: IncomingMessage, path: string): Promise<object | null> {
    // RFC 7662 §2.1: POST with a form body; GET would put tokens in URLs and logs.
    if (req.method !== 'POST') throw new LatchkeyError('method_not_allowed', 'use POST');
    const params = await readForm(req);
    const caller = await authenticateClient(deps, { authorization: req.headers.authorization, endpoint: path }, params, audiences(path), CLIENT_ASSERTION_ALGS);
    const token = params.get('token');
    if (!token) throw new InvalidRequest('missing required parameter token');
    // token_type_hint is not read: the token's own shape tells its kind, so a wrong or unknown
    // hint can neither hide a token nor cause an error (RFC 7662 §2.1, RFC 7009 §2.1).
    if (path === INTROSPECTION_PATH) return introspect(deps, oauth.verifier, caller, token);
    await revokeToken(deps, oauth.verifier, caller, token);
    return null;
  }

  return async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const started = process.hrtime.bigint();
    const requestId = requestIdFor(req);
    const ip = clientIp(req, deps.config.LATCHKEY_TRUST_PROXY);
    let status = 200;
    let headers: Record<string, string> = baseHeaders;
    let body: string;
    try {
      const result = await runWithRequestContext({ requestId, ip }, () => answer(req, path));
      body = result === null ? '' : JSON.stringify(result);
    } catch (thrown) {
      const error = errorAnswer(thrown, req.headers.authorization, deps.log, requestId);
      status = error.status;
      headers = { ...baseHeaders, ...error.headers };
      body = JSON.stringify(error.body);
      // An unread body (refused early) must not be left in the connection.
      req.resume();
    }
    res.writeHead(status, { ...headers, 'X-Request-Id': requestId, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    requestFinished(deps, metrics, { requestId, method: req.method ?? '', path, status, started });
  };
}

export const TOKEN_ENDPOINT_PATHS = new Set([INTROSPECTION_PATH, REVOCATION_PATH]);

/** The peer address; X-Forwarded-For only when a trusted proxy sets it (DESIGN §4). */
function clientIp(req: IncomingMessage, trustProxy: boolean): string | undefined {
  const forwarded = trustProxy ? req.headers['x-forwarded-for'] : undefined;
  if (typeof forwarded === 'string' && forwarded) return forwarded.split(',')[0]!.trim();
  return req.socket.remoteAddress;
}
