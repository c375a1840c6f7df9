import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context, Next } from 'koa';
import type { Deps } from '../context.ts';
import type { Metrics } from './metrics.ts';

// Low-cardinality route labels for logs and metrics; anything else is "other".
const ROUTES = new Map([
  ['/token', 'token'],
  ['/introspect', 'introspect'],
  ['/revoke', 'revoke'],
  ['/jwks', 'jwks'],
  ['/.well-known/openid-configuration', 'discovery'],
  ['/.well-known/oauth-authorization-server', 'discovery'],
  ['/healthz', 'healthz'],
  ['/readyz', 'readyz'],
  ['/metrics', 'metrics'],
]);

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

export function securityHeaders(issuer: string): Record<string, string> {
  return {
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
    ...(issuer.startsWith('https://') ? { 'Strict-Transport-Security': 'max-age=31536000' } : {}),
  };
}

/** The caller's id for this request: theirs when it is harmless, else a new one. */
export function requestIdFor(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** Metrics and the access log line, for both the koa apps and the raw hot paths. */
export function requestFinished(deps: Deps, metrics: Metrics, details: { requestId: string; method: string; path: string; status: number; started: bigint }): void {
  const route = ROUTES.get(details.path) ?? 'other';
  const seconds = Number(process.hrtime.bigint() - details.started) / 1e9;
  metrics.observe(route, details.status, seconds);
  if (deps.log.isLevelEnabled('info')) {
    // The path only: a query string may carry a secret.
    const { requestId, method, path, status } = details;
    deps.log.info({ requestId, method, path: route === 'other' ? undefined : path, route, status, ms: Math.round(seconds * 1e4) / 10 }, 'request');
  }
}

/**
 * What every koa response gets, from Latchkey's own app and from oidc-provider's alike:
 * a request id (also in the audit trail), security headers, metrics and an access log line.
 */
export function commonMiddleware(deps: Deps, metrics: Metrics) {
  const headers = securityHeaders(deps.config.LATCHKEY_ISSUER);
  return async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    const path = ctx.path;
    const requestId = requestIdFor(ctx.req);
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    ctx.set(headers);
    try {
      await next();
    } finally {
      requestFinished(deps, metrics, { requestId, method: ctx.method, path, status: ctx.status, started });
    }
  };
}
