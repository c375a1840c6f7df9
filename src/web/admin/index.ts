import { NotFound } from '../../lib/errors.ts';
import type { PageRoutes } from '../pages.ts';
import { signedIn } from '../signed-in.ts';

/**
 * The admin surface (DESIGN §2): signed out, every /admin path leads to sign-in; signed in, a
 * developer gets 404 on all of them, so admin pages cannot be found by probing. The admin
 * screens themselves come with issue 8; until then admins get the same 404.
 */
const adminGate: PageRoutes = (router) => {
  router.all(['/', '/{*path}'], signedIn, () => {
    throw new NotFound('page');
  });
};

export const ADMIN_ROUTES: PageRoutes[] = [adminGate];
