import type { Principal } from './principal.ts';
import { teamPolicy } from './teams.ts';

type Owned = { teamId: string | null };

/**
 * API keys, applications and credential requests belong to a team: its members may read,
 * rotate and revoke them. A credential without a team (made by an operator) is no one's in
 * the portal.
 */
export const credentialPolicy = {
  read: (p: Principal, object: Owned) => object.teamId !== null && teamPolicy.read(p, object.teamId),
  change: (p: Principal, object: Owned) => object.teamId !== null && teamPolicy.manageCredentials(p, object.teamId),
};
