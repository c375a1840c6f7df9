import { Badge, Button, DataTable, EmptyState, Field, Form, PageHeader, Panel, Time } from '../components.tsx';
import { Audiences, KIND_LABEL, Scopes } from '../credential-fields.tsx';
import type { Chrome } from '../layout.tsx';
import { FactsPanel } from './details.tsx';
import { AdminLayout } from './layout.tsx';

/** A credential request as the admin screens show it. */
export interface AdminRequestView {
  id: string;
  kind: string;
  name: string;
  scopes: string[];
  audiences: string[];
  status: string;
  team: { id: string; name: string };
  requestedBy: { id: string; email: string } | null;
  createdAt: Date;
  decidedAt: Date | null;
  note: string | null;
  resultId: string | null;
}


export function AdminRequestsPage(props: { chrome: Chrome; now: Date; requests: AdminRequestView[] }) {
  return (
    <AdminLayout chrome={props.chrome} title="Requests">
      <PageHeader title="Requests" description="Keys and applications asked for with a scope that requires approval. The developer is emailed when you decide." />
      {props.requests.length === 0 ? (
        <EmptyState title="No pending requests">
          <p class="muted">Requests appear here when a developer asks for a scope marked “requires approval”.</p>
        </EmptyState>
      ) : (
        <DataTable head={['Name', 'Kind', 'Team', 'Requested by', 'Scopes', 'Requested']}>
          {props.requests.map((r) => (
            <tr>
              <td>
                <a href={`/admin/requests/${r.id}`}>{r.name}</a>
              </td>
              <td>{KIND_LABEL[r.kind] ?? r.kind}</td>
              <td>
                <a href={`/admin/teams/${r.team.id}`}>{r.team.name}</a>
              </td>
              <td>{r.requestedBy ? <a href={`/admin/developers/${r.requestedBy.id}`}>{r.requestedBy.email}</a> : <span class="muted">gone</span>}</td>
              <td>
                <Scopes scopes={r.scopes} />
              </td>
              <td>
                <Time at={r.createdAt} now={props.now} />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </AdminLayout>
  );
}

export function AdminRequestPage(props: { chrome: Chrome; now: Date; request: AdminRequestView; canAct: boolean; errors?: { deny?: string; note?: string } }) {
  const r = props.request;
  const credentialHref = r.resultId ? (r.kind === 'client' ? `/admin/applications/${r.resultId}` : `/admin/keys/${r.resultId}`) : null;
  return (
    <AdminLayout chrome={props.chrome} title={`Request ${r.name}`}>
      <PageHeader title={r.name} description={<>{KIND_LABEL[r.kind] ?? r.kind} request <code>{r.id}</code></>} />
      <FactsPanel>
        <dt>Status</dt>
        <dd>
          <Badge status={r.status} />
        </dd>
        <dt>Team</dt>
        <dd>
          <a href={`/admin/teams/${r.team.id}`}>{r.team.name}</a>
        </dd>
        <dt>Requested by</dt>
        <dd>{r.requestedBy ? <a href={`/admin/developers/${r.requestedBy.id}`}>{r.requestedBy.email}</a> : <span class="muted">an account that no longer exists</span>}</dd>
        <dt>Scopes</dt>
        <dd>
          <Scopes scopes={r.scopes} />
        </dd>
        <dt>Audiences</dt>
        <dd>
          <Audiences audiences={r.audiences} />
        </dd>
        <dt>Requested</dt>
        <dd>
          <Time at={r.createdAt} now={props.now} />
        </dd>
        {r.decidedAt ? (
          <>
            <dt>Decided</dt>
            <dd>
              <Time at={r.decidedAt} now={props.now} />
            </dd>
            <dt>Note</dt>
            <dd>{r.note ?? <span class="muted">none</span>}</dd>
          </>
        ) : null}
        {credentialHref ? (
          <>
            <dt>Issued</dt>
            <dd>
              <a href={credentialHref}>
                <code>{r.kind === 'client' ? r.resultId : `lk_${r.resultId}`}</code>
              </a>
            </dd>
          </>
        ) : null}
      </FactsPanel>
      {props.canAct && r.status === 'pending' ? (
        <div class="decide">
          <Panel id="approve" title="Approve">
            <p>The credential is issued to the team; the requester is emailed and sees its secret once.</p>
            <Form action={`/admin/requests/${r.id}/approve`} csrf={props.chrome.csrf}>
              <Field id="approve-note" label="Note" name="note" maxLength={500} hint="Optional; sent to the requester and kept in the audit log." />
              <div class="form-actions">
                <Button>Approve</Button>
              </div>
            </Form>
          </Panel>
          <Panel id="deny" title="Deny" danger>
            <p>Nothing is issued; the requester is emailed your note.</p>
            <Form action={`/admin/requests/${r.id}/deny`} csrf={props.chrome.csrf}>
              <Field id="deny-note" label="Reason for denying" name="note" maxLength={500} required error={props.errors?.deny} hint="Required; sent to the requester and kept in the audit log." />
              <div class="form-actions">
                <Button variant="danger">Deny</Button>
              </div>
            </Form>
          </Panel>
        </div>
      ) : null}
      <p>
        <a href="/admin/requests">Back to requests</a>
      </p>
    </AdminLayout>
  );
}
