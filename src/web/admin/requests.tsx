import { AdminRequestPage, AdminRequestsPage, type AdminRequestView } from '../../../views/admin/requests.tsx';
import { approveRequest, denyRequest, findRequest, listRequests, type RequestView } from '../../credentials/requests.ts';
import type { Deps } from '../../context.ts';
import { NotFound } from '../../lib/errors.ts';
import { adminPolicy } from '../../policies/admin.ts';
import { textOf } from '../form.ts';
import { actorOf, principalOf, type PageContext } from '../page-state.ts';
import type { PageRoutes } from '../pages.ts';
import { chrome, flashOnConflict, redirectWith, renderPage } from '../render.ts';
import { adminActor, adminReader } from './guard.ts';

const present = (r: RequestView): AdminRequestView => ({
  id: r.id,
  kind: r.kind,
  name: r.name,
  scopes: r.scopes,
  audiences: r.audiences,
  status: r.status,
  team: r.team,
  requestedBy: r.requestedBy,
  createdAt: r.createdAt,
  decidedAt: r.decidedAt,
  note: r.note,
  resultId: r.resultId,
});

async function loadRequest(deps: Deps, id: string): Promise<AdminRequestView> {
  const request = await findRequest(deps, id);
  if (!request) throw new NotFound('request');
  const [team, requestedBy] = await Promise.all([
    deps.prisma.team.findUniqueOrThrow({ where: { id: request.teamId }, select: { id: true, name: true } }),
    deps.prisma.account.findUnique({ where: { id: request.requestedById }, select: { id: true, email: true } }),
  ]);
  return present({ ...request, team, requestedBy });
}

/** Pending key and application requests: approve or deny with a note (issue 8 §1.2); services in credentials/requests.ts mail the developer. */
export const requestsRoutes: PageRoutes = (router, deps) => {
  router.get('/requests', adminReader, async (ctx) => {
    const requests = await listRequests(deps, { status: 'pending' });
    renderPage(ctx, <AdminRequestsPage chrome={chrome(ctx, 'admin-requests')} now={deps.now()} requests={requests.slice(0, 200).map(present)} />);
  });

  const show = async (ctx: PageContext, id: string, errors?: { deny?: string }, status = 200) => {
    const request = await loadRequest(deps, id);
    renderPage(
      ctx,
      <AdminRequestPage chrome={chrome(ctx, 'admin-requests')} now={deps.now()} request={request} canAct={adminPolicy.act(principalOf(ctx))} errors={errors} />,
      status,
    );
  };

  router.get('/requests/:id', adminReader, (ctx) => show(ctx, ctx.params.id!));

  router.post('/requests/:id/approve', adminActor(deps), async (ctx) => {
    const request = await loadRequest(deps, ctx.params.id!);
    const back = `/admin/requests/${request.id}`;
    const note = textOf(ctx.state.form.note).trim().slice(0, 500);
    await flashOnConflict(ctx, back, async () => {
      await approveRequest(deps, request.id, { note }, actorOf(ctx));
      redirectWith(ctx, back, { kind: 'success', text: `Approved: ${request.name} was issued and ${request.requestedBy?.email ?? 'the requester'} was emailed.` });
    });
  });

  router.post('/requests/:id/deny', adminActor(deps), async (ctx) => {
    const request = await loadRequest(deps, ctx.params.id!);
    const back = `/admin/requests/${request.id}`;
    const note = textOf(ctx.state.form.note).trim();
    if (!note) return show(ctx, request.id, { deny: 'Say why: the requester is sent this note.' }, 400);
    if (note.length > 500) return show(ctx, request.id, { deny: 'Keep the note under 500 characters.' }, 400);
    await flashOnConflict(ctx, back, async () => {
      await denyRequest(deps, request.id, { reason: note }, actorOf(ctx));
      redirectWith(ctx, back, { kind: 'success', text: `Denied: ${request.requestedBy?.email ?? 'the requester'} was emailed your note.` });
    });
  });
};
