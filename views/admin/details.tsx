import type { ComponentChildren } from 'preact';
import type { SubjectEvent } from '../../src/admin/events.ts';
import type { ApiKeyView, ApplicationView } from '../../src/credentials/presenters.ts';
import type { CredentialLimitsView } from '../../src/limits/plans.ts';
import { Badge, Button, DataTable, EmptyState, EventsTable, Field, Form, PageHeader, Panel, Time } from '../components.tsx';
import { Audiences, KeyFacts, Scopes } from '../credential-fields.tsx';
import type { Chrome } from '../layout.tsx';
import { UsageChart, UsagePanel, type UsageChartPoint } from '../usage-chart.tsx';
import { dataText } from './audit.tsx';
import { SubjectLink } from './dashboard.tsx';
import { AdminLayout } from './layout.tsx';
import { LimitsPanel } from './plans.tsx';

/** One audit event as the detail pages list it (never a secret: audit data holds none). */
export type AdminEventView = SubjectEvent;

/** An action's form state: the reason typed and the message beside it after a refusal. */
export interface ActionErrors {
  [action: string]: { reason: string; error: string } | undefined;
}

/** The audit screen filtered by one subject: every event about it, not only the recent ones. */
export const subjectEventsHref = (subjectType: string, subjectId: string) => `/admin/audit?${new URLSearchParams({ subjectType, subjectId })}`;

export function EventsPanel(props: { events: AdminEventView[]; now: Date; title?: string; subject?: { type: string; id: string } }) {
  return (
    <Panel id="events" title={props.title ?? 'Recent events'}>

      {props.events.length === 0 ? (
        <p class="muted">No audit events yet.</p>
      ) : (
        <EventsTable
          head={['Event', 'By', 'Details']}
          rows={props.events}
          now={props.now}
          nowrap
          cells={(e) => (
            <>
              <td>
                <code>{e.type}</code>
              </td>
              <td>
                {e.actorType === 'account' && e.actorId ? (
                  <a href={`/admin/developers/${e.actorId}`}>{e.actorEmail ?? e.actorId}</a>
                ) : e.actorType === 'client' && e.actorId ? (
                  <SubjectLink type="client" id={e.actorId} />
                ) : (
                  <span>{e.actorType}</span>
                )}
              </td>
              <td class="small">
                {dataText(e.data)}
                {e.requestId ? <span class="muted">{dataText(e.data) ? ' · ' : ''}request {e.requestId}</span> : null}
              </td>
            </>
          )}
        />
      )}
      {props.subject ? (
        <p class="small">
          <a href={subjectEventsHref(props.subject.type, props.subject.id)}>All its events in the audit log</a>
        </p>
      ) : null}
    </Panel>
  );
}

/**
 * An admin action: a sentence naming what will happen, a required Reason (kept in the audit
 * log), and the button; the second step (ConfirmPage) and the step-up come after it.
 */
export function ActionPanel(props: { csrf: string; id: string; title: string; action: string; button: string; danger?: boolean; errors?: ActionErrors; children: ComponentChildren }) {
  const state = props.errors?.[props.id];
  return (
    <Panel id={props.id} title={props.title} danger={props.danger}>
      {props.children}
      <Form action={props.action} csrf={props.csrf}>
        <ActionFields id={props.id} state={state} />
        <div class="form-actions">
          <Button variant={props.danger ? 'danger' : 'primary'}>{props.button}</Button>
        </div>
      </Form>
    </Panel>
  );
}

/** Suspend, or Unsuspend once suspended: the same pair of actions on a developer's, a team's and a key's page. */
function SuspendPanel(props: { csrf: string; page: string; suspended: boolean; errors?: ActionErrors; suspend: string; unsuspend: string }) {
  return props.suspended ? (
    <ActionPanel csrf={props.csrf} id="unsuspend" title="Unsuspend" action={`${props.page}/unsuspend`} button="Unsuspend" errors={props.errors}>
      <p>{props.unsuspend}</p>
    </ActionPanel>
  ) : (
    <ActionPanel csrf={props.csrf} id="suspend" title="Suspend" action={`${props.page}/suspend`} button="Suspend" danger errors={props.errors}>
      <p>{props.suspend}</p>
    </ActionPanel>
  );
}

