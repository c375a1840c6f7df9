import { z } from 'zod';
import { ConfirmPage } from '../../../views/components.tsx';
import { InvitationAcceptPage, InvitationInvalidPage, InvitationSignedOutPage, TeamPage, type TeamFormState } from '../../../views/portal/team.tsx';
import { acceptInvitation, cancelInvitation, changeMemberRole, createTeam, inviteMember, peekInvitation, removeMember, renameTeam, teamOverview } from '../../accounts/teams.ts';
import { setSessionTeam } from '../../accounts/sessions.ts';
import type { Deps } from '../../context.ts';
import { authorize } from '../../policies/principal.ts';
import { teamPolicy } from '../../policies/teams.ts';
import { parseForm, textOf } from '../form.ts';
import { accountOf, actorOf, principalOf, teamOf, type PageContext } from '../page-state.ts';
import type { PageRoutes } from '../pages.ts';
import { chrome, redirectWith, renderPage } from '../render.ts';
import { signedIn } from '../signed-in.ts';
import { renderThrottled } from '../throttled.ts';

const teamName = z
  .string()
  .transform((value) => value.trim())
  .pipe(z.string().min(1, 'Enter a team name.').max(100, 'Use at most 100 characters.'));

const renameSchema = z.object({ name: teamName });
const inviteSchema = z.object({
  email: z
    .string()
    .trim()
    .min(1, 'Enter the email address to invite.')
    .max(254, 'Use at most 254 characters.')
    .pipe(z.email('Enter an email address like name@example.com.')),
  role: z.enum(['member', 'owner'], { error: 'Choose Member or Owner.' }),
});
const roleSchema = z.object({ role: z.enum(['member', 'owner'], { error: 'Choose Member or Owner.' }) });

/** The team page, with whatever forms came back with errors (status 400). */
async function showTeam(deps: Deps, ctx: PageContext, forms?: TeamFormState, status = 200): Promise<void> {
  const current = teamOf(ctx);
  const account = accountOf(ctx);
  const principal = principalOf(ctx);
  const { team, members, invitations } = await teamOverview(deps, current.id);
  const isOwner = teamPolicy.manageMembers(principal, current.id);
  renderPage(
    ctx,
    <TeamPage
      chrome={chrome(ctx, 'team')}
      now={deps.now()}
      team={{ id: current.id, name: team?.name ?? current.name, personal: team?.personalAccountId != null }}
      viewer={{ accountId: account.id, isOwner }}
      members={members.map((m) => ({ accountId: m.accountId, email: m.account.email, role: m.role, joinedAt: m.createdAt, isPersonalOwner: team?.personalAccountId === m.accountId }))}
      invitations={isOwner ? invitations.map((i) => ({ id: i.id, email: i.email, role: i.role ?? 'member', expiresAt: i.expiresAt })) : []}
      forms={forms}
    />,
    status,
  );
}

/** A member of the current team, for the people who may manage it (404 for anyone else). */
async function memberOf(deps: Deps, ctx: PageContext, accountId: string) {
  const team = teamOf(ctx);
  const principal = principalOf(ctx);
  const member = /^[0-9a-f-]{36}$/i.test(accountId)
    ? await deps.prisma.membership.findUnique({ where: { teamId_accountId: { teamId: team.id, accountId } }, include: { account: { select: { email: true } } } })
    : null;
  return authorize(member, (m) => teamPolicy.manageMembers(principal, m.teamId), 'member');
}

/** Where an invitation link is opened: `/portal/invitations/accept?token=…`. */
const acceptPath = (token: string) => `/portal/invitations/accept?token=${encodeURIComponent(token)}`;

