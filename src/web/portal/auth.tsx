import { h } from 'preact';
import {
  CheckInboxPage,
  InvitedSignUpPage,
  LinkExpiredPage,
  LinkSentPage,
  ResetConfirmPage,
  ResetRequestPage,
  SignInPage,
  SignUpClosedPage,
  SignUpPage,
  UnverifiedPage,
  VerifyEmailPage,
} from '../../../views/portal/auth.tsx';
import { peekLinkToken } from '../../accounts/links.ts';
import { endSession, startSession } from '../../accounts/sessions.ts';
import { audit, signIn } from '../../accounts/sign-in.ts';
import { requestPasswordReset, resendVerification, resetPassword, signUp, signUpMode, validInvitation, verifyEmail } from '../../accounts/sign-up.ts';
import { actorEvent } from '../../audit/audit-log.ts';
import { setSessionCookie, type PageRoutes } from '../pages.ts';
import { actorOf } from '../page-state.ts';
import { textOf } from '../form.ts';
import { chrome, redirectWith, renderPage } from '../render.ts';
import { renderThrottled } from '../throttled.ts';

const SIGN_IN_FAILED = 'Email or password is incorrect.';

/**
 * Where to go after signing in: only a path of this portal, never another site (open
 * redirect) — no scheme, no `//host`, no backslash or control characters.
 */
export function safeNext(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 500) return undefined;
  // The portal's pages and the admin screens (signed out, /admin leads to sign-in with next=/admin…).
  if (!/^\/(portal|admin)(\/|\?|$)/.test(value)) return undefined;
  if (/[\\\u0000-\u001f\u007f]/.test(value) || value.includes('//')) return undefined;
  // Not back into the signed-out pages themselves.
  if (/^\/portal\/(sign-in|sign-up|sign-out)(\/|\?|$)/.test(value)) return undefined;
  return value;
}