// Several actions share a page: each Reason field needs its own id, so the label names one input.
function ActionFields(props: { id: string; state?: { reason: string; error: string } }) {
  return <Field id={`${props.id}-reason`} label="Reason" name="reason" value={props.state?.reason} error={props.state?.error} maxLength={500} required hint="Required; kept in the audit log with your name." />;
}

/** A team of a developer, or a member of a team: its link, then its role and status. */
function MembershipRow(props: { href: string; label: string; note?: string | null; role: string; status: string }) {
  return (
    <tr>
      <td>
        <a href={props.href}>{props.label}</a>
        {props.note ? <span class="muted small">{props.note}</span> : null}
      </td>
      <td>
        <Badge status={props.role} />
      </td>
      <td>
        <Badge status={props.status} />
      </td>
    </tr>
  );
}

/** A key or an application of a team. */
function CredentialRow(props: { kind: string; href: string; id: string; name: string; status: string }) {
  return (
    <tr>
      <td>{props.kind}</td>
      <td>
        <a href={props.href}>
          <code>{props.id}</code>
        </a>
      </td>
      <td>{props.name}</td>
      <td>
        <Badge status={props.status} />
      </td>
    </tr>
  );
}

const ROLE_LABEL: Record<string, string> = { developer: 'Developer account', admin: 'Admin account', auditor: 'Auditor account' };

/** The facts at the top of a detail page. */
export function FactsPanel(props: { children: ComponentChildren }) {
  return (
    <div class="panel">
      <dl class="details">{props.children}</dl>
    </div>
  );
}

/** The team a credential belongs to, and its status when that stops the credential. */
function TeamFact(props: { team: { id: string; name: string; status: string } | null }) {
  const { team } = props;
  return (
    <>
      <dt>Team</dt>
      <dd>
        {team ? <a href={`/admin/teams/${team.id}`}>{team.name}</a> : <span class="muted">none (made by an operator)</span>}
        {team && team.status !== 'active' ? <> <Badge status={team.status} /></> : null}
      </dd>
    </>
  );
}

export interface KeyAdminView {
  key: ApiKeyView;
  team: { id: string; name: string; status: string } | null;
  limits: CredentialLimitsView;
  usage: UsageChartPoint[];
  events: AdminEventView[];
  /** Why the key itself is suspended, from its audit event (null when not suspended or none is recorded). */
  suspendedReason: string | null;
}

export function KeyAdminPage(props: { chrome: Chrome; now: Date; view: KeyAdminView; canAct: boolean; errors?: ActionErrors }) {
  const { key, team } = props.view;
  const now = props.now;
  return (
    <AdminLayout chrome={props.chrome} title={`Key ${key.prefix}`}>
      <PageHeader title={key.name} description={<>API key <code>{key.prefix}</code></>} />
      <div class="panel">
        <KeyFacts apiKey={key} now={now} pages="/admin/keys" team={<TeamFact team={team} />}>
          {key.revokedAt ? (
            <>
              <dt>Revoked</dt>
              <dd>
                <Time at={key.revokedAt} now={now} />
                {key.revokedReason ? <> — {key.revokedReason}</> : null}
              </dd>
            </>
          ) : null}
          {key.status === 'suspended' && key.suspendedAt ? (
            <>
              <dt>Suspended</dt>
              <dd>
                <Time at={key.suspendedAt} now={now} />
                {props.view.suspendedReason ? <> — {props.view.suspendedReason}</> : null}
              </dd>
            </>
          ) : null}
        </KeyFacts>
      </div>
      <LimitsPanel limits={props.view.limits} what="key" changeHref={props.canAct ? `/admin/keys/${key.id}/plan` : null} />
      {props.canAct && key.live ? (
        <>
          <SuspendPanel
            csrf={props.chrome.csrf}
            page={`/admin/keys/${key.id}`}
            suspended={key.status === 'suspended'}
            errors={props.errors}
            unsuspend="Services using this key are accepted again within a second, on every node, unless its team is suspended."
            suspend="Services using this key will be refused within a second, on every node, until it is unsuspended. Unlike revoking, this can be undone."
          />
          <ActionPanel csrf={props.chrome.csrf} id="revoke" title="Revoke" action={`/admin/keys/${key.id}/revoke`} button="Revoke" danger errors={props.errors}>
            <p>Services using this key will be refused within a second, on every node. This cannot be undone.</p>
          </ActionPanel>
        </>
      ) : null}
      <UsagePanel series={props.view.usage} lastUsedAt={key.lastUsedAt} now={now} what="key" />
      <EventsPanel events={props.view.events} now={now} subject={{ type: 'api_key', id: key.id }} />
    </AdminLayout>
  );
}

