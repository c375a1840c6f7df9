import { NotFound } from '../lib/errors.ts';

export type TeamRole = 'owner' | 'member';

/** A signed-in person as policies see them: their role and their teams. */
export interface Principal {
  accountId: string;
  /** developer | admin | auditor (accounts/accounts.ts Role). */
  role: string;
  isAdmin: boolean;
  teamRoles: ReadonlyMap<string, TeamRole>;
}

export function principalFrom(account: { id: string; role: string; memberships: { teamId: string; role: string }[] }): Principal {
  return {
    accountId: account.id,
    role: account.role,
    isAdmin: account.role === 'admin',
    teamRoles: new Map(account.memberships.map((m) => [m.teamId, m.role === 'owner' ? 'owner' : 'member'])),
  };
}

/**
 * The one way a route turns a policy answer into an object: unknown and forbidden look alike
 * (404), so ids cannot be probed (STYLE.md, Authorization as rules).
 */
export function authorize<T>(object: T | null | undefined, allowed: (object: T) => boolean, what: string): T {
  if (object === null || object === undefined || !allowed(object)) throw new NotFound(what);
  return object;
}
