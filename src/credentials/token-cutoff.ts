import type { Deps } from '../context.ts';

/**
 * Whether a JWT was issued before its client's "revoke all tokens" cutoff (revokeClientTokens).
 * A token's iat has whole seconds, so iat alone cannot order a token against a cutoff in the
 * same second: a token issued just before it and one issued just after both carry that second.
 * Only for that second is the token's own issuance event consulted (`token.issued`, keyed by
 * jti, committed before the token was handed out: provider.ts auditIssuedOrWithhold), which
 * records the millisecond. A token handed out while the cutoff was being written may fall on
 * either side; one without an issuance event counts as before (refused, the safe side).
 */
export async function issuedBeforeCutoff(deps: Pick<Deps, 'prisma' | 'cache'>, token: { jti: string; iat: number }, cutoff: Date): Promise<boolean> {
  const cutoffSecond = Math.floor(cutoff.getTime() / 1000);
  if (token.iat !== cutoffSecond) return token.iat < cutoffSecond;
  // Never changes once written: cached without any invalidation.
  const issued = await deps.cache.get(`issued:${token.jti}`, () =>
    deps.prisma.auditEvent.findFirst({ where: { subjectType: 'access_token', subjectId: token.jti, type: 'token.issued' }, select: { at: true } }),
  );
  return !issued || issued.at < cutoff;
}
