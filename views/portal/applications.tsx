import type { ApplicationView } from '../../src/credentials/presenters.ts';
import type { ApplicationListTab } from '../../src/credentials/application-list.ts';
import { Badge, Button, Choices, DataTable, EmptyState, ErrorSummary, Field, FieldFrame, Form, LinkButton, ListTabs, PageHeader, Pager, Panel, SecretOnce, Time } from '../components.tsx';
import { Layout, type Chrome } from '../layout.tsx';
import { UsagePanel, type UsageChartPoint } from '../usage-chart.tsx';
import { Audiences, graceChoices, RetiredScopesWarning, ScopeFields, Scopes, type ScopeCatalog } from '../credential-fields.tsx';

export interface ApplicationsListProps {
  chrome: Chrome;
  now: Date;
  applications: ApplicationView[];
  tab: ApplicationListTab;
  counts: Record<ApplicationListTab, number>;
  page: number;
  hasNext: boolean;
}

const TABS: { tab: ApplicationListTab; label: string }[] = [
  { tab: 'active', label: 'Active' },
  { tab: 'revoked', label: 'Revoked' },
];
const listHref = (tab: ApplicationListTab, page = 1) => {
  const query = [tab === 'revoked' ? 'show=revoked' : '', page > 1 ? `page=${page}` : ''].filter(Boolean).join('&');
  return `/portal/applications${query ? `?${query}` : ''}`;
};

