import { SearchPage } from '../../../views/admin/search.tsx';
import { searchEverything } from '../../admin/search.ts';
import { textOf } from '../form.ts';
import type { PageRoutes } from '../pages.ts';
import { chrome, renderPage } from '../render.ts';
import { adminReader } from './guard.ts';

export const searchRoutes: PageRoutes = (router, deps) => {
  router.get('/search', adminReader, async (ctx) => {
    const query = textOf(ctx.query.q as string | string[] | undefined).trim();
    const results = query ? await searchEverything(deps, query) : null;
    renderPage(ctx, <SearchPage chrome={chrome(ctx, 'admin-search')} now={deps.now()} results={results} />);
  });
};
