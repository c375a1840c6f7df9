import type { Principal } from './principal.ts';

/** A session is its own person's: nobody else (an admin neither) sees or ends it from the portal. */
export const sessionPolicy = (principal: Principal, session: { accountId: string }): boolean => session.accountId === principal.accountId;
