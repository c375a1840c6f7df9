import { z } from 'zod';
import {
  ApplicationPage,
  ApplicationShownOncePage,
  ApplicationsListPage,
  NewApplicationPage,
  type NewApplicationValues,
} from '../../../views/portal/applications.tsx';
import { CLIENT_ID, createClientInput, revokeClient, rotateClientSecret } from '../../credentials/clients.ts';
import { credentialName, NameTaken } from '../../credentials/names.ts';
import { ConfirmPage, Time } from '../../../views/components.tsx';
import { listTeamApplications, type ApplicationListTab } from '../../credentials/application-list.ts';
import { APPLICATION_VIEW_SELECT, presentApplication } from '../../credentials/presenters.ts';
import { usageSeries } from '../../credentials/usage.ts';
import { issueOrRequest, RequestNeedsClientSecret } from '../../credentials/requests.ts';
import type { Deps } from '../../context.ts';
import { credentialPolicy } from '../../policies/credentials.ts';
import { authorize } from '../../policies/principal.ts';
import { listOf, parseForm, textOf, type FieldErrors } from '../form.ts';
import { actorOf, principalOf, teamOf, type PageContext } from '../page-state.ts';
import type { PageRoutes } from '../pages.ts';
import { chrome, flashOnConflict, redirectWith, renderPage } from '../render.ts';
import { signedIn } from '../signed-in.ts';
import { retiredAmong } from '../../credentials/scopes.ts';
import { Conflict, LatchkeyError } from '../../lib/errors.ts';
import { DroppedScopes, type ScopeCatalog } from '../../../views/credential-fields.tsx';
import { audiencesAreTyped, audiencesText, chosenScopes, graceForm, graceOf, scopeCatalog, scopesProblem } from './credential-forms.ts';

type JwksInput = NonNullable<z.input<typeof createClientInput>['jwks']>;

/** A page of the application list: a screenful, as the key list (KEY_LIST_PAGE_SIZE). */
export const APPLICATION_LIST_PAGE_SIZE = 25;

const newApplicationForm = z.object({
  name: credentialName,
  scopes: chosenScopes,
  audiences: audiencesText,
  authMethod: z.enum(['client_secret_basic', 'private_key_jwt'], { message: 'Choose how the application authenticates.' }),
  jwks: z.string().max(32_000, 'A key set this large is not accepted: paste public keys only.'),
});

/**
 * The pasted key set, checked by the service's own schema (createClientInput) so the page
 * and the CLI accept the same sets; its complaints become a message beside the field.
 */
function checkJwks(name: string, scopes: string[], text: string): { jwks?: JwksInput; error?: string } {
  if (text.trim() === '') return { error: 'Paste the public keys (JWKS) for Private key JWT.' };
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch {
    return { error: 'This is not valid JSON. Paste a JSON Web Key Set: {"keys": [ ... ]}.' };
  }
  const checked = createClientInput.safeParse({ name, scopes, authMethod: 'private_key_jwt', jwks });
  if (checked.success) return { jwks: checked.data.jwks };
  const issue = checked.error.issues.find((i) => i.path[0] === 'jwks' || /jwks/i.test(i.message));
  if (!issue) return { error: "Paste a JSON Web Key Set with at least one key: {\"keys\": [ ... ]}." };
  return { error: /public keys only/.test(issue.message) ? 'The key set holds a private key: paste public keys only (no "d" or "k" members).' : 'Paste a JSON Web Key Set with at least one key: {"keys": [ ... ]}.' };
}

async function loadApplication(deps: Deps, ctx: PageContext, id: string, rule: 'read' | 'change') {
  const principal = principalOf(ctx);
  const row = CLIENT_ID.test(id) ? await deps.prisma.oAuthClient.findUnique({ where: { id }, select: APPLICATION_VIEW_SELECT }) : null;
  const client = authorize(row, (c) => credentialPolicy[rule](principal, c), 'application');
  return presentApplication(client, deps.now());
}

