import { NotFound } from '../../lib/errors.ts';
import type { PageRoutes } from '../pages.ts';
import { auditRoutes } from './audit.tsx';
import { catalogRoutes } from './catalog.tsx';
import { dashboardRoutes } from './dashboard.tsx';
import { detailRoutes } from './details.tsx';
import { adminReader } from './guard.ts';
import { planRoutes } from './plans.tsx';
import { requestsRoutes } from './requests.tsx';
import { searchRoutes } from './search.tsx';
import { signingKeyRoutes } from './signing-keys.tsx';

/**
 * Anything under /admin that no screen answers: signed out → sign-in; a developer → 404 (as
 * for every admin path, so the screens cannot be found by probing); an admin → 404 too.
 */
const adminNotFound: PageRoutes = (router) => {
  router.all(['/', '/{*path}'], adminReader, () => {
    throw new NotFound('page');
  });
};

/**
 * The admin surface (DESIGN §2, issue 8), mounted at /admin by src/app.ts.
 *
 * How to add an admin screen:
 *   1. Views in views/admin/<screen>.tsx, framed by AdminLayout (views/admin/layout.tsx); add
 *      its link to ADMIN_NAV there, with a section `admin-<screen>` for chrome(ctx, section).
 *   2. Routes in src/web/admin/<screen>.tsx as a PageRoutes module, appended to ADMIN_ROUTES
 *      below (before adminNotFound, which must stay last: it answers every path).
 *   3. Guard every route with one of the two guards of ./guard.ts:
 *        - `adminReader` for pages that read (GET, audit log export included): admins and
 *          auditors; 404 for anyone else;
 *          sends an admin or auditor without MFA through the Security set-up first.
 *        - `adminActor(deps)` for every change (POST): admins only (an auditor gets 403), and a
 *          step-up (an authentication code within 5 minutes) — stale, the code prompt keeps
 *          the posted fields and the action goes ahead after it. CSRF is checked before any
 *          route (web/pages.ts); never change anything on a GET.
 *      The audit event of a change carries actorOf(ctx) (the admin's id, request id, address)
 *      and the reason from the form.
 *   4. test/web/admin-routes.test.ts is generated from this list: a new route is tried by a
 *      developer (404), signed out, without CSRF and without step-up the day it is added; a
 *      route with an id parameter must get an object mapped there.
 */
export const ADMIN_ROUTES: PageRoutes[] = [dashboardRoutes, searchRoutes, detailRoutes, requestsRoutes, catalogRoutes, planRoutes, signingKeyRoutes, auditRoutes, adminNotFound];
