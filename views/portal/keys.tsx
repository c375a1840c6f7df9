import type { ApiKeyView } from '../../src/credentials/presenters.ts';
import { Badge, Button, Choices, DataTable, EmptyState, ErrorSummary, Field, Form, LinkButton, ListTabs, PageHeader, Pager, Panel, SecretOnce, Time } from '../components.tsx';
import { Layout, type Chrome } from '../layout.tsx';
import type { KeyListTab } from '../../src/credentials/key-list.ts';
import { UsagePanel, type UsageChartPoint } from '../usage-chart.tsx';
import { Audiences, expiryChoices, graceChoices, KeyFacts, ScopeFields, Scopes, type ScopeCatalog } from '../credential-fields.tsx';


export interface KeysListProps {
  chrome: Chrome;
  now: Date;
  keys: ApiKeyView[];
  tab: KeyListTab;
  counts: Record<KeyListTab, number>;
  page: number;
  hasNext: boolean;
}

const TABS: { tab: KeyListTab; label: string }[] = [
  { tab: 'live', label: 'Active' },
  { tab: 'inactive', label: 'Revoked and expired' },
];
const listHref = (tab: KeyListTab, page = 1) => `/portal/keys${tab === 'live' ? '' : '?show=inactive'}${page > 1 ? `${tab === 'live' ? '?' : '&'}page=${page}` : ''}`;