export function ApplicationsListPage(props: ApplicationsListProps) {
  return (
    <Layout chrome={props.chrome} title="Applications">
      <PageHeader
        title="Applications"
        description="Applications are OAuth clients: services that get short-lived access tokens with the client credentials grant."
        actions={<LinkButton href="/portal/applications/new">New application</LinkButton>}
      />
      <ListTabs label="Which applications" tabs={TABS.map(({ tab, label }) => ({ href: listHref(tab), label, count: props.counts[tab], current: props.tab === tab }))} />
      {props.applications.length === 0 && props.tab === 'revoked' ? (
        <EmptyState title="No revoked applications">
          <p>Applications you revoke are listed here.</p>
        </EmptyState>
      ) : props.applications.length === 0 ? (
        <EmptyState title="No applications yet">
          <p>
            Register a service that needs access tokens, then use its client id and secret at the token endpoint.{' '}
            <a href="/portal/applications/new">Create your first application</a>.
          </p>
        </EmptyState>
      ) : (
        <DataTable head={['Name', 'Client id', 'Scopes', 'Authentication', 'Created', 'Last used', 'Status']} class="table">
          {props.applications.map((app) => (
            <tr>
              <td>
                <a href={`/portal/applications/${app.id}`}>{app.name}</a>
              </td>
              <td>
                <code>{app.id}</code>
              </td>
              <td>
                <Scopes scopes={app.scopes} />
              </td>
              <td>{app.authMethodLabel}</td>
              <td>
                <Time at={app.createdAt} now={props.now} />
              </td>
              <td>
                <Time at={app.lastUsedAt} now={props.now} />
              </td>
              <td>
                <Badge status={app.status} />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      <Pager
        page={props.page}
        newer={props.page > 1 ? { href: listHref(props.tab, props.page - 1), label: 'Newer applications' } : null}
        older={props.hasNext ? { href: listHref(props.tab, props.page + 1), label: 'Older applications' } : null}
      />
    </Layout>
  );
}

export interface NewApplicationValues {
  name: string;
  scopes: string[];
  /** As typed: URLs separated by spaces. */
  audiences: string;
  authMethod: string;
  jwks: string;
}

export function NewApplicationPage(props: { chrome: Chrome; catalog: ScopeCatalog; values: NewApplicationValues; errors: Record<string, string>; defaultAudience: string }) {
  const { values, errors } = props;
  return (
    <Layout chrome={props.chrome} title="New application">
      <PageHeader title="New application" description="Its client secret is shown once, right after you create it." />
      <ErrorSummary errors={errors} />
      <Form action="/portal/applications" csrf={props.chrome.csrf}>
        <Field label="Name" name="name" value={values.name} error={errors.name} maxLength={100} required />
        <ScopeFields
          catalog={props.catalog}
          chosen={values.scopes}
          errors={errors}
          hint="What its access tokens may do."
          withoutScope="its access tokens will identify it"
          what="its tokens"
          audiences={values.audiences}
          defaultAudience={props.defaultAudience}
        />
        <Choices
          legend="Authentication"
          name="authMethod"
          type="radio"
          error={errors.authMethod}
          choices={[
            { value: 'client_secret_basic', label: 'Client secret', description: 'A secret sent with HTTP Basic authentication (client_secret_basic).', checked: values.authMethod !== 'private_key_jwt' },
            { value: 'private_key_jwt', label: 'Private key JWT', description: 'Signed assertions checked against your public keys (private_key_jwt): no shared secret.', checked: values.authMethod === 'private_key_jwt' },
          ]}
        />
        <FieldFrame
          id="field-jwks"
          label="Public keys (JWKS)"
          hint={
            <>
              For Private key JWT only: paste a JSON Web Key Set, <code>{'{"keys": [...]}'}</code>, with public keys only.
            </>
          }
          error={errors.jwks}
        >
          {(described) => (
            <textarea id="field-jwks" name="jwks" rows={6} spellcheck={false} aria-invalid={errors.jwks ? 'true' : undefined} aria-describedby={described}>
              {values.jwks}
            </textarea>
          )}
        </FieldFrame>
        <div class="form-actions">
          <Button>Create application</Button>
          <a href="/portal/applications">Cancel</a>
        </div>
      </Form>
    </Layout>
  );
}

/** Client id and (for secret-based clients) the secret, shown once, with a first token request. */
export function ApplicationShownOncePage(props: {
  chrome: Chrome;
  now: Date;
  title: string;
  application: ApplicationView;
  secret?: string;
  tokenEndpoint: string;
  previousUntil?: Date | null;
}) {
  const { application } = props;
  const scope = application.scopes.join(' ');
  const curl = application.usesSecret
    ? `curl -u "${application.id}:$CLIENT_SECRET" \\\n  -d grant_type=client_credentials \\\n  -d scope="${scope}" \\\n  ${props.tokenEndpoint}`
    : `curl -d grant_type=client_credentials \\\n  -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \\\n  -d client_assertion="$SIGNED_JWT" \\\n  -d scope="${scope}" \\\n  ${props.tokenEndpoint}`;
  return (
    <Layout chrome={props.chrome} title={props.title}>
      <PageHeader title={props.title} description={application.name} />
      <div class="panel">
        {props.secret ? (
          <p class="warning">
            <strong>Copy it now: you will not see it again.</strong> Latchkey keeps only a fingerprint of the secret.
          </p>
        ) : null}
        <SecretOnce label="Client id" value={application.id} id="client-id" />
        {props.secret ? <SecretOnce label="Client secret" value={props.secret} id="client-secret" /> : null}
      </div>
      {props.previousUntil ? (
        <p>
          The previous secret keeps working until <Time at={props.previousUntil} now={props.now} />.
        </p>
      ) : null}
      <h2>Get a token</h2>
      <p>
        With the secret in <code>{application.usesSecret ? 'CLIENT_SECRET' : 'SIGNED_JWT'}</code>:
      </p>
      <pre class="code-block">
        <code>{curl}</code>
      </pre>
      <p>
        <a href={`/portal/applications/${application.id}`}>Go to the application's page</a>
      </p>
    </Layout>
  );
}

export function ApplicationPage(props: { chrome: Chrome; now: Date; application: ApplicationView; retiredScopes: string[]; canChange: boolean; usage: UsageChartPoint[] }) {
  const { application: app, now } = props;
  return (
    <Layout chrome={props.chrome} title={app.name}>
      <PageHeader title={app.name} description={<code>{app.id}</code>} />
      <dl class="details">
        <dt>Status</dt>
        <dd>
          <Badge status={app.status} />
        </dd>
        <dt>Client id</dt>
        <dd>
          <code>{app.id}</code>
        </dd>
        <dt>Scopes</dt>
        <dd>
          <Scopes scopes={app.scopes} retired={props.retiredScopes} />
          <RetiredScopesWarning retired={props.retiredScopes} kind="application" />
        </dd>
        <dt>Audiences</dt>
        <dd>
          <Audiences audiences={app.audiences} />
        </dd>
        <dt>Authentication</dt>
        <dd>{app.authMethodLabel}</dd>
        {app.keyIds.length > 0 ? (
          <>
            <dt>Public keys</dt>
            <dd>{app.keyIds.join(', ')}</dd>
          </>
        ) : null}
        <dt>Created</dt>
        <dd>
          <Time at={app.createdAt} now={now} />
        </dd>
        {app.previousSecretExpiresAt ? (
          <>
            <dt>Previous secret</dt>
            <dd>
              works until <Time at={app.previousSecretExpiresAt} now={now} />
            </dd>
          </>
        ) : null}
        {app.revokedAt ? (
          <>
            <dt>Revoked</dt>
            <dd>
              <Time at={app.revokedAt} now={now} />
            </dd>
          </>
        ) : null}
      </dl>
      <UsagePanel series={props.usage} lastUsedAt={app.lastUsedAt} now={now} what="application" />
      {props.canChange && app.status !== 'revoked' && app.usesSecret ? (
        <Panel id="rotate" title="Rotate secret">
          <p>Issue a new client secret. You choose how long the current one keeps working, so your services can switch over.</p>
          <Form action={`/portal/applications/${app.id}/rotate-secret`} csrf={props.chrome.csrf}>
            <Choices legend="Old secret keeps working for" name="grace" type="radio" choices={graceChoices('24h')} />
            <div class="form-actions">
              <Button>Rotate secret</Button>
            </div>
          </Form>
        </Panel>
      ) : null}
      {props.canChange && app.status !== 'revoked' ? (
        <Panel id="revoke" title="Revoke" danger>
          <p>Its secrets stop working and every token it holds is refused. This cannot be undone.</p>
          <Form action={`/portal/applications/${app.id}/revoke`} csrf={props.chrome.csrf}>
            <div class="form-actions">
              <Button variant="danger">Revoke</Button>
            </div>
          </Form>
        </Panel>
      ) : null}
      <p>
        <a href="/portal/applications">Back to applications</a>
      </p>
    </Layout>
  );
}
