import { MfaSetupPage, RecoveryCodesPage, SecurityPage, SessionsPage, VerifyPage, type SecurityView } from '../../../views/portal/security.tsx';
import {
  beginEnrolment,
  confirmEnrolment,
  disableMfa,
  pendingEnrolment,
  recoveryCodesLeft,
  regenerateRecoveryCodes,
  verifySecondFactor,
} from '../../accounts/mfa.ts';
import { isStaffRole } from '../../accounts/accounts.ts';
import { changePassword } from '../../accounts/passwords.ts';
import { endOtherSessions, endSession, listSessions, startSession } from '../../accounts/sessions.ts';
import { actorEvent, appendAuditEvents } from '../../audit/audit-log.ts';
import type { Deps } from '../../context.ts';
import { authorize } from '../../policies/principal.ts';
import { sessionPolicy } from '../../policies/sessions.ts';
import { textOf } from '../form.ts';
import { accountOf, actorOf, principalOf, type PageContext } from '../page-state.ts';
import { setSessionCookie, type PageRoutes } from '../pages.ts';
import { chrome, redirectWith, renderPage } from '../render.ts';
import { signedIn } from '../signed-in.ts';
import { renderThrottled } from '../throttled.ts';
import { safeNext } from './auth.tsx';

const WRONG_CODE = 'That code is not right, or it was already used. Enter the current code from your app.';
const NO_CODE = 'Enter the code from your authenticator app.';

async function securityView(deps: Deps, ctx: PageContext, errors?: SecurityView['errors']): Promise<SecurityView> {
  const account = accountOf(ctx);
  return {
    now: deps.now(),
    mfaEnabledAt: account.mfaEnabledAt,
    recoveryCodesLeft: account.mfaEnabledAt ? await recoveryCodesLeft(deps, account.id) : 0,
    isAdmin: isStaffRole(account.role),
    errors,
  };
}

async function renderSecurity(deps: Deps, ctx: PageContext, errors?: SecurityView['errors'], status = 200) {
  renderPage(ctx, <SecurityPage chrome={chrome(ctx, 'security')} view={await securityView(deps, ctx, errors)} />, status);
}

/**
 * Two-factor authentication (the sign-in step and its set-up), the password, and sessions.
 * Every code-taking form is throttled like sign-in ('mfa', per account and address) by the
 * services (accounts/mfa.ts, accounts/passwords.ts); a refusal is renderThrottled's 429.
 */
