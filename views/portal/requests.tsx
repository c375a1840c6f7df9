import { Badge, Button, DataTable, EmptyState, Form, LinkButton, PageHeader, SecretOnce, Time } from '../components.tsx';
import { KIND_LABEL, Scopes } from '../credential-fields.tsx';
import { Layout, type Chrome } from '../layout.tsx';

/** A credential request as the pages show it (a plain view model). */
export interface RequestView {
  id: string;
  kind: 'api_key' | 'client';
  name: string;
  scopes: string[];
  status: string;
  requestedBy: string | null;
  createdAt: Date;
  decidedAt: Date | null;
  note: string | null;
  /** The key or application issued on approval. */
  resultId: string | null;
  /** Approved, and its secret not yet shown. */
  secretWaiting: boolean;
}

const credentialHref = (r: Pick<RequestView, 'kind' | 'resultId'>) => (r.kind === 'client' ? `/portal/applications/${r.resultId}` : `/portal/keys/${r.resultId}`);

export function RequestsListPage(props: { chrome: Chrome; now: Date; requests: RequestView[] }) {
  return (
    <Layout chrome={props.chrome} title="Requests">
      <PageHeader
        title="Requests"
        description="Keys and applications with a scope that needs an administrator's approval wait here. You get an email when one is decided."
      />
      {props.requests.length === 0 ? (
        <EmptyState title="No requests">
          <p>
            A request is made when you create an <a href="/portal/keys/new">API key</a> or an <a href="/portal/applications/new">application</a> with a scope marked
            “requires approval”.
          </p>
        </EmptyState>
      ) : (
        <DataTable head={['Name', 'Kind', 'Scopes', 'Status', 'Requested', 'Decided', 'Note']} class="table">
          {props.requests.map((r) => (
            <tr>
              <td>
                <a href={`/portal/requests/${r.id}`}>{r.name}</a>
              </td>
              <td>{KIND_LABEL[r.kind]}</td>
              <td>
                <Scopes scopes={r.scopes} />
              </td>
              <td>
                <Badge status={r.status} />
              </td>
              <td>
                <Time at={r.createdAt} now={props.now} />
              </td>
              <td>
                <Time at={r.decidedAt} now={props.now} never="not yet" />
              </td>
              <td>{r.note ?? <span class="muted">none</span>}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </Layout>
  );
}

export function RequestDetailPage(props: { chrome: Chrome; now: Date; request: RequestView; secret?: string }) {
  const r = props.request;
  const kind = KIND_LABEL[r.kind];
  const secretWord = r.kind === 'client' ? 'secret' : 'key';
  return (
    <Layout chrome={props.chrome} title={`Request: ${r.name}`}>
      <PageHeader title={r.name} description={`${kind} request`} actions={<LinkButton href="/portal/requests" variant="secondary">All requests</LinkButton>} />
      {props.secret !== undefined ? (
        <div class="panel">
          <p class="warning">
            <strong>Copy it now: you will not see it again.</strong> Latchkey keeps only a fingerprint of it.
          </p>
          {r.kind === 'client' ? (
            <dl class="details">
              <dt>Client ID</dt>
              <dd>
                <code>{r.resultId}</code>
              </dd>
            </dl>
          ) : null}
          <SecretOnce label={r.kind === 'client' ? 'Client secret' : 'API key'} value={props.secret} id="secret-value" />
          <p>
            <a href={credentialHref(r)}>Go to the {kind === 'Application' ? 'application' : 'API key'}</a>
          </p>
        </div>
      ) : null}
      <dl class="details">
        <dt>Status</dt>
        <dd>
          <Badge status={r.status} />
        </dd>
        <dt>Kind</dt>
        <dd>{kind}</dd>
        <dt>Scopes</dt>
        <dd>
          <Scopes scopes={r.scopes} />
        </dd>
        <dt>Requested by</dt>
        <dd>{r.requestedBy ?? <span class="muted">a former member</span>}</dd>
        <dt>Requested</dt>
        <dd>
          <Time at={r.createdAt} now={props.now} />
        </dd>
        <dt>Decided</dt>
        <dd>
          <Time at={r.decidedAt} now={props.now} never="not yet" />
        </dd>
        {r.status === 'denied' ? (
          <>
            <dt>Reason</dt>
            <dd>{r.note}</dd>
          </>
        ) : r.note ? (
          <>
            <dt>Note</dt>
            <dd>{r.note}</dd>
          </>
        ) : null}
      </dl>
      {r.status === 'pending' ? <p>An administrator has not decided yet. You will get an email when they do.</p> : null}
      {r.status === 'approved' && props.secret === undefined ? (
        r.secretWaiting ? (
          <div class="panel">
            <p>
              Your {kind === 'Application' ? 'application' : 'API key'} is ready. The {secretWord} is shown once: have somewhere safe to keep it.
            </p>
            <Form action={`/portal/requests/${r.id}/reveal`} csrf={props.chrome.csrf}>
              <Button>{r.kind === 'client' ? 'Show the secret' : 'Show the key'}</Button>
            </Form>
          </div>
        ) : (
          <p>
            The {secretWord} was shown already and cannot be shown again. If it was lost, rotate to get a new one:{' '}
            <a href={credentialHref(r)}>{kind === 'Application' ? 'the application' : 'the API key'}</a>.
          </p>
        )
      ) : null}
    </Layout>
  );
}
