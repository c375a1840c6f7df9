import type { Tx } from '../db/database.ts';

/**
 * The account that owns a credential, created (unverified, without a password) when an
 * operator names an owner who has not signed up yet; signing up later claims it.
 */
export async function resolveOwner(tx: Tx, email: string): Promise<string> {
  const account = await tx.account.upsert({
    where: { email: email.toLowerCase() },
    create: { email: email.toLowerCase() },
    update: {},
    select: { id: true },
  });
  return account.id;
}
