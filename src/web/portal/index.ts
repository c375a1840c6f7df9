import type { PageRoutes } from '../pages.ts';
import { activityRoutes } from './activity.tsx';
import { applicationsRoutes } from './applications.tsx';
import { authRoutes } from './auth.tsx';
import { keysRoutes } from './keys.tsx';
import { overviewRoutes } from './overview.tsx';
import { requestsRoutes } from './requests.tsx';
import { securityRoutes } from './security.tsx';
import { teamRoutes } from './team.tsx';

/** Every module of the portal's pages, in one list: a new page module is added here. */
export const PORTAL_ROUTES: PageRoutes[] = [authRoutes, overviewRoutes, securityRoutes, keysRoutes, applicationsRoutes, requestsRoutes, teamRoutes, activityRoutes];
