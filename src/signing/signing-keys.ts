import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { appendAuditEvents } from '../audit/audit-log.ts';
import type { Deps } from '../context.ts';

export const DEFAULT_ALG = 'ES256';
const KEY_LOCK = 72_707_371;

export interface PrivateJwk extends JWK {
  kid: string;
  alg: string;
  use: 'sig';
}

/** Creates the first signing key if there is none; safe when several nodes start at once. */
export async function ensureSigningKey(deps: Pick<Deps, 'prisma' | 'keyring' | 'now'>, alg = DEFAULT_ALG): Promise<void> {
  if (await deps.prisma.signingKey.count({ where: { status: 'active' } })) return;
  const jwk = await newPrivateJwk(alg);
  await deps.prisma.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${KEY_LOCK})`;
    if (await tx.signingKey.count({ where: { status: 'active' } })) return;
    const now = deps.now();
    await tx.signingKey.create({
      data: {
        kid: jwk.kid,
        alg,
        publicJwk: publicPart(jwk),
        privateJwkEncrypted: deps.keyring.encrypt(JSON.stringify(jwk)),
        status: 'active',
        createdAt: now,
      },
    });
    await appendAuditEvents(tx, [{ type: 'signing_key.created', actorType: 'system', subjectType: 'signing_key', subjectId: jwk.kid, data: { alg } }], now);
  });
}

/**
 * The keys oidc-provider signs with and publishes: active keys first (the first is used for
 * signing), then retired ones still inside their publication window.
 */
export async function loadSigningJwks(deps: Pick<Deps, 'prisma' | 'keyring'>): Promise<{ keys: PrivateJwk[] }> {
  const rows = await deps.prisma.signingKey.findMany({
    where: { status: { in: ['active', 'retired'] } },
    orderBy: [{ status: 'asc' }, { createdAt: 'desc' }],
  });
  return { keys: rows.map((row) => JSON.parse(deps.keyring.decrypt(row.privateJwkEncrypted)) as PrivateJwk) };
}

async function newPrivateJwk(alg: string): Promise<PrivateJwk> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' };
}

export function publicPart(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub;
}
