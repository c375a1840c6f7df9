import { RequestDetailPage, RequestsListPage, type RequestView } from '../../../views/portal/requests.tsx';
import type { Deps } from '../../context.ts';
import type { CredentialRequest } from '../../db/database.ts';
import { findRequest, listRequests, revealApprovedSecret } from '../../credentials/requests.ts';
import { credentialPolicy } from '../../policies/credentials.ts';
import { authorize } from '../../policies/principal.ts';
import { accountOf, actorOf, principalOf, teamOf, type PageContext } from '../page-state.ts';
import type { PageRoutes } from '../pages.ts';
import { chrome, redirectWith, renderPage } from '../render.ts';
import { signedIn } from '../signed-in.ts';

const present = (r: CredentialRequest, requestedBy: string | null): RequestView => ({
  id: r.id,
  kind: r.kind === 'client' ? 'client' : 'api_key',
  name: r.name,
  scopes: r.scopes,
  status: r.status,
  requestedBy,
  createdAt: r.createdAt,
  decidedAt: r.decidedAt,
  note: r.note,
  resultId: r.resultId,
  secretWaiting: r.status === 'approved' && r.resultSecretEncrypted !== null,
});

/** A request belongs to its team: unknown and someone else's answer alike (404). */
async function loadRequest(deps: Deps, ctx: PageContext, id: string, action: 'read' | 'change'): Promise<CredentialRequest> {
  const principal = principalOf(ctx);
  return authorize(await findRequest(deps, id), (r) => credentialPolicy[action](principal, r), 'request');
}

async function requesterEmail(deps: Deps, r: CredentialRequest): Promise<string | null> {
  const account = await deps.prisma.account.findUnique({ where: { id: r.requestedById }, select: { email: true } });
  return account?.email ?? null;
}

/** The team's credential requests (scopes that need approval) and the one-time reveal of an approved one. */
export const requestsRoutes: PageRoutes = (router, deps) => {
  router.get('/requests', signedIn, async (ctx) => {
    const requests = await listRequests(deps, { teamId: teamOf(ctx).id });
    renderPage(
      ctx,
      <RequestsListPage chrome={chrome(ctx, 'requests')} now={deps.now()} requests={requests.map((r) => present(r, r.requestedBy?.email ?? null))} />,
    );
  });

  router.get('/requests/:id', signedIn, async (ctx) => {
    const request = await loadRequest(deps, ctx, ctx.params.id!, 'read');
    renderPage(ctx, <RequestDetailPage chrome={chrome(ctx, 'requests')} now={deps.now()} request={present(request, await requesterEmail(deps, request))} />);
  });

  // Revealing a usable secret is a credential action: the change rule, not just read.
  router.post('/requests/:id/reveal', signedIn, async (ctx) => {
    const request = await loadRequest(deps, ctx, ctx.params.id!, 'change');
    const revealed = await revealApprovedSecret(deps, request.id, accountOf(ctx).id, actorOf(ctx));
    if (!revealed) {
      const what = request.kind === 'client' ? 'secret' : 'key';
      return redirectWith(ctx, `/portal/requests/${request.id}`, {
        kind: 'info',
        text: request.status === 'approved' ? `The ${what} was shown already.` : 'This request has nothing to show.',
      });
    }
    const current = (await findRequest(deps, request.id)) ?? request;
    // Shown once, in this response (never stored, never redirected through).
    renderPage(
      ctx,
      <RequestDetailPage chrome={chrome(ctx, 'requests')} now={deps.now()} request={present(current, await requesterEmail(deps, current))} secret={revealed.secret} />,
    );
  });
};
