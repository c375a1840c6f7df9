import type { Next } from 'koa';
import { h } from 'preact';
import { StepUpPage } from '../../../views/admin/layout.tsx';
import { ErrorPage } from '../../../views/layout.tsx';
import { verifySecondFactor } from '../../accounts/mfa.ts';
import { recordStepUp, steppedUp } from '../../accounts/sessions.ts';
import type { Deps } from '../../context.ts';
import { NotFound } from '../../lib/errors.ts';
import { adminPolicy } from '../../policies/admin.ts';
import { textOf } from '../form.ts';
import { accountOf, actorOf, principalOf, type PageContext } from '../page-state.ts';
import { chrome, redirectWith, renderPage } from '../render.ts';
import { signedIn } from '../signed-in.ts';
import { renderThrottled } from '../throttled.ts';

/** An auditor's (forged) change: they may see the page, so a 403 says it plainly; nothing changes. */
function refuseReadOnly(ctx: PageContext): void {
  const message = 'Auditors can read every admin page but change nothing. Ask an admin to make this change.';
  renderPage(ctx, h(ErrorPage, { chrome: chrome(ctx), status: 403, title: 'Read-only access', message }), 403);
}

/**
 * Every admin page: signed in (else sign-in, as in the portal); an admin or an auditor (anyone
 * else: 404, so the screens cannot be found by probing); and two-factor authentication on —
 * DESIGN §2: "an admin without MFA is sent through this set-up before any admin page".
 */
export async function adminReader(ctx: PageContext, next: Next): Promise<void> {
  await signedIn(ctx, async () => {
    if (!adminPolicy.read(principalOf(ctx))) throw new NotFound('page');
    if (!accountOf(ctx).mfaEnabledAt) {
      return redirectWith(ctx, '/portal/security', { kind: 'info', text: 'Turn on two-factor authentication first: the admin screens need it.' });
    }
    await next();
  });
}

// Fields never carried through the step-up prompt: codes and anything secret-like.
const NOT_CARRIED = /^(_csrf|step_up_code|code)$|password|secret|token/i;

/**
 * Every admin change (each POST route of the admin screens): an admin (an auditor is refused
 * with 403, a developer gets 404), then a recent step-up — an authentication code checked in
 * this session within five minutes. Stale, the code prompt is shown with the posted fields
 * carried along; its answer posts back here and, once the code is right, the action goes ahead.
 */
export function adminActor(deps: Deps) {
  return async (ctx: PageContext, next: Next): Promise<void> => {
    await adminReader(ctx, async () => {
      if (!adminPolicy.act(principalOf(ctx))) return refuseReadOnly(ctx);
      const session = ctx.state.session!;
      if (steppedUp(session, deps.now())) return next();
      const form = ctx.state.form;
      const code = textOf(form.step_up_code).trim();
      const hidden: [string, string][] = Object.entries(form).flatMap(([name, value]) =>
        NOT_CARRIED.test(name) ? [] : (Array.isArray(value) ? value : [value]).map((one): [string, string] => [name, one]),
      );
      const prompt = (status: number, error?: string) =>
        renderPage(ctx, h(StepUpPage, { chrome: chrome(ctx), action: ctx.path, cancel: ctx.path.replace(/\/[^/]+$/, '') || '/admin', hidden, error }), status);
      if (!code) return prompt(200);
      const checked = await verifySecondFactor(deps, accountOf(ctx).id, code, actorOf(ctx));
      if (!checked.ok) {
        if (checked.reason === 'throttled') return renderThrottled(ctx, checked.retryAfterSeconds);
        return prompt(400, 'That code is not right, or it was already used. Enter the current code from your app.');
      }
      session.mfaAt = await recordStepUp(deps, session.id);
      delete form.step_up_code;
      await next();
    });
  };
}
