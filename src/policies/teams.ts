import type { Principal } from './principal.ts';

/** Members see a team and work with its credentials; owners also manage its people. */
export const teamPolicy = {
  read: (p: Principal, teamId: string) => p.teamRoles.has(teamId),
  manageCredentials: (p: Principal, teamId: string) => p.teamRoles.has(teamId),
  manageMembers: (p: Principal, teamId: string) => p.teamRoles.get(teamId) === 'owner',
};
