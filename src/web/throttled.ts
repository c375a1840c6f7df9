import { h } from 'preact';
import { ThrottledPage } from '../../views/portal/auth.tsx';
import type { PageContext } from './page-state.ts';
import { chrome, renderPage } from './render.ts';

/**
 * The one answer to a try refused by the brute-force limits (limits/throttle.ts), on every page:
 * 429, Retry-After in seconds, and a page that says how many minutes to wait.
 */
export function renderThrottled(ctx: PageContext, retryAfterSeconds: number): void {
  ctx.set('Retry-After', String(retryAfterSeconds));
  renderPage(ctx, h(ThrottledPage, { chrome: chrome(ctx), minutes: Math.max(1, Math.ceil(retryAfterSeconds / 60)) }), 429);
}