export function KeysListPage(props: KeysListProps) {
  return (
    <Layout chrome={props.chrome} title="API keys">
      <PageHeader
        title="API keys"
        description="Keys let your services call APIs protected by Latchkey. Each key belongs to this team."
        actions={<LinkButton href="/portal/keys/new">New API key</LinkButton>}
      />
      <ListTabs label="Which keys" tabs={TABS.map(({ tab, label }) => ({ href: listHref(tab), label, count: props.counts[tab], current: props.tab === tab }))} />
      {props.keys.length === 0 && props.tab === 'inactive' ? (
        <EmptyState title="No revoked or expired keys">
          <p>Keys you revoke, and keys past their expiry, are listed here.</p>
        </EmptyState>
      ) : props.keys.length === 0 ? (
        <EmptyState title="No API keys yet">
          <p>
            Create a key, choose what it may do, and copy it into your service's configuration. <a href="/portal/keys/new">Create your first API key</a>.
          </p>
        </EmptyState>
      ) : (
        <DataTable head={['Name', 'Key', 'Scopes', 'Created', 'Last used', 'Expires', 'Status']} class="table">
          {props.keys.map((key) => (
            <tr>
              <td>
                <a href={`/portal/keys/${key.id}`}>{key.name}</a>
              </td>
              <td>
                <code title={key.prefix}>{key.masked}</code>
              </td>
              <td>
                <Scopes scopes={key.scopes} />
              </td>
              <td>
                <Time at={key.createdAt} now={props.now} />
              </td>
              <td>
                <Time at={key.lastUsedAt} now={props.now} />
              </td>
              <td>
                <Time at={key.expiresAt} now={props.now} never="no expiry" />
              </td>
              <td>
                <Badge status={key.status} />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      <Pager
        page={props.page}
        newer={props.page > 1 ? { href: listHref(props.tab, props.page - 1), label: 'Newer keys' } : null}
        older={props.hasNext ? { href: listHref(props.tab, props.page + 1), label: 'Older keys' } : null}
      />
    </Layout>
  );
}

export interface NewKeyValues {
  name: string;
  scopes: string[];
  /** As typed: URLs separated by spaces. */
  audiences: string;
  expires: string;
}

export function NewKeyPage(props: { chrome: Chrome; catalog: ScopeCatalog; values: NewKeyValues; errors: Record<string, string>; defaultAudience: string }) {
  const { values, errors } = props;
  return (
    <Layout chrome={props.chrome} title="New API key">
      <PageHeader title="New API key" description="The key is shown once, right after you create it." />
      <ErrorSummary errors={errors} />
      <Form action="/portal/keys" csrf={props.chrome.csrf}>
        <Field label="Name" name="name" value={values.name} error={errors.name} hint="What uses this key, e.g. “billing service (production)”." maxLength={100} required />
        <ScopeFields
          catalog={props.catalog}
          chosen={values.scopes}
          errors={errors}
          hint="What the key may do. Choose only what the service needs."
          withoutScope="this key will identify its caller"
          what="this key"
          audiences={values.audiences}
          defaultAudience={props.defaultAudience}
        />
        <Choices
          legend="Expires"
          name="expires"
          type="radio"
          choices={expiryChoices(values.expires)}
          error={errors.expires}
          hint="A key that never expires stays dangerous for as long as it leaks unnoticed: prefer an expiry and rotate."
        />
        <div class="form-actions">
          <Button>Create key</Button>
          <a href="/portal/keys">Cancel</a>
        </div>
      </Form>
    </Layout>
  );
}

/** The full key, shown once: after a creation or a rotation. */
export function KeyShownOncePage(props: { chrome: Chrome; now: Date; title: string; apiKey: ApiKeyView; secret: string; previous?: { prefix: string; until: Date } }) {
  const { apiKey: key } = props;
  return (
    <Layout chrome={props.chrome} title={props.title}>
      <PageHeader title={props.title} description={key.name} />
      <div class="panel">
        <p class="warning">
          <strong>Copy it now: you will not see it again.</strong> Latchkey keeps only a fingerprint of the key.
        </p>
        <SecretOnce label="API key" value={props.secret} id="secret-key" />
      </div>
      {props.previous ? (
        <p>
          The previous key <code>{props.previous.prefix}</code> keeps working until <Time at={props.previous.until} now={props.now} />.
        </p>
      ) : null}
      <h2>What it can do</h2>
      <dl class="details">
        <dt>Scopes</dt>
        <dd>
          <Scopes scopes={key.scopes} />
        </dd>
        <dt>Audiences</dt>
        <dd>
          <Audiences audiences={key.audiences} />
        </dd>
        <dt>Expires</dt>
        <dd>
          <Time at={key.expiresAt} now={props.now} never="no expiry" />
        </dd>
      </dl>
      <p>
        <a href={`/portal/keys/${key.id}`}>Go to the key's page</a>
      </p>
    </Layout>
  );
}

export function KeyPage(props: { chrome: Chrome; now: Date; apiKey: ApiKeyView; retiredScopes: string[]; canChange: boolean; usage: UsageChartPoint[] }) {
  const { apiKey: key, now } = props;
  return (
    <Layout chrome={props.chrome} title={key.name}>
      <PageHeader title={key.name} description={<code>{key.prefix}</code>} />
      <KeyFacts apiKey={key} now={now} pages="/portal/keys" retired={props.retiredScopes}>
        {key.revokedAt ? (
          <>
            <dt>Revoked</dt>
            <dd>
              <Time at={key.revokedAt} now={now} />
              {key.revokedReason ? ` (${key.revokedReason})` : null}
            </dd>
          </>
        ) : null}
      </KeyFacts>
      <UsagePanel series={props.usage} lastUsedAt={key.lastUsedAt} now={now} what="key" />
      {props.canChange && key.status === 'active' ? (
        <Panel id="rotate" title="Rotate">
          <p>Issue a new key with the same scopes. You choose how long the old one keeps working, so your services can switch over.</p>
          <Form action={`/portal/keys/${key.id}/rotate`} csrf={props.chrome.csrf}>
            <Choices legend="Old key keeps working for" name="grace" type="radio" choices={graceChoices('24h')} />
            <div class="form-actions">
              <Button>Rotate</Button>
            </div>
          </Form>
        </Panel>
      ) : null}
      {props.canChange && key.live ? (
        <Panel id="revoke" title="Revoke" danger>
          <p>Services using this key will be refused within a second. This cannot be undone.</p>
          <Form action={`/portal/keys/${key.id}/revoke`} csrf={props.chrome.csrf}>
            <Field label="Reason" name="reason" hint="Optional; kept in the audit trail." maxLength={500} />
            <div class="form-actions">
              <Button variant="danger">Revoke</Button>
            </div>
          </Form>
        </Panel>
      ) : null}
      <p>
        <a href="/portal/keys">Back to API keys</a>
      </p>
    </Layout>
  );
}