export const securityRoutes: PageRoutes = (router, deps) => {
  // ── Sign-in, second step ────────────────────────────────────────────────────────────
  router.get('/sign-in/verify', async (ctx) => {
    const session = ctx.state.session;
    const next = safeNext(textOf(ctx.query.next as string | string[] | undefined));
    if (session?.stage === 'full') return void ctx.redirect(next ?? '/portal');
    if (!session) return void ctx.redirect('/portal/sign-in');
    renderPage(ctx, <VerifyPage chrome={chrome(ctx)} next={next} />);
  });

  router.post('/sign-in/verify', async (ctx) => {
    const session = ctx.state.session;
    // Only a path of this portal (never another site): see safeNext.
    const next = safeNext(textOf(ctx.state.form.next));
    if (session?.stage === 'full') return redirectWith(ctx, next ?? '/portal');
    if (!session) return redirectWith(ctx, '/portal/sign-in');
    const code = textOf(ctx.state.form.code).trim();
    if (!code) return renderPage(ctx, <VerifyPage chrome={chrome(ctx)} error={NO_CODE} next={next} />, 400);
    const account = await deps.prisma.account.findUnique({ where: { id: session.accountId } });
    if (!account || account.status !== 'active') {
      await endSession(deps, session.id);
      return redirectWith(ctx, '/portal/sign-in');
    }
    const checked = await verifySecondFactor(deps, account.id, code, actorOf(ctx));
    if (!checked.ok) {
      if (checked.reason === 'throttled') return renderThrottled(ctx, checked.retryAfterSeconds);
      return renderPage(ctx, <VerifyPage chrome={chrome(ctx)} error={WRONG_CODE} next={next} />, 400);
    }
    // A new session id at the step up (ASVS 7.2.4); the password-only session ends.
    const { cookie } = await startSession(deps, {
      accountId: account.id,
      stage: 'full',
      teamId: session.teamId,
      replacing: session.id,
      mfa: true,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
    });
    setSessionCookie(ctx, cookie, deps.config.LATCHKEY_SESSION_MAX);
    await deps.audit.record(actorEvent({ ...actorOf(ctx), id: account.id }, 'account.signed_in', 'account', account.id, { mfa: true }));
    redirectWith(ctx, next ?? '/portal');
  });

  // ── Security ────────────────────────────────────────────────────────────────────────
  router.get('/security', signedIn, async (ctx) => {
    await renderSecurity(deps, ctx);
  });

  router.post('/security/mfa/setup', signedIn, async (ctx) => {
    const account = accountOf(ctx);
    if (account.mfaEnabledAt) return redirectWith(ctx, '/portal/security', { kind: 'info', text: 'Two-factor authentication is already on.' });
    const enrolment = await beginEnrolment(deps, account.id);
    renderPage(ctx, <MfaSetupPage chrome={chrome(ctx, 'security')} qrSvg={enrolment.qrSvg} secret={enrolment.secret} />);
  });

  router.post('/security/mfa/confirm', signedIn, async (ctx) => {
    const account = accountOf(ctx);
    const code = textOf(ctx.state.form.code).trim();
    const codes = code ? await confirmEnrolment(deps, account.id, code, actorOf(ctx)) : null;
    if (codes) return renderPage(ctx, <RecoveryCodesPage chrome={chrome(ctx, 'security')} codes={codes} fresh />);
    const pending = await pendingEnrolment(deps, account.id);
    if (!pending) return redirectWith(ctx, '/portal/security', { kind: 'error', text: 'Start the set-up again.' });
    renderPage(ctx, <MfaSetupPage chrome={chrome(ctx, 'security')} qrSvg={pending.qrSvg} secret={pending.secret} error={code ? WRONG_CODE : NO_CODE} />, 400);
  });

  router.post('/security/mfa/regenerate', signedIn, async (ctx) => {
    const account = accountOf(ctx);
    const code = textOf(ctx.state.form.code).trim();
    if (!code) return renderSecurity(deps, ctx, { mfa_regenerate: NO_CODE }, 400);
    const result = await regenerateRecoveryCodes(deps, account.id, code, actorOf(ctx));
    if (!result.ok) {
      if (result.reason === 'throttled') return renderThrottled(ctx, result.retryAfterSeconds);
      return renderSecurity(deps, ctx, { mfa_regenerate: WRONG_CODE }, 400);
    }
    renderPage(ctx, <RecoveryCodesPage chrome={chrome(ctx, 'security')} codes={result.codes} fresh={false} />);
  });

  router.post('/security/mfa/disable', signedIn, async (ctx) => {
    const account = accountOf(ctx);
    const code = textOf(ctx.state.form.code).trim();
    if (!code) return renderSecurity(deps, ctx, { mfa_disable: NO_CODE }, 400);
    const result = await disableMfa(deps, account.id, code, actorOf(ctx));
    if (result.ok) return redirectWith(ctx, '/portal/security', { kind: 'success', text: 'Two-factor authentication is off.' });
    if (result.reason === 'throttled') return renderThrottled(ctx, result.retryAfterSeconds);
    if (result.reason === 'wrong_code') return renderSecurity(deps, ctx, { mfa_disable: WRONG_CODE }, 400);
    const text = result.reason === 'admin' ? 'Admins must keep two-factor authentication on.' : 'Two-factor authentication is already off.';
    redirectWith(ctx, '/portal/security', { kind: 'error', text });
  });

  router.post('/security/password', signedIn, async (ctx) => {
    const account = accountOf(ctx);
    const current = textOf(ctx.state.form.current_password);
    const newPassword = textOf(ctx.state.form.new_password);
    if (!current) return renderSecurity(deps, ctx, { current_password: 'Enter your current password.' }, 400);
    const result = await changePassword(deps, account.id, { current, next: newPassword, keepSessionId: ctx.state.session!.id }, actorOf(ctx));
    if (!result.ok) {
      if (result.reason === 'throttled') return renderThrottled(ctx, result.retryAfterSeconds);
      return renderSecurity(deps, ctx, result.reason === 'wrong_password' ? { current_password: result.error } : { new_password: result.error }, 400);
    }
    const ended = result.sessionsEnded;
    redirectWith(ctx, '/portal/security', {
      kind: 'success',
      text: ended > 0 ? `Password changed. ${ended === 1 ? 'Your other session was' : `Your ${ended} other sessions were`} signed out.` : 'Password changed.',
    });
  });

  // ── Sessions ────────────────────────────────────────────────────────────────────────
  router.get('/sessions', signedIn, async (ctx) => {
    const account = accountOf(ctx);
    const current = ctx.state.session!.id;
    const sessions = await listSessions(deps, account.id);
    renderPage(
      ctx,
      <SessionsPage
        chrome={chrome(ctx, 'sessions')}
        now={deps.now()}
        sessions={sessions.map((s) => ({ id: s.id, createdAt: s.createdAt, lastSeenAt: s.lastSeenAt, ip: s.ip, browser: s.userAgent ?? '', current: s.id === current }))}
      />,
    );
  });

  router.post('/sessions/end-others', signedIn, async (ctx) => {
    const account = accountOf(ctx);
    const ended = await endOtherSessions(deps, account.id, ctx.state.session!.id);
    if (ended > 0) await deps.audit.record(actorEvent(actorOf(ctx), 'session.ended', 'account', account.id, { count: ended, others: true }));
    redirectWith(ctx, '/portal/sessions', { kind: 'success', text: ended === 1 ? 'Your other session was ended.' : `${ended} other sessions were ended.` });
  });

  router.post('/sessions/:id/end', signedIn, async (ctx) => {
    const id = ctx.params.id ?? '';
    const found = /^[0-9a-f]{64}$/.test(id) ? await deps.prisma.session.findUnique({ where: { id } }) : null;
    const session = authorize(found?.endedAt ? null : found, (s) => sessionPolicy(principalOf(ctx), s), 'session');
    const now = deps.now();
    await deps.prisma.$transaction(async (tx) => {
      await tx.session.updateMany({ where: { id: session.id, endedAt: null }, data: { endedAt: now } });
      await appendAuditEvents(tx, [actorEvent(actorOf(ctx), 'session.ended', 'account', session.accountId, { session: session.id.slice(0, 12) })], now);
    });
    if (session.id === ctx.state.session!.id) return redirectWith(ctx, '/portal/sign-in');
    redirectWith(ctx, '/portal/sessions', { kind: 'success', text: 'The session was ended.' });
  });
};
