import { z } from 'zod';
import { adminNav } from '../../../views/admin/layout.tsx';
import { ApiPage, apiHref, CatalogPage, ScopePage, scopeHref, type ApiFormValues, type ScopeFormValues } from '../../../views/admin/catalog.tsx';
import { ConfirmPage } from '../../../views/components.tsx';
import { ApiConflict, createApi, findApiById, listApis, updateApi, type ApiView } from '../../credentials/apis.ts';
import { createScope, findScope, listScopes, retireScope, scopeName, updateScope, type ScopeView } from '../../credentials/scopes.ts';
import type { Deps } from '../../context.ts';
import { Conflict, LatchkeyError, NotFound } from '../../lib/errors.ts';
import { adminPolicy } from '../../policies/admin.ts';
import { listOf, parseForm, textOf, type FieldErrors } from '../form.ts';
import { actorOf, principalOf, type PageContext } from '../page-state.ts';
import type { PageRoutes } from '../pages.ts';
import { chrome, flashOnConflict, redirectWith, renderPage } from '../render.ts';
import { adminActor, adminReader } from './guard.ts';

// The catalog screens (issue 8 §1.2): routes parse, call the catalog services
// (credentials/scopes.ts, credentials/apis.ts) and render views/admin/catalog.tsx.

const description = z.string().trim().min(1, 'Describe what the scope lets a caller do.').max(500, 'Use at most 500 characters.');
const scopeCreateForm = z.object({
  name: scopeName,
  description,
  requiresApproval: z.boolean(),
});
const scopeEditForm = z.object({ description, requiresApproval: z.boolean() });
const apiForm = z.object({
  name: z.string().trim().min(1, 'Enter a name.').max(100, 'Use at most 100 characters.'),
  audience: z.url({ protocol: /^https?$/, message: 'Give a full http(s) URL, e.g. https://orders.example.com.' }).max(2000, 'Use at most 2,000 characters.'),
  description: z.string().trim().max(500, 'Use at most 500 characters.'),
  scopes: z.array(z.string()),
});

