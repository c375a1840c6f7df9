import type { Tx } from '../db/database.ts';
import { InvalidRequest } from '../lib/errors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The team that will own a credential, named by an operator: a team id, or the email of an
 * existing person (their personal team). Nobody is created on the way: a typo must not mint
 * an account that nobody can sign in to.
 */
export async function resolveOwnerTeam(tx: Tx, owner: string): Promise<string> {
  if (UUID.test(owner)) {
    const team = await tx.team.findUnique({ where: { id: owner.toLowerCase() }, select: { id: true } });
    if (team) return team.id;
  } else {
    const team = await tx.team.findFirst({ where: { personalAccount: { email: owner.toLowerCase() } }, select: { id: true } });
    if (team) return team.id;
  }
  throw new InvalidRequest(`owner ${owner} is neither an existing account's email nor a team id`);
}
