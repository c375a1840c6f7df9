import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context, Next } from 'koa';
import pino, { type Logger } from 'pino';
import type { Deps } from '../context.ts';
import type { Metrics } from './metrics.ts';

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
export function requestFinished(deps: Deps, metrics: Metrics, details: { requestId: string; method: string; route: string; status: number; started: bigint }): void {
  const { route } = details;
  const seconds = Number(process.hrtime.bigint() - details.started) / 1e9;
  metrics.observe(route, details.status, seconds);
  if (deps.log.isLevelEnabled('info')) {
    // The route pattern only: a path can carry an id, a query string a secret.
    const { requestId, method, status } = details;
    accessLine(deps.log, requestId, method, route, status, Math.round(seconds * 1e4) / 10);
  }
}

const LINE_HEAD = `{"level":${pino.levels.values.info},"time":`;
const bases = new WeakMap<Logger, string>();

/**
 * The access log line, exactly as `log.info({requestId, method, route, status, ms}, 'request')`
 * would write it, straight to the logger's stream. At the default level every request writes
 * one, and pino's generic path (with redaction, which these fields never need: a validated id,
 * a method, a route label, numbers) measured two to three times this line's cost.
 */
function accessLine(log: Logger, requestId: string, method: string, route: string, status: number, ms: number): void {
  let base = bases.get(log);
  if (base === undefined) {
    // The logger's bindings (`"service":"latchkey"` and any child's), as pino serialises them.
    base = (log as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] ?? '';
    bases.set(log, base);
  }
  const stream = (log as unknown as Record<symbol, { write(line: string): void }>)[pino.symbols.streamSym]!;
  stream.write(`${LINE_HEAD}${Date.now()}${base},"requestId":${JSON.stringify(requestId)},"method":${JSON.stringify(method)},"route":${JSON.stringify(route)},"status":${status},"ms":${ms},"msg":"request"}\n`);
}

/**
 * The low-cardinality label of a request for logs and metrics, from whichever router served
 * it: koa-router's matched pattern (`/portal/keys/:id`) or oidc-provider's route name.
 */
function routeLabel(ctx: Context): string {
  const oidcRoute = (ctx as Context & { oidc?: { route?: string } }).oidc?.route;
  if (oidcRoute) return oidcRoute;
  const matched = (ctx as Context & { _matchedRoute?: unknown })._matchedRoute;
  return typeof matched === 'string' ? matched : 'other';
}

/**
 * What every koa response gets, from Latchkey's own app and from oidc-provider's alike:
 * a request id (also in the audit trail), security headers, metrics and an access log line.
 */
export function commonMiddleware(deps: Deps, metrics: Metrics) {
  const headers = securityHeaders(deps.config.LATCHKEY_ISSUER);
  return async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    const requestId = requestIdFor(ctx.req);
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    ctx.set(headers);
    try {
      await next();
    } finally {
      requestFinished(deps, metrics, { requestId, method: ctx.method, route: routeLabel(ctx), status: ctx.status, started });
    }
  };
}
