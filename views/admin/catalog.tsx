import type { ApiView } from '../../src/credentials/apis.ts';
import type { ScopeView } from '../../src/credentials/scopes.ts';
import { Badge, Button, Choices, DataTable, EmptyState, ErrorSummary, Field, Form, PageHeader, Panel, Time, type Choice } from '../components.tsx';
import type { Chrome } from '../layout.tsx';
import { AdminLayout } from './layout.tsx';

/**
 * The catalog screens (issue 8 §1.2): scopes and APIs listed for admins and auditors; admins
 * also create, describe, mark and retire scopes, and create and edit APIs.
 */

export interface ScopeFormValues {
  name: string;
  description: string;
  requiresApproval: boolean;
}
export interface ApiFormValues {
  name: string;
  audience: string;
  description: string;
  scopes: string[];
}
type Errors = Record<string, string | undefined>;

export const scopeHref = (name: string) => `/admin/catalog/scopes/${encodeURIComponent(name)}`;
export const apiHref = (api: { id: string }) => `/admin/catalog/apis/${api.id}`;

const approvalChoice = (checked: boolean): Choice[] => [
  { value: 'yes', label: 'Requires approval', description: 'A key or application asking for it waits for an admin to approve the request.', checked },
];

/** The scopes an API may take: live ones that are global or already its own. */
const assignable = (scopes: ScopeView[], api: { id: string } | null, chosen: string[]): Choice[] =>
  scopes
    .filter((s) => !s.retiredAt && (s.api === null || s.api.id === api?.id))
    .map((s) => ({ value: s.name, label: s.name, description: s.description, checked: chosen.includes(s.name) }));

function ScopeStatus(props: { scope: ScopeView }) {
  return <Badge status={props.scope.retiredAt ? 'retired' : 'active'} />;
}

