import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import type { Deps } from './context.ts';
import type { Metrics } from './http/metrics.ts';
import { oauthErrors } from './http/oauth-errors.ts';
import { TOKEN_ENDPOINT_PATHS, tokenEndpoints } from './http/token-endpoints.ts';
import type { OAuthProvider } from './oauth/provider.ts';

// Paths served by Latchkey's own koa app; everything else belongs to oidc-provider.
const OWN_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One listener in front of three handlers, chosen by path before any of them runs:
 * introspection and revocation (hot, served from node:http directly), Latchkey's own koa app,
 * and oidc-provider (itself a koa app), so that no request crosses two koa stacks.
 */
export function createApp(deps: Deps, oauth: OAuthProvider, metrics: Metrics, common: Middleware): RequestListener {
  const app = new Koa();
  app.proxy = deps.config.LATCHKEY_TRUST_PROXY;
  // Behind one trusted proxy, the client is the address it appended (the rightmost).
  app.maxIpsCount = 1;
  app.silent = true;
  app.use(common);

  const router = new Router();
  router.use(oauthErrors(deps.log));
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    try {
      await deps.db.query('SELECT 1');
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

  const own = app.callback();
  const tokens = tokenEndpoints(deps, oauth, metrics);
  const protocol = oauth.provider.callback();
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (TOKEN_ENDPOINT_PATHS.has(path)) void tokens(req, res, path);
    else void (OWN_PATHS.has(path) ? own : protocol)(req, res);
  };
}
