import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Deps } from '../context.ts';
import type { ClientRecord } from '../credentials/clients.ts';
import { verifyKeyFor, verifyKeyInput, type KeyVerification } from '../credentials/key-verification.ts';
import { requestFinished, requestIdFor, securityHeaders } from '../http/common.ts';
import { MAX_BODY, readBody } from '../http/form-body.ts';
import type { Metrics } from '../http/metrics.ts';
import { NO_STORE } from '../http/oauth-errors.ts';
import { clientIp } from '../http/token-endpoints.ts';
import { InvalidRequest, LatchkeyError, PayloadTooLarge, TooManyRequests, UnsupportedMediaType } from '../lib/errors.ts';
import { authenticateCachedClient, authenticateClient } from '../oauth/client-auth.ts';
import { CLIENT_ASSERTION_ALGS } from '../oauth/provider.ts';
import { PROBLEM_TYPE, problemAnswer } from './problem.ts';

export const VERIFY_PATH = '/v1/keys/verify';

/** Client authentication may travel in the JSON body as it would in a form (client_secret_post, private_key_jwt). */
const CLIENT_AUTH_FIELDS = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'] as const;

/**
 * POST /v1/keys/verify (DESIGN §2 Key verification, contract): for gateways, on every API call
 * they pass, so served from node:http like /introspect (http/token-endpoints.ts), and a cached
 * client verifying a cached key under memory counters is answered without a promise. The
 * caller authenticates as a client, as at /introspect; errors are RFC 9457 problem details.
 */
export function keyVerificationEndpoint(deps: Deps, metrics: Metrics) {
  const issuer = deps.config.LATCHKEY_ISSUER;
  const base = Object.entries({ ...securityHeaders(issuer), ...NO_STORE }).flat();
  const jsonHeaders = [...base, 'Content-Type', 'application/json; charset=utf-8'];
  const problemHeaders = [...base, 'Content-Type', `${PROBLEM_TYPE}; charset=utf-8`];

  return (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const requestId = requestIdFor(req);
    const send = (status: number, headers: string[], body: string) => {
      res.writeHead(status, [...headers, 'X-Request-Id', requestId, 'Content-Length', String(Buffer.byteLength(body))]);
      res.end(body);
      requestFinished(deps, metrics, { requestId, method: req.method ?? '', route: 'keys_verify', status, started });
    };
    const answer = (verification: KeyVerification) => {
      metrics.verified(verification.code);
      send(200, jsonHeaders, JSON.stringify(verification));
    };
    const fail = (thrown: unknown) => {
      const problem = problemAnswer(thrown, deps.log, requestId);
      if (res.headersSent) return void res.destroy();
      if (problem.status === 413) {
        // Refused for its size: close rather than read the rest.
        problem.headers.Connection = 'close';
        res.once('finish', () => req.socket.destroy());
      } else req.resume();
      send(problem.status, [...problemHeaders, ...Object.entries(problem.headers).flat()], JSON.stringify(problem.body));
    };

    // Self-protection first, as at /introspect: a flooding or failing peer costs a map lookup.
    const ip = clientIp(req, deps.config.LATCHKEY_TRUST_PROXY);
    const wait = deps.guard.admitPeer(ip);
    if (wait) {
      deps.junk.count({ type: 'request.throttled', actorType: 'anonymous', ip, data: { endpoint: VERIFY_PATH } }, requestId);
      return fail(new TooManyRequests(wait));
    }
    if (req.method !== 'POST') return fail(new LatchkeyError('method_not_allowed', 'use POST'));
    try {
      checkJsonRequest(req);
    } catch (error) {
      return fail(error);
    }
    readBody(req, (error, text) => {
      if (error) return fail(error);
      let body: Record<string, unknown>;
      let params: Map<string, string>;
      try {
        body = parseJsonObject(text!);
        params = clientAuthParams(body);
        const cached = authenticateCachedClient(deps, req.socket, req.headers.authorization, params);
        if (cached) {
          // authenticateClient counts the full path's callers; a cached one is counted here.
          const wait = deps.guard.admitClient(cached.id);
          if (wait) throw new TooManyRequests(wait);
          return decide(cached, body);
        }
      } catch (thrown) {
        return fail(thrown);
      }
      const request = { requestId, ip, authorization: req.headers.authorization, endpoint: VERIFY_PATH };
      authenticateClient(deps, request, params, [issuer, `${issuer}${VERIFY_PATH}`, `${issuer}/token`], CLIENT_ASSERTION_ALGS)
        .then((caller) => decide(caller, body))
        .catch(fail);
    });

    function decide(caller: ClientRecord, body: Record<string, unknown>): void {
      // Validated only once the caller is known: an anonymous caller learns nothing but 401.
      const input = verifyKeyInput.parse(body);
      const verification = verifyKeyFor(deps, caller, input, ip);
      if (verification instanceof Promise) verification.then(answer, fail);
      else answer(verification);
    }
  };
}

function checkJsonRequest(req: IncomingMessage): void {
  if (req.url?.includes('?')) throw new InvalidRequest('parameters must be sent in the request body, not the query string');
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json' && !/^application\/[\w.+-]+\+json$/.test(type)) throw new UnsupportedMediaType('application/json');
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) throw new PayloadTooLarge();
}

function parseJsonObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidRequest('the request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidRequest('the request body must be a JSON object');
  return value as Record<string, unknown>;
}

function clientAuthParams(body: Record<string, unknown>): Map<string, string> {
  const params = new Map<string, string>();
  for (const field of CLIENT_AUTH_FIELDS) {
    const value = body[field];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new InvalidRequest(`${field} must be a string`);
    params.set(field, value);
  }
  return params;
}
