import type { Next } from 'koa';
import type { PageContext } from './page-state.ts';
import { isStaffRole } from '../accounts/accounts.ts';
import { principalFrom } from '../policies/principal.ts';

/**
 * Routes behind this need a full session: the person, their teams and the team they are
 * working in (their personal team unless they chose another they still belong to).
 * Signed out → the sign-in page; password given but second factor due → the code page.
 * The account and its teams were loaded with the session (accounts/sessions.ts findSession).
 */
export async function signedIn(ctx: PageContext, next: Next): Promise<void> {
  const session = ctx.state.session;
  if (!session) return void ctx.redirect(`/portal/sign-in${ctx.method === 'GET' ? `?next=${encodeURIComponent(ctx.path)}` : ''}`);
  if (session.stage !== 'full') return void ctx.redirect('/portal/sign-in/verify');
  const account = ctx.state.sessionAccount;
  if (!account || account.status !== 'active') return void ctx.redirect('/portal/sign-in');
  const memberships = account.memberships.filter((m) => m.team.status === 'active');
  const current =
    memberships.find((m) => m.teamId === session.teamId) ?? memberships.find((m) => m.team.personalAccountId === account.id) ?? memberships[0];
  if (!current) return void ctx.redirect('/portal/sign-in');
  ctx.state.account = account;
  ctx.state.principal = principalFrom({ id: account.id, role: account.role, memberships });
  ctx.state.viewer = {
    email: account.email,
    isAdmin: account.role === 'admin',
    staffRole: isStaffRole(account.role) ? account.role : null,
    team: { id: current.teamId, name: current.team.name, role: current.role },
    teams: memberships.map((m) => ({ id: m.teamId, name: m.team.name })),
  };
  await next();
}