export function CatalogPage(props: {
  chrome: Chrome;
  scopes: ScopeView[];
  apis: ApiView[];
  canAct: boolean;
  scopeForm: { values: ScopeFormValues; errors: Errors };
  apiForm: { values: ApiFormValues; errors: Errors };
}) {
  const { scopes, apis } = props;
  return (
    <AdminLayout chrome={props.chrome} title="Catalog">
      <PageHeader title="Catalog" description="The scopes credentials may be granted, and the APIs (resource servers) they belong to. Developers pick an API and its scopes in the portal." />
      <ErrorSummary errors={{ ...props.scopeForm.errors, ...props.apiForm.errors }} />
      <h2 id="scopes-heading">Scopes</h2>
      {scopes.length === 0 ? (
        <EmptyState title="No scopes yet">
          <p>Until there is one, keys and applications grant no scope. {props.canAct ? 'Create the first one below.' : null}</p>
        </EmptyState>
      ) : (
        <DataTable head={['Name', 'Description', 'API', 'Approval', 'Status']} class="table" labelledBy="scopes-heading">
          {scopes.map((scope) => (
            <tr>
              <td>
                <a href={scopeHref(scope.name)}>
                  <code>{scope.name}</code>
                </a>
              </td>
              <td>{scope.description}</td>
              <td>{scope.api ? <a href={apiHref(scope.api)}>{scope.api.name}</a> : <span class="muted">global</span>}</td>
              <td>{scope.requiresApproval ? 'required' : <span class="muted">no</span>}</td>
              <td>
                <ScopeStatus scope={scope} />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      {props.canAct ? (
        <Panel id="new-scope" title="New scope">
          <Form action="/admin/catalog/scopes" csrf={props.chrome.csrf}>
            <Field label="Name" name="name" value={props.scopeForm.values.name} error={props.scopeForm.errors.name} maxLength={128} required hint="1 to 128 of A-Z a-z 0-9 : . _ / -, e.g. orders:read. A name is never reused." />
            <Field label="Description" name="description" value={props.scopeForm.values.description} error={props.scopeForm.errors.description} maxLength={500} required hint="What it lets a caller do, in the words developers will see." />
            <Choices legend="Approval" name="requiresApproval" type="checkbox" choices={approvalChoice(props.scopeForm.values.requiresApproval)} />
            <div class="form-actions">
              <Button>Create scope</Button>
            </div>
          </Form>
        </Panel>
      ) : null}

      <h2 id="apis-heading">APIs</h2>
      {apis.length === 0 ? (
        <EmptyState title="No APIs yet">
          <p>Without APIs, developers type the audiences of their credentials themselves. An API groups scopes under its audience.</p>
        </EmptyState>
      ) : (
        <DataTable head={['Name', 'Audience', 'Scopes', 'Description']} class="table" labelledBy="apis-heading">
          {apis.map((api) => (
            <tr>
              <td>
                <a href={apiHref(api)}>{api.name}</a>
              </td>
              <td>
                <code>{api.audience}</code>
              </td>
              <td>{api.scopes.length === 0 ? <span class="muted">none</span> : api.scopes.map((s, i) => <>{i > 0 ? ' ' : null}<code class="scope">{s.name}</code></>)}</td>
              <td>{api.description || <span class="muted">—</span>}</td>
            </tr>
          ))}
        </DataTable>
      )}
      {props.canAct ? (
        <Panel id="new-api" title="New API">
          <ApiFormPanel chrome={props.chrome} action="/admin/catalog/apis" scopes={scopes} api={null} form={props.apiForm} button="Create API" />
        </Panel>
      ) : null}
    </AdminLayout>
  );
}

function ApiFields(props: { scopes: ScopeView[]; api: ApiView | null; form: { values: ApiFormValues; errors: Errors } }) {
  const { values, errors } = props.form;
  const choices = assignable(props.scopes, props.api, values.scopes);
  return (
    <>
      {props.api ? null : <Field label="Name" name="name" value={values.name} error={errors.name} maxLength={100} required />}
      <Field label="Audience" name="audience" type="url" value={values.audience} error={errors.audience} maxLength={2000} required hint="The URL its credentials are meant for (the aud claim), e.g. https://orders.example.com." />
      <Field label="Description" name="description" value={values.description} error={errors.description} maxLength={500} hint="Optional; shown to developers above its scopes." />
      <Choices
        legend="Scopes of this API"
        name="scopes"
        type="checkbox"
        choices={choices}
        error={errors.scopes}
        hint="Scopes that belong to no other API. A scope left unchecked is global."
      />
    </>
  );
}

export function ApiFormPanel(props: { chrome: Chrome; action: string; scopes: ScopeView[]; api: ApiView | null; form: { values: ApiFormValues; errors: Errors }; button: string }) {
  return (
    <Form action={props.action} csrf={props.chrome.csrf}>
      <ApiFields scopes={props.scopes} api={props.api} form={props.form} />
      <div class="form-actions">
        <Button>{props.button}</Button>
      </div>
    </Form>
  );
}

export function ScopePage(props: { chrome: Chrome; now: Date; scope: ScopeView; canAct: boolean; values: ScopeFormValues; errors: Errors }) {
  const { scope, now } = props;
  return (
    <AdminLayout chrome={props.chrome} title={`Scope ${scope.name}`}>
      <PageHeader title={scope.name} description={scope.description} />
      <ErrorSummary errors={props.errors} />
      <dl class="details">
        <dt>Status</dt>
        <dd>
          <ScopeStatus scope={scope} />
          {scope.retiredAt ? (
            <>
              {' '}
              since <Time at={scope.retiredAt} now={now} />
            </>
          ) : null}
        </dd>
        <dt>API</dt>
        <dd>
          {scope.api ? (
            <>
              <a href={apiHref(scope.api)}>{scope.api.name}</a> (<code>{scope.api.audience}</code>)
            </>
          ) : (
            <span class="muted">global: belongs to no API</span>
          )}
        </dd>
        <dt>Approval</dt>
        <dd>{scope.requiresApproval ? 'required' : 'not required'}</dd>
        <dt>Created</dt>
        <dd>
          <Time at={scope.createdAt} now={now} />
        </dd>
      </dl>
      {scope.retiredAt ? (
        <p class="warning" role="note">
          Retired: no new key, application or request can be granted this scope. Credentials that hold it keep it until they are rotated.
        </p>
      ) : null}
      {props.canAct ? (
        <Panel id="edit" title="Edit">
          <Form action={scopeHref(scope.name)} csrf={props.chrome.csrf}>
            <Field label="Description" name="description" value={props.values.description} error={props.errors.description} maxLength={500} required />
            <Choices legend="Approval" name="requiresApproval" type="checkbox" choices={approvalChoice(props.values.requiresApproval)} />
            <div class="form-actions">
              <Button>Save scope</Button>
            </div>
          </Form>
        </Panel>
      ) : null}
      {props.canAct && !scope.retiredAt ? (
        <Panel id="retire" title="Retire" danger>
          <p>No new key, application or request will be granted this scope. Credentials that hold it keep working until they are rotated, which drops it. This cannot be undone.</p>
          <Form action={`${scopeHref(scope.name)}/retire`} csrf={props.chrome.csrf}>
            <Field label="Reason" name="reason" error={props.errors.reason} maxLength={500} required hint="Kept in the audit trail." />
            <div class="form-actions">
              <Button variant="danger">Retire</Button>
            </div>
          </Form>
        </Panel>
      ) : null}
      <p>
        <a href="/admin/catalog">Back to the catalog</a>
      </p>
    </AdminLayout>
  );
}

export function ApiPage(props: { chrome: Chrome; now: Date; api: ApiView; scopes: ScopeView[]; canAct: boolean; form: { values: ApiFormValues; errors: Errors } }) {
  const { api, now } = props;
  return (
    <AdminLayout chrome={props.chrome} title={`API ${api.name}`}>
      <PageHeader title={api.name} description={api.description || undefined} />
      <ErrorSummary errors={props.form.errors} />
      <dl class="details">
        <dt>Audience</dt>
        <dd>
          <code>{api.audience}</code>
        </dd>
        <dt>Scopes</dt>
        <dd>
          {api.scopes.length === 0 ? (
            <span class="muted">none</span>
          ) : (
            api.scopes.map((s, i) => (
              <>
                {i > 0 ? ' ' : null}
                <a href={scopeHref(s.name)}>
                  <code class="scope">{s.name}</code>
                </a>
                {s.retiredAt ? (
                  <>
                    {' '}
                    <span class="badge badge-amber">retired</span>
                  </>
                ) : null}
              </>
            ))
          )}
        </dd>
        <dt>Created</dt>
        <dd>
          <Time at={api.createdAt} now={now} />
        </dd>
      </dl>
      {props.canAct ? (
        <Panel id="edit" title="Edit">
          <p class="hint">Changes apply to credentials created from now on; existing ones keep their audiences and scopes.</p>
          <ApiFormPanel chrome={props.chrome} action={apiHref(api)} scopes={props.scopes} api={api} form={props.form} button="Save API" />
        </Panel>
      ) : null}
      <p>
        <a href="/admin/catalog">Back to the catalog</a>
      </p>
    </AdminLayout>
  );
}
