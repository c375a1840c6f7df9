import type { Context } from 'koa';
import type { FlashMessage } from '../../views/components.tsx';
import type { Viewer } from '../../views/layout.tsx';
import type { Actor } from '../actor.ts';
import type { LiveSession } from '../accounts/sessions.ts';
import type { Account, Session } from '../db/database.ts';
import type { FormData } from './form.ts';
import type { Principal } from '../policies/principal.ts';

/** What the page middleware (web/pages.ts) puts on ctx.state for every page route. */
export interface PageState {
  requestId: string;
  csrf: string;
  flash: FlashMessage | null;
  /** The parsed body of a POST, after its CSRF check (web/pages.ts). */
  form: FormData;
  secureCookies: boolean;
  /** The live session, whatever its stage (null when signed out). */
  session: Session | null;
  /** Its account and teams, loaded with it (web/pages.ts); `signedIn` decides what they may see. */
  sessionAccount: LiveSession['account'] | null;
  /** Set once fully signed in (web/pages.ts `signedIn`). */
  account?: Account;
  principal?: Principal;
  viewer?: Viewer;
}

export type PageContext = Context & { state: PageState };

/** The person behind this request, for policies and the audit trail. */
export function actorOf(ctx: PageContext): Actor {
  return { type: 'account', id: ctx.state.account?.id ?? ctx.state.session?.accountId, requestId: ctx.state.requestId, ip: ctx.ip };
}

/** The signed-in account (routes behind `signedIn` only). */
export function accountOf(ctx: PageContext): Account {
  if (!ctx.state.account) throw new Error('accountOf used on a route that is not behind signedIn');
  return ctx.state.account;
}

/** The team the person is working in: set by `signedIn`, checked for membership there. */
export function teamOf(ctx: PageContext): Viewer['team'] {
  if (!ctx.state.viewer) throw new Error('teamOf used on a route that is not behind signedIn');
  return ctx.state.viewer.team;
}

/** The signed-in person as policies see them (routes behind `signedIn` only). */
export function principalOf(ctx: PageContext): Principal {
  if (!ctx.state.principal) throw new Error('principalOf used on a route that is not behind signedIn');
  return ctx.state.principal;
}
