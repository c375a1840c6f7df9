import { appendAuditEvents } from '../audit/audit-log.ts';
import type { Deps } from '../context.ts';
import { changeCredentials } from '../lib/invalidation.ts';

/**
 * Expiry needs no job to take effect (every check compares with the clock); this sweep only
 * writes the audit trail of what expired by itself, once per credential, and forgets client
 * secrets whose rotation grace has ended.
 */
export async function recordExpirations(deps: Pick<Deps, 'prisma' | 'cache' | 'now'>, batch = 500): Promise<number> {
  const now = deps.now();
  return changeCredentials(deps, async (tx, invalidate) => {
    const keys = await tx.$queryRaw<{ id: string; expires_at: Date }[]>`
      SELECT id, expires_at FROM api_key
      WHERE expires_at <= ${now} AND expiry_recorded_at IS NULL AND revoked_at IS NULL
      ORDER BY expires_at LIMIT ${batch} FOR UPDATE SKIP LOCKED`;
    const secrets = await tx.$queryRaw<{ id: string; previous_secret_expires_at: Date }[]>`
      SELECT id, previous_secret_expires_at FROM oauth_client
      WHERE previous_secret_expires_at <= ${now}
      LIMIT ${batch} FOR UPDATE SKIP LOCKED`;
    if (keys.length === 0 && secrets.length === 0) return 0;
    if (keys.length > 0) {
      await tx.apiKey.updateMany({ where: { id: { in: keys.map((k) => k.id) } }, data: { expiryRecordedAt: now } });
    }
    for (const client of secrets) {
      await tx.oAuthClient.update({ where: { id: client.id }, data: { previousSecretDigest: null, previousSecretExpiresAt: null } });
    }
    await appendAuditEvents(
      tx,
      [
        ...keys.map((k) => ({ type: 'api_key.expired', actorType: 'system' as const, subjectType: 'api_key', subjectId: k.id, data: { expiredAt: k.expires_at.toISOString() } })),
        ...secrets.map((c) => ({ type: 'client.previous_secret_expired', actorType: 'system' as const, subjectType: 'client', subjectId: c.id, data: { expiredAt: c.previous_secret_expires_at.toISOString() } })),
      ],
      now,
    );
    await invalidate(...secrets.map((c) => `client:${c.id}`));
    return keys.length + secrets.length;
  });
}
