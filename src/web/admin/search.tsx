import { SearchPage } from '../../../views/admin/search.tsx';
import { searchEverything } from '../../admin/search.ts';
import { textOf } from '../form.ts';
import type { PageRoutes } from '../pages.ts';
import { chrome, renderPage } from '../render.ts';
import { adminReader } from './guard.ts';

export const searchRoutes: PageRoutes = (router, deps) => {
  router.get('/search', adminReader, async (ctx) => {
    const query = textOf(ctx.query.q as string | string[] | undefined).trim();
    // A pasted full key is looked up by its public id; the secret leaves the address bar (and
    // the history entry) at once rather than staying in every later link and reload.
    const keyId = /^lk_([0-9A-Za-z]{12})_./.exec(query)?.[1];
    if (keyId) return ctx.redirect(`${ctx.path}?q=lk_${keyId}`);
    const results = query ? await searchEverything(deps, query) : null;
    renderPage(ctx, <SearchPage chrome={chrome(ctx, 'admin-search')} now={deps.now()} results={results} />);
  });
};
