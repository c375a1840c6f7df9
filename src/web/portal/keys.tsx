import { z } from 'zod';
import {
  KeyPage,
  KeyShownOncePage,
  KeysListPage,
  NewKeyPage,
  type NewKeyValues,
} from '../../../views/portal/keys.tsx';
import { ConfirmPage, Time } from '../../../views/components.tsx';
import { DroppedScopes, EXPIRY_CHOICES, type ScopeCatalog } from '../../../views/credential-fields.tsx';
import { Conflict, LatchkeyError } from '../../lib/errors.ts';
import { revokeApiKey, rotateApiKey } from '../../credentials/api-keys.ts';
import { credentialName, NameTaken } from '../../credentials/names.ts';
import { KEY_ID } from '../../credentials/api-key-format.ts';
import { API_KEY_VIEW_SELECT, presentApiKey } from '../../credentials/presenters.ts';
import { usageSeries } from '../../credentials/usage.ts';
import { listTeamKeys, type KeyListTab } from '../../credentials/key-list.ts';
import { issueOrRequest } from '../../credentials/requests.ts';
import type { Deps } from '../../context.ts';
import { credentialPolicy } from '../../policies/credentials.ts';
import { authorize } from '../../policies/principal.ts';
import { listOf, parseForm, textOf, type FieldErrors } from '../form.ts';
import { actorOf, principalOf, teamOf, type PageContext } from '../page-state.ts';
import type { PageRoutes } from '../pages.ts';
import { chrome, flashOnConflict, redirectWith, renderPage } from '../render.ts';
import { signedIn } from '../signed-in.ts';
import { retiredAmong } from '../../credentials/scopes.ts';
import { audiencesAreTyped, audiencesText, choiceValues, chosenScopes, graceForm, graceOf, scopeCatalog, scopesProblem } from './credential-forms.ts';

// A page of the key list: a screenful, cheap to render whatever the team holds (bench/portal.ts).
export const KEY_LIST_PAGE_SIZE = 25;

const KEY_NAME_TAKEN = 'A live key of this team already has this name. Choose another.';

const newKeyForm = z.object({
  name: credentialName,
  scopes: chosenScopes,
  audiences: audiencesText,
  expires: z.enum(choiceValues(EXPIRY_CHOICES), { message: 'Choose when the key expires.' }),
});

async function loadKey(deps: Deps, ctx: PageContext, id: string, rule: 'read' | 'change') {
  const principal = principalOf(ctx);
  const row = KEY_ID.test(id) ? await deps.prisma.apiKey.findUnique({ where: { id }, select: API_KEY_VIEW_SELECT }) : null;
  const key = authorize(row, (k) => credentialPolicy[rule](principal, k), 'api key');
  return presentApiKey(key, deps.now());
}

