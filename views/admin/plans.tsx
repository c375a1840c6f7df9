import type { CredentialLimitsView, PlanView } from '../../src/limits/plans.ts';
import { Button, DataTable, EmptyState, ErrorSummary, Field, Form, LinkButton, PageHeader, Panel } from '../components.tsx';
import type { Chrome } from '../layout.tsx';
import { SelectField } from './fields.tsx';
import { AdminLayout } from './layout.tsx';

/**
 * Plans (issue 9 §1.1) in the admin screens: the list and a new plan; on a key's or an
 * application's page its limits, and a page to change its plan and its own overrides.
 */

type Errors = Record<string, string | undefined>;
export interface PlanFormValues {
  name: string;
  rate: string;
  quota: string;
}
export interface CredentialPlanValues {
  plan: string;
  rate: string;
  quota: string;
  reason: string;
}

const RATE_HINT = 'N requests per window: N/DURATION with s, m, h or d, e.g. 100/1m or 5000/1h.';
const QUOTA_HINT = 'N requests per UTC day or calendar month: N/day or N/month, e.g. 10000/day.';

export function PlansPage(props: { chrome: Chrome; plans: (PlanView & { keys: number; applications: number })[]; canAct: boolean; form: { values: PlanFormValues; errors: Errors } }) {
  const { plans, form } = props;
  return (
    <AdminLayout chrome={props.chrome} title="Plans">
      <PageHeader
        title="Plans"
        description="A plan limits the keys (at /v1/keys/verify) and applications (at the token endpoint) it is given: a rate limit and an optional quota. A key or application can override either."
      />
      <ErrorSummary errors={form.errors} />
      {plans.length === 0 ? (
        <EmptyState title="No plans yet">
          <p>Without a plan, keys and applications are limited only by Latchkey's own protection. {props.canAct ? 'Create the first one below, then give it to a key or an application on its page.' : null}</p>
        </EmptyState>
      ) : (
        <DataTable head={['Name', 'Rate limit', 'Quota', 'Keys', 'Applications']} region="Plans">
          {plans.map((plan) => (
            <tr>
              <td>
                <code>{plan.name}</code>
              </td>
              <td>{plan.rate}</td>
              <td>{plan.quota ?? <span class="muted">none</span>}</td>
              <td>{plan.keys}</td>
              <td>{plan.applications}</td>
            </tr>
          ))}
        </DataTable>
      )}
      {props.canAct ? (
        <Panel id="new-plan" title="New plan">
          <p class="hint">A plan's limits are fixed once it exists: to change them, make a new plan and move the credentials to it.</p>
          <Form action="/admin/plans" csrf={props.chrome.csrf}>
            <Field label="Name" name="name" value={form.values.name} error={form.errors.name} maxLength={64} required hint="1 to 64 of A-Z a-z 0-9 . _ -, e.g. free or pro-2027." />
            <Field label="Rate limit" name="rate" value={form.values.rate} error={form.errors.rate} maxLength={30} required hint={RATE_HINT} />
            <Field label="Quota" name="quota" value={form.values.quota} error={form.errors.quota} maxLength={30} hint={`Optional. ${QUOTA_HINT}`} />
            <div class="form-actions">
              <Button>Create plan</Button>
            </div>
          </Form>
        </Panel>
      ) : null}
    </AdminLayout>
  );
}

/** A credential's limits on its admin page: its plan, what applies, and (admins) the way to change it. */
export function LimitsPanel(props: { limits: CredentialLimitsView; what: 'key' | 'application'; changeHref: string | null }) {
  const { limits } = props;
  const own = <span class="muted small"> (this {props.what}'s own)</span>;
  return (
    <Panel id="limits" title="Plan and limits">
      <dl class="details">
        <dt>Plan</dt>
        <dd>{limits.plan ? <a href="/admin/plans">{limits.plan}</a> : <span class="muted">none</span>}</dd>
        <dt>Rate limit</dt>
        <dd>
          {limits.rate ?? <span class="muted">none</span>}
          {limits.ownRate ? own : null}
        </dd>
        <dt>Quota</dt>
        <dd>
          {limits.quota ?? <span class="muted">none</span>}
          {limits.ownQuota ? own : null}
        </dd>
      </dl>
      {props.changeHref ? (
        <LinkButton variant="secondary" href={props.changeHref}>
          Change plan
        </LinkButton>
      ) : null}
    </Panel>
  );
}

export function CredentialPlanPage(props: {
  chrome: Chrome;
  title: string;
  description: preact.ComponentChildren;
  back: string;
  what: 'key' | 'application';
  limits: CredentialLimitsView;
  plans: PlanView[];
  canAct: boolean;
  values: CredentialPlanValues;
  errors: Errors;
}) {
  const { values, errors } = props;
  const options = [{ value: '', label: 'No plan' }, ...props.plans.map((p) => ({ value: p.name, label: `${p.name} — ${p.rate}${p.quota ? `, ${p.quota}` : ''}` }))];
  return (
    <AdminLayout chrome={props.chrome} title={props.title}>
      <PageHeader title={props.title} description={props.description} />
      <ErrorSummary errors={errors} />
      <LimitsPanel limits={props.limits} what={props.what} changeHref={null} />
      {props.canAct ? (
        <Panel id="change-plan" title="Change plan">
          <p class="hint">The new limits apply on every node within a second. Counts already made in the current window are kept.</p>
          <Form action={`${props.back}/plan`} csrf={props.chrome.csrf}>
            <SelectField label="Plan" name="plan" value={values.plan} options={options} error={errors.plan} hint={props.plans.length === 0 ? 'There are no plans yet: create one on the Plans screen.' : undefined} />
            <Field label="Rate limit override" name="rate" value={values.rate} error={errors.rate} maxLength={30} hint={`Optional; leave empty to use the plan's. ${RATE_HINT}`} />
            <Field label="Quota override" name="quota" value={values.quota} error={errors.quota} maxLength={30} hint={`Optional; leave empty to use the plan's. ${QUOTA_HINT}`} />
            <Field label="Reason" name="reason" value={values.reason} error={errors.reason} maxLength={500} hint="Optional; kept in the audit log with your name." />
            <div class="form-actions">
              <Button>Save plan</Button>
              <a href={props.back}>Cancel</a>
            </div>
          </Form>
        </Panel>
      ) : null}
      <p>
        <a href={props.back}>Back to the {props.what}</a>
      </p>
    </AdminLayout>
  );
}