const SCOPE_NAME_RULE = 'Use 1 to 128 of A-Z a-z 0-9 : . _ / -, starting with a letter or a digit.';
interface ScopeForm {
  values: ScopeFormValues;
  errors: FieldErrors;
}
interface ApiForm {
  values: ApiFormValues;
  errors: FieldErrors;
}
const NO_FORM: ScopeForm = { values: { name: '', description: '', requiresApproval: false }, errors: {} };
const NO_API_FORM: ApiForm = { values: { name: '', audience: '', description: '', scopes: [] }, errors: {} };
const sentence = (text: string) => `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;

const scopeValues = (form: PageContext['state']['form']): ScopeFormValues => ({
  name: textOf(form.name).trim(),
  description: textOf(form.description),
  requiresApproval: listOf(form.requiresApproval).includes('yes'),
});
const apiValues = (form: PageContext['state']['form']): ApiFormValues => ({
  name: textOf(form.name),
  audience: textOf(form.audience).trim(),
  description: textOf(form.description),
  scopes: listOf(form.scopes),
});

/** The service's refusal of an API form, beside the field it is about. */
function apiFieldError(error: unknown): FieldErrors | null {
  if (error instanceof ApiConflict) return { [error.field]: sentence(error.description) };
  if (error instanceof LatchkeyError && error.code === 'invalid_scope') return { scopes: `${sentence(error.description)} Choose from the list.` };
  return null;
}

async function loadScope(deps: Deps, name: string): Promise<ScopeView> {
  const scope = await findScope(deps, name);
  if (!scope) throw new NotFound('scope');
  return scope;
}

async function loadApi(deps: Deps, id: string): Promise<ApiView> {
  const api = await findApiById(deps, id);
  if (!api) throw new NotFound('API');
  return api;
}

export const catalogRoutes: PageRoutes = (router, deps) => {
  const canAct = (ctx: PageContext) => adminPolicy.act(principalOf(ctx));

  const renderCatalog = async (ctx: PageContext, forms: { scopeForm?: ScopeForm; apiForm?: ApiForm } = {}, status = 200) => {
    const [scopes, apis] = await Promise.all([listScopes(deps), listApis(deps)]);
    renderPage(
      ctx,
      <CatalogPage chrome={chrome(ctx, 'admin-catalog')} scopes={scopes} apis={apis} canAct={canAct(ctx)} scopeForm={forms.scopeForm ?? NO_FORM} apiForm={forms.apiForm ?? NO_API_FORM} />,
      status,
    );
  };

  router.get('/catalog', adminReader, (ctx) => renderCatalog(ctx));

  router.post('/catalog/scopes', adminActor(deps), async (ctx) => {
    const values = scopeValues(ctx.state.form);
    const parsed = parseForm(scopeCreateForm, values);
    const errors: FieldErrors = parsed.ok ? {} : parsed.errors;
    if (errors.name !== undefined) errors.name = SCOPE_NAME_RULE;
    if (!parsed.ok) return renderCatalog(ctx, { scopeForm: { values, errors } }, 400);
    try {
      await createScope(deps, parsed.value, actorOf(ctx));
    } catch (error) {
      if (error instanceof Conflict) return renderCatalog(ctx, { scopeForm: { values, errors: { name: `${sentence(error.description)} Choose another name.` } } }, 400);
      throw error;
    }
    redirectWith(ctx, scopeHref(values.name), { kind: 'success', text: `Scope ${values.name} created: developers can choose it now.` });
  });

  const renderScope = async (ctx: PageContext, scope: ScopeView, form?: ScopeForm, status = 200) =>
    renderPage(
      ctx,
      <ScopePage
        chrome={chrome(ctx, 'admin-catalog')}
        now={deps.now()}
        scope={scope}
        canAct={canAct(ctx)}
        values={form?.values ?? { name: scope.name, description: scope.description, requiresApproval: scope.requiresApproval }}
        errors={form?.errors ?? {}}
      />,
      status,
    );

  router.get('/catalog/scopes/:name', adminReader, async (ctx) => renderScope(ctx, await loadScope(deps, ctx.params.name!)));

  router.post('/catalog/scopes/:name', adminActor(deps), async (ctx) => {
    const scope = await loadScope(deps, ctx.params.name!);
    const values = { ...scopeValues(ctx.state.form), name: scope.name };
    const parsed = parseForm(scopeEditForm, values);
    if (!parsed.ok) return renderScope(ctx, scope, { values, errors: parsed.errors }, 400);
    const unchanged = scope.description === parsed.value.description && scope.requiresApproval === parsed.value.requiresApproval;
    await updateScope(deps, scope.name, parsed.value, actorOf(ctx));
    redirectWith(ctx, scopeHref(scope.name), unchanged ? { kind: 'info', text: 'Nothing changed.' } : { kind: 'success', text: `Scope ${scope.name} saved.` });
  });

  router.post('/catalog/scopes/:name/retire', adminActor(deps), async (ctx) => {
    const scope = await loadScope(deps, ctx.params.name!);
    const back = scopeHref(scope.name);
    const reason = textOf(ctx.state.form.reason).trim().slice(0, 500);
    if (scope.retiredAt) return redirectWith(ctx, back, { kind: 'error', text: 'Nothing changed: this scope was already retired.' });
    if (!reason) {
      return renderScope(
        ctx,
        scope,
        { values: { name: scope.name, description: scope.description, requiresApproval: scope.requiresApproval }, errors: { reason: 'Give a reason: it is kept in the audit trail.' } },
        400,
      );
    }
    if (textOf(ctx.state.form.confirm) !== 'yes') {
      return renderPage(
        ctx,
        <ConfirmPage
          chrome={chrome(ctx, 'admin-catalog')}
          nav={adminNav()}
          title={`Retire scope ${scope.name}`}
          description={scope.description}
          sentence={
            <>
              Retire <code>{scope.name}</code> — no new key, application or request will get it; credentials that hold it keep working until they are rotated. This cannot be undone.
            </>
          }
          action={`${back}/retire`}
          hidden={{ reason }}
          button="Retire"
          danger
          cancel={back}
        />,
      );
    }
    await flashOnConflict(ctx, back, async () => {
      await retireScope(deps, scope.name, { reason }, actorOf(ctx));
      redirectWith(ctx, back, { kind: 'success', text: `Scope ${scope.name} retired: it is no longer granted.` });
    });
  });

  router.post('/catalog/apis', adminActor(deps), async (ctx) => {
    const values = apiValues(ctx.state.form);
    const parsed = parseForm(apiForm, values);
    if (!parsed.ok) return renderCatalog(ctx, { apiForm: { values, errors: parsed.errors } }, 400);
    let api: ApiView;
    try {
      api = await createApi(deps, parsed.value, actorOf(ctx));
    } catch (error) {
      const errors = apiFieldError(error);
      if (errors) return renderCatalog(ctx, { apiForm: { values, errors } }, 400);
      throw error;
    }
    redirectWith(ctx, apiHref(api), { kind: 'success', text: `API ${api.name} created.` });
  });

  const renderApi = async (ctx: PageContext, api: ApiView, form?: ApiForm, status = 200) =>
    renderPage(
      ctx,
      <ApiPage
        chrome={chrome(ctx, 'admin-catalog')}
        now={deps.now()}
        api={api}
        scopes={await listScopes(deps)}
        canAct={canAct(ctx)}
        form={form ?? { values: { name: api.name, audience: api.audience, description: api.description, scopes: api.scopes.map((s) => s.name) }, errors: {} }}
      />,
      status,
    );

  router.get('/catalog/apis/:id', adminReader, async (ctx) => renderApi(ctx, await loadApi(deps, ctx.params.id!)));

  router.post('/catalog/apis/:id', adminActor(deps), async (ctx) => {
    const api = await loadApi(deps, ctx.params.id!);
    const values = { ...apiValues(ctx.state.form), name: api.name };
    const parsed = parseForm(apiForm, values);
    if (!parsed.ok) return renderApi(ctx, api, { values, errors: parsed.errors }, 400);
    // Retired scopes are not offered on the form; they stay the API's.
    const retired = api.scopes.filter((s) => s.retiredAt).map((s) => s.name);
    try {
      await updateApi(deps, api.name, { audience: parsed.value.audience, description: parsed.value.description, scopes: [...parsed.value.scopes, ...retired] }, actorOf(ctx));
    } catch (error) {
      const errors = apiFieldError(error);
      if (errors) return renderApi(ctx, api, { values, errors }, 400);
      throw error;
    }
    redirectWith(ctx, apiHref(api), { kind: 'success', text: `API ${api.name} saved.` });
  });
};
