import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import { keyVerificationEndpoint, VERIFY_PATH } from './api/verify.ts';
import type { Deps } from './context.ts';
import type { Metrics } from './http/metrics.ts';
import { oauthErrors, respondWithError } from './http/oauth-errors.ts';
import { isDatabaseUnavailable, NotFound } from './lib/errors.ts';
import { databaseReachable, databaseUnreachable } from './lib/failure-log.ts';
import { TOKEN_ENDPOINT_PATHS, tokenEndpoints } from './http/token-endpoints.ts';
import { PROTOCOL_PATHS, type OAuthProvider } from './oauth/provider.ts';
import { assetRoutes } from './web/assets.ts';
import { pageSurface } from './web/pages.ts';
import { ADMIN_ROUTES } from './web/admin/index.ts';
import { PORTAL_ROUTES } from './web/portal/index.ts';

const routes = (router: Router): Middleware[] => [router.routes() as Middleware, router.allowedMethods() as Middleware];

/** Operations: liveness, readiness and metrics, for orchestrators and Prometheus. */
function operationsRouter(deps: Deps, metrics: Metrics): Router {
  const router = new Router();
  router.use(oauthErrors(deps.log));
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    // Redis is optional: its state is reported, but a node without it still serves (issue 9 §1.4).
    const redis = deps.limits.redisStatus();
    const detail = redis === 'absent' ? {} : { redis };
    try {
      await deps.db.query('SELECT 1');
      databaseReachable(deps.log);
      ctx.body = { status: 'ok', database: 'ok', ...detail };
    } catch (error) {
      // Probes come every few seconds: logged once per outage, not per probe.
      if (isDatabaseUnavailable(error)) databaseUnreachable(deps.log, error);
      else deps.log.warn({ err: error }, 'readiness check failed');
      ctx.status = 503;
      ctx.set('Retry-After', '5');
      ctx.body = { status: 'unavailable', database: 'unreachable', ...detail };
    }
  });
  router.get('/metrics', async (ctx) => {
    const token = deps.config.LATCHKEY_METRICS_TOKEN;
    if (!metricsAllowed(token, ctx.get('authorization'), ctx.req.socket.remoteAddress, deps.config.LATCHKEY_TRUST_PROXY || ctx.get('x-forwarded-for') !== '')) {
      if (!token) return respondWithError(ctx, new NotFound('resource'), deps.log);
      // RFC 6750 §3: the scheme expected, so that a scraper's operator sees what is missing.
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer realm="latchkey-metrics"');
      ctx.body = { error: 'invalid_token', error_description: 'metrics need Authorization: Bearer LATCHKEY_METRICS_TOKEN' };
      return;
    }
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  return router;
}

/**
 * /metrics tells an outsider the load, the error rates and the process (issue 9 §1.11): with
 * LATCHKEY_METRICS_TOKEN it wants `Authorization: Bearer <token>` (compared by digest, so the
 * length leaks nothing); without one, it answers loopback peers only (`curl` on the host),
 * judged by the socket. Behind a proxy (LATCHKEY_TRUST_PROXY, or a request that says it was
 * forwarded) every outside request arrives from the proxy, often on loopback, so there only
 * the token opens it.
 */
function metricsAllowed(token: string | undefined, authorization: string, peer: string | undefined, proxied: boolean): boolean {
  if (token) {
    const presented = /^Bearer (.+)$/i.exec(authorization)?.[1] ?? '';
    return timingSafeEqual(hash('sha256', presented, 'buffer'), hash('sha256', token, 'buffer'));
  }
  return !proxied && peer !== undefined && isLoopback(peer);
}

const isLoopback = (address: string) => address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');

/**
 * The composition root of HTTP: every surface is mounted here by path prefix, grouped by how
 * its callers authenticate.
 *   - `/introspect`, `/revoke` and `/v1/keys/verify`: resource servers and gateways (client
 *     authentication), served straight from node:http — the one exception to koa, because
 *     every API call of every resource server lands there (http/token-endpoints.ts,
 *     api/verify.ts); the rest of `/v1` (the management API, later) belongs in koa;
 *   - `/portal`, `/admin` (people, session cookie) and `/assets` (anonymous): Latchkey's koa app;
 *   - `/healthz`, `/readyz`, `/metrics`: operations, in the same koa app;
 *   - the token endpoint, JWKS and discovery (PROTOCOL_PATHS, exactly as spelled there):
 *     oidc-provider (OAuth clients), itself a koa app, so that no request crosses two koa stacks;
 *   - anything else, variants of those paths included (`/TOKEN`, `/token/`) and the routes
 *     oidc-provider registers for flows Latchkey does not offer (`/auth`): a JSON 404. One
 *     canonical path per endpoint, so none is reached around Latchkey's wrapper.
 */
export function createApp(deps: Deps, oauth: OAuthProvider, metrics: Metrics, common: Middleware): RequestListener {
  const app = new Koa();
  app.proxy = deps.config.LATCHKEY_TRUST_PROXY;
  // Behind one trusted proxy, the client is the address it appended (the rightmost).
  app.maxIpsCount = 1;
  app.silent = true;
  app.use(common);

  const surfaces: { prefixes: string[]; handle: Middleware[] }[] = [
    { prefixes: ['/portal'], handle: [pageSurface(deps, '/portal', PORTAL_ROUTES)] },
    { prefixes: ['/admin'], handle: [pageSurface(deps, '/admin', ADMIN_ROUTES)] },
    { prefixes: ['/assets'], handle: routes(assetRoutes()) },
    { prefixes: ['/healthz', '/readyz', '/metrics'], handle: routes(operationsRouter(deps, metrics)) },
  ];
  for (const middleware of surfaces.flatMap((surface) => surface.handle)) app.use(middleware);
  // The front door leads to the portal.
  app.use(async (ctx, next) => {
    if (ctx.path !== '/') return next();
    ctx.redirect('/portal');
  });
  app.use((ctx) => respondWithError(ctx, new NotFound('resource'), deps.log));

  const own = app.callback();
  const tokens = tokenEndpoints(deps, oauth, metrics);
  const verify = keyVerificationEndpoint(deps, metrics);
  const protocol = oauth.handle;
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (TOKEN_ENDPOINT_PATHS.has(path)) void tokens(req, res, path);
    else if (path === VERIFY_PATH) verify(req, res);
    else void (PROTOCOL_PATHS.has(path) ? protocol : own)(req, res);
  };
}
