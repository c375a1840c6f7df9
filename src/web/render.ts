import type { Context } from 'koa';
import type { VNode } from 'preact';
import { render } from 'preact-render-to-string';
import type { FlashMessage } from '../../views/components.tsx';
import type { Chrome, Section } from '../../views/layout.tsx';
import { LatchkeyError } from '../lib/errors.ts';

/** Renders a page: escaping by default (preact), never cached (pages can show secrets once). */
export function renderPage(ctx: Context, page: VNode<any>, status = 200): void {
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = `<!doctype html>${render(page)}`;
}

/** The frame of the current request for a view: CSRF token, flash, the signed-in person. */
export function chrome(ctx: Context, section?: Section): Chrome {
  return { csrf: ctx.state.csrf, flash: ctx.state.flash ?? null, viewer: ctx.state.viewer ?? null, section };
}

const FLASH_COOKIE = 'lk_flash';

/** A message for the next page (post/redirect/get), in a short-lived cookie. */
export function setFlash(ctx: Context, flash: FlashMessage): void {
  ctx.cookies.set(FLASH_COOKIE, Buffer.from(JSON.stringify(flash)).toString('base64url'), {
    httpOnly: true,
    sameSite: 'lax',
    secure: ctx.state.secureCookies,
    maxAge: 60_000,
    overwrite: true,
    path: '/',
  });
}

export function takeFlash(ctx: Context): FlashMessage | null {
  const raw = ctx.cookies.get(FLASH_COOKIE);
  if (!raw) return null;
  ctx.cookies.set(FLASH_COOKIE, null, { path: '/', overwrite: true });
  try {
    const value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as FlashMessage;
    // Only the text is shown, escaped; anything else is ignored.
    if (typeof value.text === 'string' && ['success', 'error', 'info'].includes(value.kind)) return { kind: value.kind, text: value.text.slice(0, 300) };
  } catch {}
  return null;
}

/** Post/redirect/get, with a message for the page it lands on. */
export function redirectWith(ctx: Context, location: string, flash?: FlashMessage): void {
  if (flash) setFlash(ctx, flash);
  ctx.status = 303;
  ctx.redirect(location);
}

/**
 * Runs a state change; a conflict or refused input (already rotated, revoked, expired) is the
 * person's news, not a server fault: back to `back` with the service's description.
 */
export async function flashOnConflict(ctx: Context, back: string, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (error instanceof LatchkeyError && (error.code === 'conflict' || error.code === 'invalid_request')) {
      return redirectWith(ctx, back, { kind: 'error', text: `Nothing changed: ${error.description}.` });
    }
    throw error;
  }
}