export interface ApplicationAdminView {
  application: ApplicationView;
  team: { id: string; name: string; status: string } | null;
  limits: CredentialLimitsView;
  usage: UsageChartPoint[];
  events: AdminEventView[];
}

export function ApplicationAdminPage(props: { chrome: Chrome; now: Date; view: ApplicationAdminView; canAct: boolean; errors?: ActionErrors }) {
  const { application: app, team } = props.view;
  const now = props.now;
  return (
    <AdminLayout chrome={props.chrome} title={`Application ${app.name}`}>
      <PageHeader title={app.name} description={<>Application <code>{app.id}</code></>} />
      <FactsPanel>
        <dt>Status</dt>
        <dd>
          <Badge status={app.status} />
        </dd>
        <dt>Client id</dt>
        <dd>
          <code>{app.id}</code>
        </dd>
        <TeamFact team={team} />
        <dt>Authentication</dt>
        <dd>{app.authMethodLabel}</dd>
        <dt>Scopes</dt>
        <dd>
          <Scopes scopes={app.scopes} />
        </dd>
        <dt>Audiences</dt>
        <dd>
          <Audiences audiences={app.audiences} />
        </dd>
        <dt>Created</dt>
        <dd>
          <Time at={app.createdAt} now={now} />
        </dd>
        {app.revokedAt ? (
          <>
            <dt>Revoked</dt>
            <dd>
              <Time at={app.revokedAt} now={now} />
            </dd>
          </>
        ) : null}
      </FactsPanel>
      <LimitsPanel limits={props.view.limits} what="application" changeHref={props.canAct ? `/admin/applications/${app.id}/plan` : null} />
      {props.canAct && app.status !== 'revoked' ? (
        <ActionPanel csrf={props.chrome.csrf} id="revoke-tokens" title="Revoke all live tokens" action={`/admin/applications/${app.id}/revoke-tokens`} button="Revoke tokens" danger errors={props.errors}>
          <p>Every access token this application holds now introspects inactive within a second. The application itself keeps working and can ask for new tokens.</p>
        </ActionPanel>
      ) : null}
      {props.canAct && app.status !== 'revoked' ? (
        <ActionPanel csrf={props.chrome.csrf} id="revoke" title="Revoke" action={`/admin/applications/${app.id}/revoke`} button="Revoke" danger errors={props.errors}>
          <p>Its secrets stop working and every token it holds is refused within a second, on every node. This cannot be undone.</p>
        </ActionPanel>
      ) : null}
      <UsagePanel series={props.view.usage} lastUsedAt={app.lastUsedAt} now={now} what="application" />
      <EventsPanel events={props.view.events} now={now} subject={{ type: 'client', id: app.id }} />
    </AdminLayout>
  );
}

export interface DeveloperAdminView {
  account: { id: string; email: string; role: string; status: string; createdAt: Date; emailVerifiedAt: Date | null; mfaEnabledAt: Date | null };
  teams: { id: string; name: string; role: string; status: string; personal: boolean }[];
  liveSessions: number;
  events: AdminEventView[];
}

