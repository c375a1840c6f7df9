import type { Deps } from '../context.ts';
import type { ClientRecord } from '../credentials/clients.ts';

// One count per token request, however often oidc-provider resolves its resource.
const counted = new WeakSet<object>();

/**
 * An application's plan at the token endpoint (DESIGN §2 CLI `plan create`): counts one
 * request for an authenticated client about to be issued a token. Whole seconds until a retry
 * can succeed when over a limit (for Retry-After), else null. A Redis outage is answered by
 * LATCHKEY_TOKEN_LIMITS_ON_REDIS_FAILURE (default open: issuance survives it).
 */
export async function tokenRequestRetryAfter(deps: Deps, request: object, client: ClientRecord): Promise<number | null> {
  if (!client.limits || counted.has(request)) return null;
  counted.add(request);
  const verdict = await deps.limits.check('token', `c:${client.id}`, client.limits, 1, deps.now().getTime(), deps.config.LATCHKEY_TOKEN_LIMITS_ON_REDIS_FAILURE);
  return verdict.refused ? Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)) : null;
}
