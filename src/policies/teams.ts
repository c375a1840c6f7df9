import type { Principal } from './principal.ts';

/** Members see a team and work with its credentials; owners also manage its people. */
export const teamPolicy = {
  read: (p: Principal, teamId: string) => p.teamRoles.has(teamId),
  manageCredentials: (p: Principal, teamId: string) => p.teamRoles.has(teamId),
  manageMembers: (p: Principal, teamId: string) => p.teamRoles.get(teamId) === 'owner',
  /** An invitation is its team's owners' to withdraw; other link tokens are no one's here. */
  manageInvitation: (p: Principal, link: { purpose: string; teamId: string | null }) =>
    link.purpose === 'team_invite' && link.teamId !== null && p.teamRoles.get(link.teamId) === 'owner',
};