export const teamRoutes: PageRoutes = (router, deps) => {
  router.get('/team', signedIn, (ctx) => showTeam(deps, ctx));

  router.post('/team/invitations', signedIn, async (ctx) => {
    const team = authorize(teamOf(ctx), (t) => teamPolicy.manageMembers(principalOf(ctx), t.id), 'team');
    const input = { email: textOf(ctx.state.form.email), role: textOf(ctx.state.form.role) };
    const parsed = parseForm(inviteSchema, input);
    if (!parsed.ok) return showTeam(deps, ctx, { invite: { ...input, errors: parsed.errors } }, 400);
    const account = accountOf(ctx);
    const result = await inviteMember(deps, { teamId: team.id, email: parsed.value.email, role: parsed.value.role, invitedBy: { id: account.id, email: account.email } }, actorOf(ctx));
    if (!result.ok && 'reason' in result) return renderThrottled(ctx, result.retryAfterSeconds);
    if (!result.ok) return showTeam(deps, ctx, { invite: { ...input, errors: { [result.field ?? 'email']: result.error } } }, 400);
    redirectWith(ctx, '/portal/team', { kind: 'success', text: `Invitation sent to ${parsed.value.email.toLowerCase()}.` });
  });

  router.post('/team/invitations/:id/cancel', signedIn, async (ctx) => {
    const principal = principalOf(ctx);
    const row = await deps.prisma.linkToken.findUnique({ where: { id: ctx.params.id }, select: { id: true, teamId: true, email: true, purpose: true, usedAt: true } });
    const invitation = authorize(row, (r) => teamPolicy.manageInvitation(principal, r), 'invitation');
    await cancelInvitation(deps, invitation, actorOf(ctx));
    redirectWith(ctx, '/portal/team', { kind: 'success', text: `The invitation to ${invitation.email} was withdrawn.` });
  });

  router.post('/team/members/:accountId/role', signedIn, async (ctx) => {
    const member = await memberOf(deps, ctx, ctx.params.accountId);
    const parsed = parseForm(roleSchema, { role: textOf(ctx.state.form.role) });
    if (!parsed.ok) return redirectWith(ctx, '/portal/team', { kind: 'error', text: parsed.errors.role ?? 'Choose Member or Owner.' });
    const result = await changeMemberRole(deps, member.teamId, member.accountId, parsed.value.role, actorOf(ctx));
    if (!result.ok) return redirectWith(ctx, '/portal/team', { kind: 'error', text: result.error });
    redirectWith(ctx, '/portal/team', { kind: 'success', text: `${member.account.email} is now ${parsed.value.role === 'owner' ? 'an owner' : 'a member'}.` });
  });

  router.get('/team/members/:accountId/remove', signedIn, async (ctx) => {
    const member = await memberOf(deps, ctx, ctx.params.accountId);
    renderPage(
      ctx,
      <ConfirmPage
        chrome={chrome(ctx, 'team')}
        title="Remove a member"
        danger
        cancel="/portal/team"
        sentence={`Remove ${member.account.email} from ${teamOf(ctx).name}? They lose access to the team's API keys and applications at once; the credentials keep working.`}
        action={`/portal/team/members/${member.accountId}/remove`}
        button="Remove"
      />,
    );
  });

  router.post('/team/members/:accountId/remove', signedIn, async (ctx) => {
    const member = await memberOf(deps, ctx, ctx.params.accountId);
    const result = await removeMember(deps, member.teamId, member.accountId, actorOf(ctx));
    if (!result.ok) return redirectWith(ctx, '/portal/team', { kind: 'error', text: result.error });
    redirectWith(ctx, '/portal/team', { kind: 'success', text: `${member.account.email} was removed from the team.` });
  });

  router.get('/team/leave', signedIn, (ctx) => {
    const team = teamOf(ctx);
    renderPage(
      ctx,
      <ConfirmPage
        chrome={chrome(ctx, 'team')}
        title="Leave the team"
        danger
        cancel="/portal/team"
        sentence={`Leave ${team.name}? You lose access to its API keys and applications; they keep working for the others.`}
        action="/portal/team/leave"
        button="Leave team"
      />,
    );
  });

  router.post('/team/leave', signedIn, async (ctx) => {
    const team = authorize(teamOf(ctx), (t) => teamPolicy.read(principalOf(ctx), t.id), 'team');
    const result = await removeMember(deps, team.id, accountOf(ctx).id, actorOf(ctx));
    if (!result.ok) return redirectWith(ctx, '/portal/team', { kind: 'error', text: result.error });
    redirectWith(ctx, '/portal', { kind: 'success', text: `You left the team ${team.name}.` });
  });

  router.post('/team/rename', signedIn, async (ctx) => {
    const team = authorize(teamOf(ctx), (t) => teamPolicy.manageMembers(principalOf(ctx), t.id), 'team');
    const input = { name: textOf(ctx.state.form.name) };
    const parsed = parseForm(renameSchema, input);
    if (!parsed.ok) return showTeam(deps, ctx, { rename: { ...input, errors: parsed.errors } }, 400);
    await renameTeam(deps, team.id, parsed.value.name, actorOf(ctx));
    redirectWith(ctx, '/portal/team', { kind: 'success', text: `The team is now called ${parsed.value.name}.` });
  });

  router.post('/team/create', signedIn, async (ctx) => {
    const input = { name: textOf(ctx.state.form.name) };
    const parsed = parseForm(renameSchema, input);
    if (!parsed.ok) return showTeam(deps, ctx, { create: { ...input, errors: parsed.errors } }, 400);
    const team = await createTeam(deps, { name: parsed.value.name, ownerId: accountOf(ctx).id }, actorOf(ctx));
    await setSessionTeam(deps, ctx.state.session!.id, team.id);
    redirectWith(ctx, '/portal/team', { kind: 'success', text: `Team ${team.name} created; you are working in it now.` });
  });

  router.post('/team/switch', signedIn, async (ctx) => {
    const principal = principalOf(ctx);
    const teamId = authorize(textOf(ctx.state.form.team), (id) => teamPolicy.read(principal, id), 'team');
    await setSessionTeam(deps, ctx.state.session!.id, teamId);
    const name = ctx.state.viewer?.teams.find((t) => t.id === teamId)?.name ?? 'the team';
    redirectWith(ctx, '/portal', { kind: 'success', text: `You are working in ${name} now.` });
  });

  router.get('/invitations/accept', async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const view = await peekInvitation(deps, token);
    const session = ctx.state.session;
    if (!session) {
      if (!view.ok) return renderPage(ctx, <InvitationInvalidPage chrome={chrome(ctx)} signedIn={false} />, 410);
      return renderPage(
        ctx,
        <InvitationSignedOutPage
          chrome={chrome(ctx)}
          teamName={view.team.name}
          signInHref={`/portal/sign-in?next=${encodeURIComponent(acceptPath(token))}`}
          signUpHref={`/portal/sign-up?invite=${encodeURIComponent(token)}`}
        />,
      );
    }
    await signedIn(ctx, async () => {
      if (!view.ok) return renderPage(ctx, <InvitationInvalidPage chrome={chrome(ctx, 'team')} signedIn />, 410);
      renderPage(ctx, <InvitationAcceptPage chrome={chrome(ctx, 'team')} token={token} teamName={view.team.name} role={view.invitation.role} email={view.invitation.email} />);
    });
  });

  router.post('/invitations/accept', signedIn, async (ctx) => {
    const token = textOf(ctx.state.form.token);
    const account = accountOf(ctx);
    const result = await acceptInvitation(deps, token, account, actorOf(ctx));
    if (!result.ok) {
      if (result.reason === 'wrong_person') {
        const view = await peekInvitation(deps, token);
        if (view.ok) {
          return renderPage(
            ctx,
            <InvitationAcceptPage chrome={chrome(ctx, 'team')} token={token} teamName={view.team.name} role={view.invitation.role} email={view.invitation.email} error={result.error} />,
            403,
          );
        }
      }
      return renderPage(ctx, <InvitationInvalidPage chrome={chrome(ctx, 'team')} signedIn />, 410);
    }
    await setSessionTeam(deps, ctx.state.session!.id, result.value.teamId);
    redirectWith(ctx, '/portal/team', { kind: 'success', text: `Welcome to ${result.value.teamName}: you joined as ${result.value.role === 'owner' ? 'an owner' : 'a member'}.` });
  });
};
