import { z } from 'zod';
import type { Tx } from '../db/database.ts';
import { Conflict } from '../lib/errors.ts';

/**
 * A credential's name: trimmed, 1–100 characters, any script. One rule for the CLI, the
 * services and the portal's forms (DESIGN §2), so a name the CLI accepts fits the pages.
 */
export const CREDENTIAL_NAME_MAX = 100;
export const credentialName = z.string().trim().min(1, 'Enter a name.').max(CREDENTIAL_NAME_MAX, `Use at most ${CREDENTIAL_NAME_MAX} characters.`);

/** A live credential of the same team already has this name: the person's to fix, beside the Name field. */
export class NameTaken extends Conflict {
  constructor(what: 'api key' | 'application', name: string) {
    super(`a live ${what} of this team is already named "${name}"`);
  }
}

/**
 * Serialises creations of one name in one team until the transaction ends, so two concurrent
 * creations cannot both find the name free (no unique index can say "live": that depends on
 * the clock). A transaction-scoped advisory lock: nothing to release, no row touched.
 */
export async function lockCredentialName(tx: Tx, kind: 'api_key' | 'client', teamId: string, name: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`credential-name:${kind}:${teamId}:${name}`}))`;
}
