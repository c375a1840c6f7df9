import { timingSafeEqual, randomBytes } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { h } from 'preact';
import { ZodError } from 'zod';
import { ErrorPage } from '../../views/layout.tsx';
import { findSession } from '../accounts/sessions.ts';
import type { Deps } from '../context.ts';
import { isDatabaseUnavailable, LatchkeyError, TemporarilyUnavailable } from '../lib/errors.ts';
import { databaseUnreachable } from '../lib/failure-log.ts';
import { readPageForm } from './form.ts';
import type { PageContext } from './page-state.ts';
import { chrome, renderPage, takeFlash } from './render.ts';

// DESIGN §4 People: no inline script, nothing framed, forms post only to us.
const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/** Cookie names: `__Host-` (Secure, path /, no domain) when served over TLS (ASVS 3.3.1). */
export function cookieNames(secure: boolean) {
  const prefix = secure ? '__Host-' : '';
  return { session: `${prefix}latchkey-session`, csrf: `${prefix}latchkey-csrf` };
}

export interface CookieOptions {
  httpOnly: true;
  sameSite: 'lax';
  secure: boolean;
  path: '/';
  overwrite: true;
  maxAge?: number;
}

export const cookieOptions = (ctx: Context): CookieOptions => ({ httpOnly: true, sameSite: 'lax', secure: ctx.state.secureCookies, path: '/', overwrite: true });

/** The one place the session cookie is set (at each sign-in step) or cleared (sign-out). */
export function setSessionCookie(ctx: Context, value: string | null, maxAgeMs: number): void {
  ctx.cookies.set(cookieNames(ctx.state.secureCookies).session, value, { ...cookieOptions(ctx), maxAge: value === null ? 0 : maxAgeMs });
}

const PAGE_ERRORS: Record<number, [string, string]> = {
  400: ['Bad request', 'The request could not be understood. Go back and try again.'],
  403: ['This form has expired', 'For your protection the form was not accepted: it was stale or came from another site. Go back, reload the page and try again.'],
  404: ['Page not found', 'There is nothing here, or you do not have access to it.'],
  405: ['Method not allowed', 'This page cannot be used that way.'],
  413: ['Too much data', 'The form was larger than we accept.'],
  429: ['Too many attempts', 'Please wait a little and try again.'],
  500: ['Something went wrong', 'An unexpected error happened on our side. It has been logged; please try again.'],
  503: ['Temporarily unavailable', 'Latchkey cannot reach its database right now. Please try again in a minute.'],
};

export function renderErrorPage(ctx: Context, status: number, message?: string): void {
  const [title, fallback] = PAGE_ERRORS[status] ?? PAGE_ERRORS[500]!;
  renderPage(ctx, h(ErrorPage, { chrome: chrome(ctx), status, title, message: message ?? fallback }), status);
}

/** An HTML error page for anything a page route throws: never a stack trace, never a 500 for bad input. */
function pageErrors(deps: Deps): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) renderErrorPage(ctx, 404);
    } catch (thrown) {
      ctx.state.csrf ??= '';
      if (thrown instanceof ZodError) return renderErrorPage(ctx, 400);
      if (thrown instanceof TemporarilyUnavailable || isDatabaseUnavailable(thrown)) {
        // Logged once per outage, not per page view (lib/failure-log.ts).
        if (!(thrown instanceof TemporarilyUnavailable)) databaseUnreachable(deps.log, thrown);
        // People, not programs: half a minute rather than the APIs' few seconds.
        ctx.set('Retry-After', '30');
        return renderErrorPage(ctx, 503);
      }
      if (thrown instanceof LatchkeyError && thrown.code !== 'server_error') {
        if (thrown.detail) deps.log.info({ code: thrown.code, detail: thrown.detail, requestId: ctx.state.requestId }, 'page request rejected');
        return renderErrorPage(ctx, thrown.status, thrown.code === 'not_found' ? undefined : thrown.status < 500 ? thrown.description : undefined);
      }
      deps.log.error({ err: thrown, requestId: ctx.state.requestId }, 'page failed');
      renderErrorPage(ctx, 500);
    }
  };
}

/**
 * CSRF (ASVS 3.5): a token per form, derived from the session (or, signed out, from a random
 * cookie of its own), plus a same-origin check of Origin / Sec-Fetch-Site on every POST.
 */
