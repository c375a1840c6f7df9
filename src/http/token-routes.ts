import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Deps } from '../context.ts';
import { introspect, revokeToken } from '../credentials/introspection.ts';
import { InvalidRequest, LatchkeyError } from '../lib/errors.ts';
import { authenticateClient } from '../oauth/client-auth.ts';
import { CLIENT_ASSERTION_ALGS, INTROSPECTION_PATH, REVOCATION_PATH, type OAuthProvider } from '../oauth/provider.ts';
import { readForm } from './form-body.ts';
import { noStore } from './oauth-errors.ts';

/** Introspection (RFC 7662) and revocation (RFC 7009) for JWTs, opaque tokens and API keys. */
export function tokenRoutes(deps: Deps, oauth: OAuthProvider, router: Router): void {
  const issuer = deps.config.LATCHKEY_ISSUER;

  async function readRequest(ctx: Context, endpoint: string) {
    // RFC 7662 §2.1: POST with a form body; GET would put tokens in URLs and logs.
    if (ctx.method !== 'POST') throw new LatchkeyError('method_not_allowed', 'use POST');
    const params = await readForm(ctx);
    const caller = await authenticateClient(deps, ctx, params, [issuer, `${issuer}${endpoint}`, `${issuer}/token`], CLIENT_ASSERTION_ALGS);
    const token = params.get('token');
    if (!token) throw new InvalidRequest('missing required parameter token');
    // token_type_hint is not read: the token's own shape tells its kind, so a wrong or unknown
    // hint can neither hide a token nor cause an error (RFC 7662 §2.1, RFC 7009 §2.1).
    return { caller, token };
  }

  router.all(INTROSPECTION_PATH, async (ctx) => {
    const { caller, token } = await readRequest(ctx, INTROSPECTION_PATH);
    noStore(ctx);
    ctx.body = await introspect(deps, oauth.verifier, caller, token);
  });

  router.all(REVOCATION_PATH, async (ctx) => {
    const { caller, token } = await readRequest(ctx, REVOCATION_PATH);
    await revokeToken(deps, oauth.verifier, caller, token);
    noStore(ctx);
    ctx.status = 200;
    ctx.body = '';
  });
}
