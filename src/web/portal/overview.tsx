import { OverviewPage } from '../../../views/portal/overview.tsx';
import { liveKeyWhere } from '../../credentials/api-keys.ts';
import { accountOf, teamOf } from '../page-state.ts';
import type { PageRoutes } from '../pages.ts';
import { chrome, renderPage } from '../render.ts';
import { signedIn } from '../signed-in.ts';

/** The portal's landing page: counts, approved requests waiting to be shown, next steps. */
export const overviewRoutes: PageRoutes = (router, deps) => {
  router.get('/', signedIn, async (ctx) => {
    const team = teamOf(ctx);
    const now = deps.now();
    const [keys, applications, pendingRequests, waiting, members] = await Promise.all([
      deps.prisma.apiKey.count({ where: { teamId: team.id, ...liveKeyWhere(now) } }),
      deps.prisma.oAuthClient.count({ where: { teamId: team.id, status: 'active' } }),
      deps.prisma.credentialRequest.count({ where: { teamId: team.id, status: 'pending' } }),
      deps.prisma.credentialRequest.findMany({
        where: { teamId: team.id, status: 'approved', resultSecretEncrypted: { not: null } },
        select: { id: true, name: true },
        orderBy: { decidedAt: 'desc' },
        take: 5,
      }),
      deps.prisma.membership.count({ where: { teamId: team.id } }),
    ]);
    const view = { teamName: team.name, keys, applications, pendingRequests, waiting, mfaOn: Boolean(accountOf(ctx).mfaEnabledAt), members };
    renderPage(ctx, <OverviewPage chrome={chrome(ctx, 'overview')} view={view} />);
  });
};