export const keysRoutes: PageRoutes = (router, deps) => {
  router.get('/keys', signedIn, async (ctx) => {
    const team = teamOf(ctx);
    const now = deps.now();
    const tab: KeyListTab = ctx.query.show === 'inactive' ? 'inactive' : 'live';
    const page = Math.min(Math.max(1, Number.parseInt(String(ctx.query.page ?? '1'), 10) || 1), 10_000);
    const list = await listTeamKeys(deps, { teamId: team.id, tab, page, pageSize: KEY_LIST_PAGE_SIZE, now });
    const keys = list.keys.map((row) => presentApiKey(row, now));
    renderPage(
      ctx,
      <KeysListPage chrome={chrome(ctx, 'keys')} now={now} keys={keys} tab={tab} counts={list.counts} page={page} hasNext={list.hasNext} />,
    );
  });

  const renderNew = async (ctx: PageContext, values: NewKeyValues, errors: FieldErrors, status: number, catalog?: ScopeCatalog) =>
    renderPage(
      ctx,
      <NewKeyPage chrome={chrome(ctx, 'keys')} catalog={catalog ?? (await scopeCatalog(deps))} values={values} errors={errors} defaultAudience={deps.config.LATCHKEY_DEFAULT_AUDIENCE} />,
      status,
    );

  router.get('/keys/new', signedIn, (ctx) => renderNew(ctx, { name: '', scopes: [], audiences: '', expires: '90d' }, {}, 200));

  router.post('/keys', signedIn, async (ctx) => {
    const form = ctx.state.form;
    const catalog = await scopeCatalog(deps);
    // The audience field is only offered (and read) while the catalog has no API.
    const values: NewKeyValues = { name: textOf(form.name), scopes: listOf(form.scopes), audiences: audiencesAreTyped(catalog) ? textOf(form.audiences) : '', expires: textOf(form.expires) || '90d' };
    const parsed = parseForm(newKeyForm, values);
    const errors: FieldErrors = parsed.ok ? {} : parsed.errors;
    const team = teamOf(ctx);
    const scopesError = scopesProblem(catalog, values.scopes);
    if (scopesError) errors.scopes ??= scopesError;
    if (!parsed.ok || Object.keys(errors).length > 0) return renderNew(ctx, values, errors, 400, catalog);

    const { name, scopes, audiences, expires } = parsed.value;
    const expiresInMs = EXPIRY_CHOICES.find((c) => c.value === expires)!.ms;
    let outcome;
    try {
      outcome = await issueOrRequest(deps, { kind: 'api_key', teamId: team.id, requestedById: principalOf(ctx).accountId, name, scopes, audiences, expiresInMs }, actorOf(ctx));
    } catch (error) {
      if (error instanceof NameTaken) return renderNew(ctx, values, { name: KEY_NAME_TAKEN }, 400);
      // Retired between the check above and the grant (scopes.ts: assertGrantableScopes).
      if (error instanceof LatchkeyError && error.code === 'invalid_scope') return renderNew(ctx, values, { scopes: `${error.description}. Choose from the list.` }, 400);
      throw error;
    }
    if ('requested' in outcome) return redirectWith(ctx, `/portal/requests/${outcome.requested}`, { kind: 'success', text: 'Request sent: an admin will review it.' });
    const { issued } = outcome;
    const now = deps.now();
    const key = presentApiKey({ ...issued, name, teamId: team.id, createdAt: now, lastUsedAt: null, expiresAt: issued.expires_at ? new Date(issued.expires_at) : null, revokedAt: null, replacedById: null }, now);
    // Shown once, in this response: the key is never stored and never redirected through.
    renderPage(ctx, <KeyShownOncePage chrome={chrome(ctx, 'keys')} now={now} title="Your new API key" apiKey={key} secret={issued.key} />);
  });

  router.get('/keys/:id', signedIn, async (ctx) => {
    const key = await loadKey(deps, ctx, ctx.params.id!, 'read');
    const canChange = credentialPolicy.change(principalOf(ctx), key);
    const [usage, retiredScopes] = await Promise.all([usageSeries(deps, 'api_key', key.id), key.live ? retiredAmong(deps.prisma, key.scopes) : []]);
    renderPage(ctx, <KeyPage chrome={chrome(ctx, 'keys')} now={deps.now()} apiKey={key} retiredScopes={retiredScopes} canChange={canChange} usage={usage} />);
  });

  router.post('/keys/:id/rotate', signedIn, async (ctx) => {
    const key = await loadKey(deps, ctx, ctx.params.id!, 'change');
    const back = `/portal/keys/${key.id}`;
    const parsed = parseForm(graceForm, { grace: textOf(ctx.state.form.grace) });
    if (!parsed.ok) return redirectWith(ctx, back, { kind: 'error', text: parsed.errors.grace ?? 'Choose how long the old key keeps working.' });
    const { grace } = parsed.value;
    const graceMs = graceOf(grace).ms;
    if (textOf(ctx.state.form.confirm) !== 'yes') {
      const now = deps.now();
      const graceEnd = new Date(now.getTime() + graceMs);
      const until = key.expiresAt && key.expiresAt < graceEnd ? key.expiresAt : graceEnd;
      const dropped = await retiredAmong(deps.prisma, key.scopes);
      return renderPage(
        ctx,
        <ConfirmPage
          chrome={chrome(ctx, 'keys')}
          title={`Rotate key ${key.masked}`}
          description={key.name}
          sentence={
            <>
              <code>{key.prefix}</code> {graceMs === 0 ? 'stops working now' : <>keeps working until <Time at={until} now={now} /></>}. The new key is shown once.
              <DroppedScopes scopes={dropped} />
            </>
          }
          action={`/portal/keys/${key.id}/rotate`}
          hidden={{ grace }}
          button="Rotate"
          cancel={back}
        />,
      );
    }
    await flashOnConflict(ctx, back, async () => {
      const rotated = await rotateApiKey(deps, key.id, { graceMs }, actorOf(ctx));
      const now = deps.now();
      const successor = presentApiKey(
        { ...rotated, name: key.name, teamId: key.teamId, createdAt: now, lastUsedAt: null, expiresAt: rotated.expires_at ? new Date(rotated.expires_at) : null, revokedAt: null, replacedById: null },
        now,
      );
      renderPage(
        ctx,
        <KeyShownOncePage
          chrome={chrome(ctx, 'keys')}
          now={now}
          title="Your rotated API key"
          apiKey={successor}
          secret={rotated.key}
          previous={{ prefix: key.prefix, until: new Date(rotated.previous_expires_at) }}
        />,
      );
    });
  });

  router.post('/keys/:id/revoke', signedIn, async (ctx) => {
    const key = await loadKey(deps, ctx, ctx.params.id!, 'change');
    const back = `/portal/keys/${key.id}`;
    const reason = textOf(ctx.state.form.reason).trim().slice(0, 500);
    if (textOf(ctx.state.form.confirm) !== 'yes') {
      return renderPage(
        ctx,
        <ConfirmPage
          chrome={chrome(ctx, 'keys')}
          title={`Revoke key ${key.masked}`}
          description={key.name}
          sentence={
            <>
              Revoke key <code>{key.prefix}</code> — services using it will be refused within a second. This cannot be undone.
            </>
          }
          action={`/portal/keys/${key.id}/revoke`}
          hidden={{ reason }}
          button="Revoke"
          danger
          cancel={back}
        />,
      );
    }
    if (key.revokedAt) return redirectWith(ctx, back, { kind: 'error', text: 'Nothing changed: this key was already revoked.' });
    await flashOnConflict(ctx, back, async () => {
      // A teammate may have revoked it since the check above: only one of us changed it.
      if (!(await revokeApiKey(deps, key.id, { reason: reason || undefined }, actorOf(ctx))).changed) throw new Conflict('this key was already revoked');
      redirectWith(ctx, back, { kind: 'success', text: `Key ${key.prefix} revoked: services using it are refused from now on.` });
    });
  });
};
