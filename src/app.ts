import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import Koa, { type Context, type Next } from 'koa';
import type { Deps } from './context.ts';
import { runWithRequestContext } from './http/request-context.ts';
import type { Metrics } from './http/metrics.ts';
import { oauthErrors } from './http/oauth-errors.ts';
import { tokenRoutes } from './http/token-routes.ts';
import type { OAuthProvider } from './oauth/provider.ts';

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

export function createApp(deps: Deps, oauth: OAuthProvider, metrics: Metrics): Koa {
  const app = new Koa();
  app.proxy = deps.config.LATCHKEY_TRUST_PROXY;
  app.silent = true;

  app.use(async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    const path = ctx.path;
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    try {
      await runWithRequestContext({ requestId, ip: ctx.ip }, next);
    } finally {
      const route = ROUTES.get(path) ?? 'other';
      const status = ctx.respond === false ? ctx.res.statusCode : ctx.status;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.requests.inc({ route, status });
      metrics.duration.observe({ route }, seconds);
      // The path only: a query string may carry a secret.
      deps.log.info({ requestId, method: ctx.method, path: route === 'other' ? undefined : path, route, status, ms: Math.round(seconds * 1e4) / 10 }, 'request');
    }
  });

  app.use(async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    if (deps.config.LATCHKEY_ISSUER.startsWith('https://')) ctx.set('Strict-Transport-Security', 'max-age=31536000');
    await next();
  });

  const router = new Router();
  router.use(oauthErrors(deps.log));
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    try {
      await deps.prisma.$queryRaw`SELECT 1`;
      ctx.body = { status: 'ok', database: 'ok' };
    } catch (error) {
      deps.log.warn({ err: error }, 'readiness check failed');
      ctx.status = 503;
      ctx.body = { status: 'unavailable', database: 'unreachable' };
    }
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  app.use(tokenRoutes(deps, oauth).routes());

  const callback = oauth.provider.callback();
  app.use(async (ctx) => {
    // RFC 8414 metadata: the same document oidc-provider serves as OpenID discovery.
    if (ctx.path === '/.well-known/oauth-authorization-server') ctx.req.url = '/.well-known/openid-configuration';
    // RFC 6749 §5.1 asks for both; oidc-provider sets only Cache-Control.
    if (ctx.path === '/token') ctx.set('Pragma', 'no-cache');
    if (ctx.method === 'POST' && ctx.path === '/token' && ctx.querystring) {
      // A secret in a URL ends up in logs and histories: refuse it (RFC 9700 §4.1).
      ctx.status = 400;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'invalid_request', error_description: 'parameters must be sent in the request body, not the query string' };
      return;
    }
    ctx.respond = false;
    await callback(ctx.req, ctx.res);
  });
  return app;
}