export const applicationsRoutes: PageRoutes = (router, deps) => {
  const tokenEndpoint = `${deps.config.LATCHKEY_ISSUER}/token`;

  router.get('/applications', signedIn, async (ctx) => {
    const team = teamOf(ctx);
    const tab: ApplicationListTab = ctx.query.show === 'revoked' ? 'revoked' : 'active';
    const page = Math.min(Math.max(1, Number.parseInt(String(ctx.query.page ?? '1'), 10) || 1), 10_000);
    const list = await listTeamApplications(deps, { teamId: team.id, tab, page, pageSize: APPLICATION_LIST_PAGE_SIZE });
    const now = deps.now();
    const applications = list.applications.map((row) => presentApplication(row, now));
    renderPage(
      ctx,
      <ApplicationsListPage chrome={chrome(ctx, 'applications')} now={now} applications={applications} tab={tab} counts={list.counts} page={page} hasNext={list.hasNext} />,
    );
  });

  const renderNew = async (ctx: PageContext, values: NewApplicationValues, errors: FieldErrors, status: number, catalog?: ScopeCatalog) =>
    renderPage(ctx, <NewApplicationPage chrome={chrome(ctx, 'applications')} catalog={catalog ?? (await scopeCatalog(deps))} values={values} errors={errors} defaultAudience={deps.config.LATCHKEY_DEFAULT_AUDIENCE} />, status);

  router.get('/applications/new', signedIn, (ctx) => renderNew(ctx, { name: '', scopes: [], audiences: '', authMethod: 'client_secret_basic', jwks: '' }, {}, 200));

  router.post('/applications', signedIn, async (ctx) => {
    const form = ctx.state.form;
    const catalog = await scopeCatalog(deps);
    const values: NewApplicationValues = {
      name: textOf(form.name),
      scopes: listOf(form.scopes),
      // The audience field is only offered (and read) while the catalog has no API.
      audiences: audiencesAreTyped(catalog) ? textOf(form.audiences) : '',
      authMethod: textOf(form.authMethod) || 'client_secret_basic',
      jwks: textOf(form.jwks),
    };
    const parsed = parseForm(newApplicationForm, values);
    const errors: FieldErrors = parsed.ok ? {} : parsed.errors;
    const scopesError = scopesProblem(catalog, values.scopes);
    if (scopesError) errors.scopes ??= scopesError;
    let jwks: JwksInput | undefined;
    if (parsed.ok && parsed.value.authMethod === 'private_key_jwt') {
      const checked = checkJwks(parsed.value.name, parsed.value.scopes, parsed.value.jwks);
      if (checked.error) errors.jwks = checked.error;
      jwks = checked.jwks;
    }
    if (!parsed.ok || Object.keys(errors).length > 0) return renderNew(ctx, values, errors, 400, catalog);

    const team = teamOf(ctx);
    const { name, scopes, audiences, authMethod } = parsed.value;
    let outcome;
    try {
      outcome = await issueOrRequest(deps, { kind: 'client', teamId: team.id, requestedById: principalOf(ctx).accountId, name, scopes, audiences, authMethod, jwks }, actorOf(ctx));
    } catch (error) {
      if (error instanceof NameTaken) return renderNew(ctx, values, { name: 'An application of this team already has this name. Choose another.' }, 400);
      // Retired between the check above and the grant (scopes.ts: assertGrantableScopes).
      if (error instanceof LatchkeyError && error.code === 'invalid_scope') return renderNew(ctx, values, { scopes: `${error.description}. Choose from the list.` }, 400);
      if (error instanceof RequestNeedsClientSecret) return renderNew(ctx, values, { authMethod: 'Scopes that require approval are requested with Client secret; an admin can then set up your keys.' }, 400);
      throw error;
    }
    if ('requested' in outcome) return redirectWith(ctx, `/portal/requests/${outcome.requested}`, { kind: 'success', text: 'Request sent: an admin will review it.' });
    const created = outcome.issued;
    const row = await deps.prisma.oAuthClient.findUniqueOrThrow({ where: { id: created.client_id }, select: APPLICATION_VIEW_SELECT });
    const now = deps.now();
    // Shown once, in this response: the secret is never stored and never redirected through.
    renderPage(
      ctx,
      <ApplicationShownOncePage
        chrome={chrome(ctx, 'applications')}
        now={now}
        title="Your new application"
        application={presentApplication(row, now)}
        secret={created.client_secret}
        tokenEndpoint={tokenEndpoint}
      />,
    );
  });

  router.get('/applications/:id', signedIn, async (ctx) => {
    const application = await loadApplication(deps, ctx, ctx.params.id!, 'read');
    const [usage, retiredScopes] = await Promise.all([usageSeries(deps, 'client', application.id), application.status === 'active' ? retiredAmong(deps.prisma, application.scopes) : []]);
    renderPage(
      ctx,
      <ApplicationPage chrome={chrome(ctx, 'applications')} now={deps.now()} application={application} retiredScopes={retiredScopes} canChange={credentialPolicy.change(principalOf(ctx), application)} usage={usage} />,
    );
  });

  router.post('/applications/:id/rotate-secret', signedIn, async (ctx) => {
    const application = await loadApplication(deps, ctx, ctx.params.id!, 'change');
    const back = `/portal/applications/${application.id}`;
    const parsed = parseForm(graceForm, { grace: textOf(ctx.state.form.grace) });
    if (!parsed.ok) return redirectWith(ctx, back, { kind: 'error', text: 'Choose how long the old secret keeps working.' });
    const graceMs = graceOf(parsed.value.grace).ms;
    const now = deps.now();
    if (textOf(ctx.state.form.confirm) !== 'yes') {
      const dropped = await retiredAmong(deps.prisma, application.scopes);
      return renderPage(
        ctx,
        <ConfirmPage
          chrome={chrome(ctx, 'applications')}
          title={`Rotate the secret of ${application.name}`}
          description={<code>{application.id}</code>}
          sentence={
            <>
              {graceMs === 0 ? 'The current secret stops working now.' : <>The current secret keeps working until <Time at={new Date(now.getTime() + graceMs)} now={now} />.</>} The new secret is shown once.
              <DroppedScopes scopes={dropped} />
            </>
          }
          action={`${back}/rotate-secret`}
          hidden={{ grace: parsed.value.grace }}
          button="Rotate secret"
          cancel={back}
        />,
      );
    }
    await flashOnConflict(ctx, back, async () => {
      const rotated = await rotateClientSecret(deps, application.id, { graceMs }, actorOf(ctx));
      renderPage(
        ctx,
        <ApplicationShownOncePage
          chrome={chrome(ctx, 'applications')}
          now={deps.now()}
          title="Your new client secret"
          application={application}
          secret={rotated.client_secret}
          tokenEndpoint={tokenEndpoint}
          previousUntil={graceMs > 0 ? new Date(rotated.previous_expires_at) : null}
        />,
      );
    });
  });

  router.post('/applications/:id/revoke', signedIn, async (ctx) => {
    const application = await loadApplication(deps, ctx, ctx.params.id!, 'change');
    const back = `/portal/applications/${application.id}`;
    if (textOf(ctx.state.form.confirm) !== 'yes') {
      return renderPage(
        ctx,
        <ConfirmPage
          chrome={chrome(ctx, 'applications')}
          title={`Revoke ${application.name}`}
          description={<code>{application.id}</code>}
          sentence={
            <>
              Revoke application <code>{application.id}</code> — its secrets stop working and its tokens are refused within a second. This cannot be undone.
            </>
          }
          action={`${back}/revoke`}
          button="Revoke"
          danger
          cancel={back}
        />,
      );
    }
    if (application.status === 'revoked') return redirectWith(ctx, back, { kind: 'error', text: 'Nothing changed: this application was already revoked.' });
    await flashOnConflict(ctx, back, async () => {
      if (!(await revokeClient(deps, application.id, actorOf(ctx))).changed) throw new Conflict('this application was already revoked');
      redirectWith(ctx, back, { kind: 'success', text: `Application ${application.id} revoked: its secrets and tokens are refused from now on.` });
    });
  });
};
