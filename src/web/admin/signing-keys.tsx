import { adminNav } from '../../../views/admin/layout.tsx';
import { utcText } from '../../lib/utc-text.ts';
import { durationText, SigningKeysPage } from '../../../views/admin/signing-keys.tsx';
import { ConfirmPage } from '../../../views/components.tsx';
import { listSigningKeys, rotateSigningKeys } from '../../signing/signing-keys.ts';
import { adminPolicy } from '../../policies/admin.ts';
import { textOf } from '../form.ts';
import { actorOf, principalOf, type PageContext } from '../page-state.ts';
import type { PageRoutes } from '../pages.ts';
import { chrome, flashOnConflict, redirectWith, renderPage } from '../render.ts';
import { adminActor, adminReader } from './guard.ts';

// The signing keys screen (issue 8 §1.2, §1.4): the list for admins and auditors; Rotate now
// for admins (step-up, reason, confirmation). The service audits the rotation and refuses a
// second one while a `next` key waits (a message here, nothing created).

const BACK = '/admin/signing-keys';
const REASON_MAX = 500;

export const signingKeyRoutes: PageRoutes = (router, deps) => {
  const show = async (ctx: PageContext, reason?: { value: string; error: string }, status = 200) =>
    renderPage(
      ctx,
      <SigningKeysPage
        chrome={chrome(ctx, 'admin-signing-keys')}
        now={deps.now()}
        keys={await listSigningKeys(deps)}
        canAct={adminPolicy.act(principalOf(ctx))}
        prePublicationMs={deps.config.LATCHKEY_JWKS_CACHE_TTL}
        rotationMs={deps.config.LATCHKEY_SIGNING_ROTATION}
        reason={reason}
      />,
      status,
    );

  router.get('/signing-keys', adminReader, (ctx) => show(ctx));

  router.post('/signing-keys/rotate', adminActor(deps), async (ctx) => {
    const reason = textOf(ctx.state.form.reason).trim();
    if (!reason || reason.length > REASON_MAX) {
      const error = reason ? `Keep the reason under ${REASON_MAX} characters.` : 'Give a reason: it is kept in the audit log.';
      return show(ctx, { value: reason.slice(0, REASON_MAX), error }, 400);
    }
    const keys = await listSigningKeys(deps);
    const next = keys.find((k) => k.state === 'next');
    if (next) return redirectWith(ctx, BACK, { kind: 'error', text: `Nothing changed: a rotation is already under way (key ${next.kid} becomes current at ${utcText(next.activatesAt)}).` });
    if (textOf(ctx.state.form.confirm) !== 'yes') {
      const current = keys.find((k) => k.state === 'current');
      const wait = durationText(deps.config.LATCHKEY_JWKS_CACHE_TTL);
      return renderPage(
        ctx,
        <ConfirmPage
          chrome={chrome(ctx, 'admin-signing-keys')}
          nav={adminNav()}
          title="Rotate the signing key"
          sentence={
            <>
              A new key is published in JWKS now and starts signing in {wait}
              {current ? <>; key <code>{current.kid}</code> then retires and keeps verifying its tokens until they expire</> : null}. No valid token is refused. Reason: “{reason}”.
            </>
          }
          action={`${BACK}/rotate`}
          hidden={{ reason }}
          button="Rotate now"
          cancel={BACK}
        />,
      );
    }
    await flashOnConflict(ctx, BACK, async () => {
      const rotated = await rotateSigningKeys(deps, actorOf(ctx), { reason });
      redirectWith(ctx, BACK, { kind: 'success', text: `Key ${rotated.kid} is published; it starts signing at ${utcText(rotated.activatesAt)} and replaces ${rotated.replaces}.` });
    });
  });
};