function csrfToken(deps: Deps, ctx: Context): string {
  const names = cookieNames(ctx.state.secureCookies);
  let basis: string;
  if (ctx.state.session) basis = `session:${ctx.state.session.id}`;
  else {
    let anonymous = ctx.cookies.get(names.csrf);
    if (!anonymous || !/^[A-Za-z0-9_-]{32}$/.test(anonymous)) {
      anonymous = randomBytes(24).toString('base64url');
      ctx.cookies.set(names.csrf, anonymous, cookieOptions(ctx));
    }
    basis = `anonymous:${anonymous}`;
  }
  return Buffer.from(deps.keyring.digest(`csrf:${basis}`)).toString('base64url');
}

export function sameOrigin(ctx: Context, issuer: string): boolean {
  const own = new URL(issuer).origin;
  const origin = ctx.get('origin');
  if (origin && origin !== own) return false;
  const site = ctx.get('sec-fetch-site');
  if (site && site !== 'same-origin' && site !== 'none') return false;
  // Browsers without Sec-Fetch-Site still send a Referer on a link followed from another site.
  const referer = ctx.get('referer');
  return !referer || URL.parse(referer)?.origin === own;
}

/** Compares the token a form carried with this request's, in constant time. */
export function csrfValid(ctx: Context, presented: unknown): boolean {
  if (typeof presented !== 'string') return false;
  const expected = Buffer.from(ctx.state.csrf);
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Per-request page state: headers, session, flash, CSRF token. */
function pageState(deps: Deps): Middleware {
  const secure = deps.config.LATCHKEY_ISSUER.startsWith('https://');
  const names = cookieNames(secure);
  return async (ctx: Context, next: Next) => {
    ctx.set('Content-Security-Policy', PAGE_CSP);
    // Not no-referrer: with it, browsers send `Origin: null` on form posts, and the same-origin
    // check below needs the real origin. Other sites still learn nothing (links carry tokens).
    ctx.set('Referrer-Policy', 'same-origin');
    ctx.set('Cache-Control', 'no-store');
    // Behind a TLS-terminating proxy the hop to us is plain HTTP; the issuer says how people reach us.
    if (secure) ctx.cookies.secure = true;
    ctx.state.secureCookies = secure;
    const cookie = ctx.cookies.get(names.session);
    const live = cookie ? await findSession(deps, cookie) : null;
    ctx.state.session = live?.session ?? null;
    ctx.state.sessionAccount = live?.account ?? null;
    ctx.state.flash = takeFlash(ctx);
    ctx.state.csrf = csrfToken(deps, ctx);
    // Every state change is a POST (no change on GET), and every POST passes here first.
    if (ctx.method === 'POST') {
      const form = await readPageForm(ctx);
      if (!sameOrigin(ctx, deps.config.LATCHKEY_ISSUER) || !csrfValid(ctx, form._csrf)) {
        deps.log.info({ requestId: ctx.state.requestId, path: ctx.path }, 'form refused: CSRF check failed');
        return renderErrorPage(ctx, 403);
      }
      ctx.state.form = form;
    }
    await next();
  };
}

export type PageRouter = Router<PageContext['state'], PageContext>;

/** A module of page routes: registers its routes on the surface's router. */
export type PageRoutes = (router: PageRouter, deps: Deps) => void;

/** The surface's router: every module registered under the prefix (one registration, for serving and for listing). */
function surfaceRouter(deps: Deps, prefix: string, modules: PageRoutes[]): PageRouter {
  const router: PageRouter = new Router({ prefix });
  for (const register of modules) register(router, deps);
  return router;
}

/**
 * Every (method, path) the surface serves, read from the router itself (HEAD, implied by GET,
 * left out): the security tests are generated from it, so a new route is covered the day it is added.
 */
export function routeTable(deps: Deps, prefix: string, modules: PageRoutes[]): { method: string; path: string }[] {
  return surfaceRouter(deps, prefix, modules).stack.flatMap((layer) =>
    typeof layer.path === 'string' ? layer.methods.filter((method) => method !== 'HEAD').map((method) => ({ method, path: layer.path as string })) : [],
  );
}

/**
 * A page surface (`/portal`, `/admin`): its routes behind the page
 * middleware, for every path under its prefix — an unknown path gets the 404 page too.
 */
export function pageSurface(deps: Deps, prefix: string, modules: PageRoutes[]): Middleware {
  const router = surfaceRouter(deps, prefix, modules);
  const chain = [pageErrors(deps), pageState(deps), router.routes() as Middleware, router.allowedMethods() as Middleware];
  const run = (ctx: Context, index: number): Promise<void> => (index === chain.length ? Promise.resolve() : Promise.resolve(chain[index]!(ctx, () => run(ctx, index + 1))));
  return (ctx, next) => (ctx.path === prefix || ctx.path.startsWith(`${prefix}/`) ? run(ctx, 0) : next());
}
