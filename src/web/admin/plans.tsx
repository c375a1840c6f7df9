import { CredentialPlanPage, PlansPage, type CredentialPlanValues, type PlanFormValues } from '../../../views/admin/plans.tsx';
import { KEY_ID } from '../../credentials/api-key-format.ts';
import { CLIENT_ID } from '../../credentials/clients.ts';
import type { Deps } from '../../context.ts';
import { Conflict, LatchkeyError, NotFound } from '../../lib/errors.ts';
import { createPlan, credentialLimits, listPlans, listPlansInUse, parseQuota, parseRate, planName, setCredentialPlan } from '../../limits/plans.ts';
import { adminPolicy } from '../../policies/admin.ts';
import { textOf, type FieldErrors } from '../form.ts';
import { actorOf, principalOf, type PageContext } from '../page-state.ts';
import type { PageRoutes } from '../pages.ts';
import { chrome, redirectWith, renderPage } from '../render.ts';
import { adminActor, adminReader } from './guard.ts';

// Plans in the admin screens (issue 9 §1.1): the Plans screen (list, create), and a page per
// key and application to change its plan and overrides. The service (limits/plans.ts) audits
// and tells every node; these routes parse, call it and put its refusals beside the fields.

const REASON_MAX = 500;
const sentence = (text: string) => `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;

/** A rate or quota as typed: empty is "none", otherwise the service's parser decides (its words beside the field). */
function limitField(text: string, parse: (text: string) => unknown, field: string, errors: FieldErrors): string | undefined {
  if (!text) return undefined;
  try {
    parse(text);
  } catch (error) {
    if (error instanceof LatchkeyError) errors[field] = sentence(error.description);
    else throw error;
  }
  return text;
}

/** The two kinds of credential that take a plan, their admin pages and how they are named there. */
const KINDS = {
  api_key: {
    path: '/keys',
    valid: KEY_ID,
    what: 'key' as const,
    label: async (deps: Deps, id: string) => {
      const row = await deps.prisma.apiKey.findUnique({ where: { id }, select: { name: true } });
      return row && { title: `Plan of key lk_${id}`, description: <>API key “{row.name}”</> };
    },
  },
  client: {
    path: '/applications',
    valid: CLIENT_ID,
    what: 'application' as const,
    label: async (deps: Deps, id: string) => {
      const row = await deps.prisma.oAuthClient.findUnique({ where: { id }, select: { name: true } });
      return row && { title: `Plan of ${row.name}`, description: <>Application <code>{id}</code></> };
    },
  },
};

export const planRoutes: PageRoutes = (router, deps) => {
  const canAct = (ctx: PageContext) => adminPolicy.act(principalOf(ctx));

  const renderPlans = async (ctx: PageContext, form: { values: PlanFormValues; errors: FieldErrors } = { values: { name: '', rate: '', quota: '' }, errors: {} }, status = 200) =>
    renderPage(ctx, <PlansPage chrome={chrome(ctx, 'admin-plans')} plans={await listPlansInUse(deps)} canAct={canAct(ctx)} form={form} />, status);

  router.get('/plans', adminReader, (ctx) => renderPlans(ctx));

  router.post('/plans', adminActor(deps), async (ctx) => {
    const values: PlanFormValues = { name: textOf(ctx.state.form.name).trim(), rate: textOf(ctx.state.form.rate).trim(), quota: textOf(ctx.state.form.quota).trim() };
    const errors: FieldErrors = {};
    if (!planName.safeParse(values.name).success) errors.name = 'Use 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or a digit.';
    if (!values.rate) errors.rate = 'Give a rate limit such as 100/1m.';
    limitField(values.rate, parseRate, 'rate', errors);
    limitField(values.quota, parseQuota, 'quota', errors);
    if (Object.keys(errors).length > 0) return renderPlans(ctx, { values, errors }, 400);
    try {
      await createPlan(deps, { name: values.name, rate: values.rate, ...(values.quota ? { quota: values.quota } : {}) }, actorOf(ctx));
    } catch (error) {
      if (error instanceof Conflict) return renderPlans(ctx, { values, errors: { name: `${sentence(error.description)} Choose another name.` } }, 400);
      throw error;
    }
    redirectWith(ctx, '/admin/plans', { kind: 'success', text: `Plan ${values.name} created: give it to a key or an application on its page.` });
  });

  for (const [kind, spec] of Object.entries(KINDS) as ['api_key' | 'client', (typeof KINDS)[keyof typeof KINDS]][]) {
    const load = async (id: string) => {
      const [label, limits] = spec.valid.test(id) ? await Promise.all([spec.label(deps, id), credentialLimits(deps, kind, id)]) : [null, null];
      if (!label || !limits) throw new NotFound(spec.what);
      return { label, limits };
    };
    const show = async (ctx: PageContext, id: string, form?: { values: CredentialPlanValues; errors: FieldErrors }, status = 200) => {
      const { label, limits } = await load(id);
      const values = form?.values ?? { plan: limits.plan ?? '', rate: limits.ownRate ?? '', quota: limits.ownQuota ?? '', reason: '' };
      renderPage(
        ctx,
        <CredentialPlanPage
          chrome={chrome(ctx, 'admin-search')}
          title={label.title}
          description={label.description}
          back={`/admin${spec.path}/${encodeURIComponent(id)}`}
          what={spec.what}
          limits={limits}
          plans={await listPlans(deps)}
          canAct={canAct(ctx)}
          values={values}
          errors={form?.errors ?? {}}
        />,
        status,
      );
    };

    router.get(`${spec.path}/:id/plan`, adminReader, (ctx) => show(ctx, ctx.params.id!));

    router.post(`${spec.path}/:id/plan`, adminActor(deps), async (ctx) => {
      const id = ctx.params.id!;
      await load(id);
      const form = ctx.state.form;
      const values: CredentialPlanValues = { plan: textOf(form.plan).trim(), rate: textOf(form.rate).trim(), quota: textOf(form.quota).trim(), reason: textOf(form.reason).trim() };
      const errors: FieldErrors = {};
      if (values.plan && !(await listPlans(deps)).some((p) => p.name === values.plan)) errors.plan = 'Choose a plan from the list, or No plan.';
      const rate = limitField(values.rate, parseRate, 'rate', errors);
      const quota = limitField(values.quota, parseQuota, 'quota', errors);
      if (values.reason.length > REASON_MAX) errors.reason = `Keep the reason under ${REASON_MAX} characters.`;
      if (Object.keys(errors).length > 0) return show(ctx, id, { values, errors }, 400);
      let assigned;
      try {
        assigned = await setCredentialPlan(deps, kind, id, { plan: values.plan || null, rate, quota, reason: values.reason || undefined }, actorOf(ctx));
      } catch (error) {
        // A plan deleted or renamed between the form and the post: the service's NotFound names it.
        if (error instanceof NotFound && values.plan) return show(ctx, id, { values, errors: { plan: 'That plan no longer exists. Choose another.' } }, 400);
        throw error;
      }
      const limits = [assigned.rate ? `rate ${assigned.rate}` : null, assigned.quota ? `quota ${assigned.quota}` : null].filter(Boolean).join(', ') || 'no limits';
      redirectWith(ctx, `/admin${spec.path}/${encodeURIComponent(id)}`, {
        kind: 'success',
        text: `${assigned.plan ? `Plan ${assigned.plan}` : 'No plan'} (${limits}): applies on every node within a second.`,
      });
    });
  }
};

