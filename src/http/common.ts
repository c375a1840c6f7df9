import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Deps } from '../context.ts';
import type { Metrics } from './metrics.ts';
import { runWithRequestContext } from './request-context.ts';

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

/**
 * What every response gets, from Latchkey's own koa app and from oidc-provider's alike:
 * a request id (also in the audit trail), an access log line without query strings,
 * metrics, and security headers.
 */
export function commonMiddleware(deps: Deps, metrics: Metrics) {
  const hsts = deps.config.LATCHKEY_ISSUER.startsWith('https://');
  return async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    const path = ctx.path;
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    if (hsts) ctx.set('Strict-Transport-Security', 'max-age=31536000');
    try {
      await runWithRequestContext({ requestId, ip: ctx.ip }, next);
    } finally {
      const route = ROUTES.get(path) ?? 'other';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.requests.inc({ route, status: ctx.status });
      metrics.duration.observe({ route }, seconds);
      if (deps.log.isLevelEnabled('info')) {
        // The path only: a query string may carry a secret.
        deps.log.info({ requestId, method: ctx.method, path: route === 'other' ? undefined : path, route, status: ctx.status, ms: Math.round(seconds * 1e4) / 10 }, 'request');
      }
    }
  };
}
