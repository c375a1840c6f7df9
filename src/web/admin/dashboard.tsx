import { DashboardPage } from '../../../views/admin/dashboard.tsx';
import { cachedDashboardFigures } from '../../admin/dashboard.ts';
import type { PageRoutes } from '../pages.ts';
import { chrome, renderPage } from '../render.ts';
import { adminReader } from './guard.ts';

export const dashboardRoutes: PageRoutes = (router, deps) => {
  router.get('/', adminReader, async (ctx) => {
    const figures = await cachedDashboardFigures(deps);
    renderPage(ctx, <DashboardPage chrome={chrome(ctx, 'admin-dashboard')} now={deps.now()} figures={figures} />);
  });
};
