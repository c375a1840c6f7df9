import type { PageRoutes } from '../pages.ts';
import { overviewRoutes } from './overview.tsx';

/** Every module of the portal's pages, in one list: a new page module is added here. */
export const PORTAL_ROUTES: PageRoutes[] = [overviewRoutes];
