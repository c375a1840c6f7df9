import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { toLatchkeyError } from '../lib/errors.ts';

/** Token-ish answers must never be cached (RFC 6749 §5.1, RFC 7662 §2.2). */
export function noStore(ctx: Context): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
}

/**
 * The one place errors become HTTP answers on Latchkey's own endpoints: RFC 6749 §5.2 bodies,
 * public description only; the private detail goes to the log.
 */
export function oauthErrors(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (thrown) {
      const error = toLatchkeyError(thrown);
      if (error.status >= 500) log.error({ err: thrown, requestId: ctx.state.requestId }, 'request failed');
      else if (error.detail) log.info({ code: error.code, detail: error.detail, requestId: ctx.state.requestId }, 'request rejected');
      noStore(ctx);
      ctx.status = error.status;
      if (error.code === 'invalid_client' && /^basic /i.test(ctx.get('authorization'))) {
        // RFC 6749 §5.2: a failed Basic authentication answers with the scheme it expects.
        ctx.set('WWW-Authenticate', 'Basic realm="latchkey", error="invalid_client"');
      }
      if (error.code === 'method_not_allowed') ctx.set('Allow', 'POST');
      ctx.body = { error: error.code, error_description: error.description };
    }
  };
}
