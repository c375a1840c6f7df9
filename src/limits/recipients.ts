import type { Deps } from '../context.ts';

/** The team's owners and Latchkey's admins (active accounts), each once. */
export async function recipients(deps: Pick<Deps, 'prisma'>, teamId: string | null, withAdmins = true): Promise<{ email: string; admin: boolean }[]> {
  const [owners, admins] = await Promise.all([
    teamId ? deps.prisma.membership.findMany({ where: { teamId, role: 'owner', account: { status: 'active' } }, select: { account: { select: { email: true } } } }) : [],
    withAdmins ? deps.prisma.account.findMany({ where: { role: 'admin', status: 'active' }, select: { email: true } }) : [],
  ]);
  const byEmail = new Map<string, boolean>();
  for (const { email } of admins) byEmail.set(email, true);
  for (const { account } of owners) if (!byEmail.has(account.email)) byEmail.set(account.email, false);
  return [...byEmail].map(([email, admin]) => ({ email, admin }));
}