export function DeveloperAdminPage(props: { chrome: Chrome; now: Date; view: DeveloperAdminView; canAct: boolean; errors?: ActionErrors }) {
  const { account, teams } = props.view;
  const now = props.now;
  const suspended = account.status === 'suspended';
  return (
    <AdminLayout chrome={props.chrome} title={account.email}>
      <PageHeader title={account.email} description={ROLE_LABEL[account.role] ?? 'Account'} />
      <FactsPanel>
        <dt>Status</dt>
        <dd>
          <Badge status={account.status} />
        </dd>
        <dt>Role</dt>
        <dd>{account.role}</dd>
        <dt>Signed up</dt>
        <dd>
          <Time at={account.createdAt} now={now} />
        </dd>
        <dt>Email verified</dt>
        <dd>
          <Time at={account.emailVerifiedAt} now={now} never="not yet" />
        </dd>
        <dt>Two-factor</dt>
        <dd>{account.mfaEnabledAt ? 'on' : 'off'}</dd>
        <dt>Live sessions</dt>
        <dd>{props.view.liveSessions}</dd>
      </FactsPanel>
      <Panel id="teams" title="Teams">
        {teams.length === 0 ? (
          <p class="muted">Not a member of any team.</p>
        ) : (
          <DataTable head={['Team', 'Role', 'Status']}>
            {teams.map((t) => (
              <MembershipRow href={`/admin/teams/${t.id}`} label={t.name} note={t.personal ? ' (personal)' : null} role={t.role} status={t.status} />
            ))}
          </DataTable>
        )}
      </Panel>
      {props.canAct ? (
        <SuspendPanel
          csrf={props.chrome.csrf}
          page={`/admin/developers/${account.id}`}
          suspended={suspended}
          errors={props.errors}
          unsuspend="They can sign in again, and the credentials that were active before the suspension work again."
          suspend="They are signed out and cannot sign in, and the credentials of their personal team stop working within a second. Unsuspending restores exactly what was active."
        />
      ) : null}
      {props.canAct && props.view.liveSessions > 0 ? (
        <ActionPanel csrf={props.chrome.csrf} id="end-sessions" title="End sessions" action={`/admin/developers/${account.id}/end-sessions`} button="End sessions" danger errors={props.errors}>
          <p>
            Signs them out of {props.view.liveSessions === 1 ? 'their session' : `all ${props.view.liveSessions} sessions`} now. They can sign in again.
          </p>
        </ActionPanel>
      ) : null}
      <EventsPanel events={props.view.events} now={now} subject={{ type: 'account', id: account.id }} />
    </AdminLayout>
  );
}

export interface TeamAdminView {
  team: { id: string; name: string; status: string; createdAt: Date; personal: boolean };
  members: { id: string; email: string; role: string; status: string }[];
  keys: { id: string; name: string; status: string }[];
  applications: { id: string; name: string; status: string }[];
  pendingRequests: number;
  usage: UsageChartPoint[];
  events: AdminEventView[];
}

export function TeamAdminPage(props: { chrome: Chrome; now: Date; view: TeamAdminView; canAct: boolean; errors?: ActionErrors }) {
  const { team, members, keys, applications } = props.view;
  const now = props.now;
  return (
    <AdminLayout chrome={props.chrome} title={`Team ${team.name}`}>
      <PageHeader title={team.name} description={team.personal ? 'Personal team' : 'Team'} />
      <FactsPanel>
        <dt>Status</dt>
        <dd>
          <Badge status={team.status} />
        </dd>
        <dt>Created</dt>
        <dd>
          <Time at={team.createdAt} now={now} />
        </dd>
        <dt>Pending requests</dt>
        <dd>{props.view.pendingRequests > 0 ? <a href="/admin/requests">{props.view.pendingRequests}</a> : 0}</dd>
      </FactsPanel>
      <Panel id="members" title="Members">
        <DataTable head={['Email', 'Role', 'Status']}>
          {members.map((m) => (
            <MembershipRow href={`/admin/developers/${m.id}`} label={m.email} role={m.role} status={m.status} />
          ))}
        </DataTable>
      </Panel>
      <Panel id="credentials" title="Credentials">
        {keys.length === 0 && applications.length === 0 ? (
          <EmptyState title="No keys or applications" />
        ) : (
          <DataTable head={['Kind', 'Id', 'Name', 'Status']}>
            {keys.map((k) => (
              <CredentialRow kind="API key" href={`/admin/keys/${k.id}`} id={`lk_${k.id}`} name={k.name} status={k.status} />
            ))}
            {applications.map((c) => (
              <CredentialRow kind="Application" href={`/admin/applications/${c.id}`} id={c.id} name={c.name} status={c.status} />
            ))}
          </DataTable>
        )}
      </Panel>
      {props.canAct ? (
        <SuspendPanel
          csrf={props.chrome.csrf}
          page={`/admin/teams/${team.id}`}
          suspended={team.status === 'suspended'}
          errors={props.errors}
          unsuspend="Exactly the keys and applications that were active before the suspension work again, on every node within a second."
          suspend="All of this team's keys and applications stop working within a second, on every node. Unsuspending restores exactly what was active."
        />
      ) : null}
      <Panel id="team-usage" title="Usage">
        <UsageChart series={props.view.usage} title="Checks of this team's credentials" />
      </Panel>
      <EventsPanel events={props.view.events} now={now} subject={{ type: 'team', id: team.id }} />
    </AdminLayout>
  );
}
