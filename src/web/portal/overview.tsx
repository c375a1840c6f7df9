import { Layout } from '../../../views/layout.tsx';
import { LinkButton, PageHeader } from '../../../views/components.tsx';
import type { PageRoutes } from '../pages.ts';
import { chrome, renderPage } from '../render.ts';
import { signedIn } from '../signed-in.ts';
import { teamOf } from '../page-state.ts';

/** The portal's landing page: where the team stands and what to do next. */
export const overviewRoutes: PageRoutes = (router, deps) => {
  router.get('/', signedIn(deps), async (ctx) => {
    const team = teamOf(ctx);
    const [keys, applications] = await Promise.all([
      deps.prisma.apiKey.count({ where: { teamId: team.id, revokedAt: null } }),
      deps.prisma.oAuthClient.count({ where: { teamId: team.id, status: 'active' } }),
    ]);
    renderPage(
      ctx,
      <Layout chrome={chrome(ctx, 'overview')} title="Overview">
        <PageHeader title="Overview" description={`Team ${team.name}`} actions={<LinkButton href="/portal/keys/new">New API key</LinkButton>} />
        <div class="grid">
          <a class="stat" href="/portal/keys">
            <span class="stat-value">{keys}</span> API keys
          </a>
          <a class="stat" href="/portal/applications">
            <span class="stat-value">{applications}</span> applications
          </a>
        </div>
      </Layout>,
    );
  });
};