/** Signed-out pages: sign up, verify the address, sign in and out, reset the password. */
export const authRoutes: PageRoutes = (router, deps) => {
  // --- Sign up -------------------------------------------------------------------------------

  const modeNotice = () => {
    const mode = signUpMode(deps.config);
    return mode.kind === 'domain' ? `Sign-up is open to ${mode.domain} addresses.` : undefined;
  };

  router.get('/sign-up', async (ctx) => {
    const invite = textOf(ctx.query.invite as string | string[] | undefined) || undefined;
    const next = safeNext(textOf(ctx.query.next as string | string[] | undefined));
    if (signUpMode(deps.config).kind === 'invite' && !(await validInvitation(deps, invite))) {
      return renderPage(ctx, h(SignUpClosedPage, { chrome: chrome(ctx), message: 'Sign-up is by invitation only: open the invitation link a team owner sent you, or ask them to invite you.' }), 403);
    }
    renderPage(ctx, h(SignUpPage, { chrome: chrome(ctx), view: { notice: modeNotice(), invite, next } }));
  });

  router.post('/sign-up', async (ctx) => {
    const form = ctx.state.form;
    const email = textOf(form.email);
    const invite = textOf(form.invite) || undefined;
    const next = safeNext(textOf(form.next));
    const result = await signUp(deps, { email, password: textOf(form.password), invite }, actorOf(ctx));
    if (!result.ok) {
      if (result.reason === 'throttled') return renderThrottled(ctx, result.retryAfterSeconds);
      // Email kept, the password never sent back.
      return renderPage(ctx, h(SignUpPage, { chrome: chrome(ctx), view: { email: email.trim(), errors: result.errors, notice: modeNotice(), invite, next } }), 400);
    }
    if (result.invited && invite) {
      // Same page whether the address had an account or not: sign in, then accept.
      return renderPage(ctx, h(InvitedSignUpPage, { chrome: chrome(ctx), signInHref: `/portal/sign-in?next=${encodeURIComponent(`/portal/invitations/accept?token=${encodeURIComponent(invite)}`)}` }));
    }
    renderPage(ctx, h(CheckInboxPage, { chrome: chrome(ctx), email: result.email }));
  });

  // --- Verify the address ------------------------------------------------------------------------

  // GET changes nothing (mail scanners prefetch links): it shows a button that posts the token.
  router.get('/verify-email', async (ctx) => {
    const token = textOf(ctx.query.token as string | string[] | undefined);
    if (!(await peekLinkToken(deps.prisma, deps, 'verify_email', token))) {
      return renderPage(ctx, h(LinkExpiredPage, { chrome: chrome(ctx), kind: 'verify' }), 410);
    }
    renderPage(ctx, h(VerifyEmailPage, { chrome: chrome(ctx), token }));
  });

  router.post('/verify-email', async (ctx) => {
    const verified = await verifyEmail(deps, textOf(ctx.state.form.token), actorOf(ctx));
    if (!verified) return renderPage(ctx, h(LinkExpiredPage, { chrome: chrome(ctx), kind: 'verify' }), 410);
    redirectWith(ctx, '/portal/sign-in', { kind: 'success', text: 'Your email address is verified. You can sign in now.' });
  });

  router.post('/verify-email/resend', async (ctx) => {
    // The same page at once whether or not the address has an account; the mail follows (result.done).
    const result = await resendVerification(deps, textOf(ctx.state.form.email), actorOf(ctx));
    if (!result.ok) return renderThrottled(ctx, result.retryAfterSeconds);
    renderPage(ctx, h(LinkSentPage, { chrome: chrome(ctx), what: 'verify' }));
  });

  // --- Sign in and out ---------------------------------------------------------------------------

  router.get('/sign-in', async (ctx) => {
    const next = safeNext(textOf(ctx.query.next as string | string[] | undefined));
    if (ctx.state.session?.stage === 'full') return void ctx.redirect(next ?? '/portal');
    renderPage(ctx, h(SignInPage, { chrome: chrome(ctx), view: { next } }));
  });

  router.post('/sign-in', async (ctx) => {
    const form = ctx.state.form;
    const email = textOf(form.email).trim();
    const next = safeNext(textOf(form.next));
    const actor = actorOf(ctx);
    const result = await signIn(deps, { email, password: textOf(form.password), ip: ctx.ip }, actor);
    if (!result.ok) {
      if (result.reason === 'throttled') return renderThrottled(ctx, result.retryAfterSeconds);
      if (result.reason === 'unverified') return renderPage(ctx, h(UnverifiedPage, { chrome: chrome(ctx), email: result.email }), 403);
      return renderPage(ctx, h(SignInPage, { chrome: chrome(ctx), view: { email, error: SIGN_IN_FAILED, next } }), 400);
    }
    const account = result.account;
    const stage = account.mfaEnabledAt ? 'mfa' : 'full';
    // A new session id at sign-in; whatever session this browser had ends.
    const { cookie, session } = await startSession(deps, {
      accountId: account.id,
      stage,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      replacing: ctx.state.session?.id ?? null,
    });
    setSessionCookie(ctx, cookie, deps.config.LATCHKEY_SESSION_MAX);
    // The second-factor step records the sign-in itself once the code is accepted.
    await audit(
      deps,
      actorEvent({ ...actor, id: account.id }, stage === 'full' ? 'account.signed_in' : 'account.password_verified', 'account', account.id, { sessionId: session.id.slice(0, 12) }),
    );
    ctx.status = 303;
    if (stage === 'mfa') return void ctx.redirect(next ? `/portal/sign-in/verify?next=${encodeURIComponent(next)}` : '/portal/sign-in/verify');
    ctx.redirect(next ?? '/portal');
  });

  router.post('/sign-out', async (ctx) => {
    const session = ctx.state.session;
    if (session) {
      await endSession(deps, session.id);
      await audit(deps, actorEvent(actorOf(ctx), 'account.signed_out', 'account', session.accountId));
    }
    setSessionCookie(ctx, null, 0);
    redirectWith(ctx, '/portal/sign-in', { kind: 'info', text: 'Signed out.' });
  });

  // --- Reset the password ------------------------------------------------------------------------

  router.get('/reset-password', async (ctx) => {
    renderPage(ctx, h(ResetRequestPage, { chrome: chrome(ctx) }));
  });

  router.post('/reset-password', async (ctx) => {
    const email = textOf(ctx.state.form.email).trim();
    if (!email) return renderPage(ctx, h(ResetRequestPage, { chrome: chrome(ctx), error: 'Enter your email address.' }), 400);
    // Throttled in the service (every request counts: each may send a mail). The same page at
    // once for any address: the link's transaction, audit and mail run after it (result.done).
    const result = await requestPasswordReset(deps, email, actorOf(ctx));
    if (!result.ok) return renderThrottled(ctx, result.retryAfterSeconds);
    renderPage(ctx, h(LinkSentPage, { chrome: chrome(ctx), what: 'reset' }));
  });

  router.get('/reset-password/confirm', async (ctx) => {
    const token = textOf(ctx.query.token as string | string[] | undefined);
    const link = await peekLinkToken(deps.prisma, deps, 'reset_password', token);
    if (!link) return renderPage(ctx, h(LinkExpiredPage, { chrome: chrome(ctx), kind: 'reset' }), 410);
    renderPage(ctx, h(ResetConfirmPage, { chrome: chrome(ctx), token, email: link.email }));
  });

  router.post('/reset-password/confirm', async (ctx) => {
    const token = textOf(ctx.state.form.token);
    const result = await resetPassword(deps, token, textOf(ctx.state.form.password), actorOf(ctx));
    if (result.ok) {
      // Any session this browser held ended with the others.
      setSessionCookie(ctx, null, 0);
      return redirectWith(ctx, '/portal/sign-in', { kind: 'success', text: 'Your password is changed and every session was signed out. Sign in with the new password.' });
    }
    if (result.reason === 'link') return renderPage(ctx, h(LinkExpiredPage, { chrome: chrome(ctx), kind: 'reset' }), 410);
    const link = await peekLinkToken(deps.prisma, deps, 'reset_password', token);
    renderPage(ctx, h(ResetConfirmPage, { chrome: chrome(ctx), token, email: link?.email ?? '', error: result.error }), 400);
  });
};
