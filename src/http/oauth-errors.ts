import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { TemporarilyUnavailable, toLatchkeyError, TooManyRequests } from '../lib/errors.ts';
import { logFailure } from '../lib/failure-log.ts';

/** Token-ish answers must never be cached (RFC 6749 §5.1, RFC 7662 §2.2). */
export const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' } as const;

export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: { error: string; error_description: string };
}

/**
 * The one place errors become HTTP answers on Latchkey's own endpoints: RFC 6749 §5.2 bodies,
 * public description only; the private detail goes to the log.
 */
export function errorAnswer(thrown: unknown, authorization: string | undefined, log: Logger, requestId: string): ErrorAnswer {
  const error = toLatchkeyError(thrown);
  logFailure(log, thrown, error, requestId);
  const headers: Record<string, string> = { ...NO_STORE };
  if (error.code === 'invalid_client' && /^basic /i.test(authorization ?? '')) {
    // RFC 6749 §5.2: a failed Basic authentication answers with the scheme it expects.
    headers['WWW-Authenticate'] = 'Basic realm="latchkey", error="invalid_client"';
  }
  if (error.code === 'method_not_allowed') headers.Allow = 'POST';
  if (error instanceof TooManyRequests || error instanceof TemporarilyUnavailable) headers['Retry-After'] = String(error.retryAfterSeconds);
  return { status: error.status, headers, body: { error: error.code, error_description: error.description } };
}

/** The same answer on a koa context. */
export function respondWithError(ctx: Context, thrown: unknown, log: Logger): void {
  const answer = errorAnswer(thrown, ctx.get('authorization'), log, ctx.state.requestId);
  ctx.status = answer.status;
  ctx.set(answer.headers);
  ctx.body = answer.body;
}

export function oauthErrors(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (thrown) {
      respondWithError(ctx, thrown, log);
    }
  };
}
