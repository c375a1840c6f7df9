import type { DashboardFigures } from '../../src/admin/dashboard.ts';
import { Button, EmptyState, EventsTable, Field, Form, PageHeader, Time } from '../components.tsx';
import type { Chrome } from '../layout.tsx';
import { AdminLayout } from './layout.tsx';

/** The one search box (DESIGN §2: field Search, button Search), on the dashboard and the search page. */
export function SearchBox(props: { query?: string; autofocus?: boolean }) {
  return (
    <Form action="/admin/search" csrf="" method="get" class="search-form">
      <Field
        label="Search"
        name="q"
        type="search"
        value={props.query}
        maxLength={200}
        autofocus={props.autofocus}
        hint="A key id or name, an application's client id or name, an email, or a team name."
      />
      <div class="search-submit">
        <Button>Search</Button>
      </div>
    </Form>
  );
}

function Stat(props: { label: string; value: number; href?: string; note?: string }) {
  const body = (
    <>
      <span class="stat-value">{props.value.toLocaleString('en')}</span>
      <span class="stat-label">{props.label}</span>
      {props.note ? <span class="muted small">{props.note}</span> : null}
    </>
  );
  return props.href ? (
    <a class="stat" href={props.href}>
      {body}
    </a>
  ) : (
    <div class="stat">{body}</div>
  );
}

export function DashboardPage(props: { chrome: Chrome; now: Date; figures: DashboardFigures }) {
  const f = props.figures;
  return (
    <AdminLayout chrome={props.chrome} title="Admin dashboard">
      <PageHeader title="Dashboard" description="What Latchkey holds and what happened lately. Find a credential, a person or a team to act on it." />
      <div class="panel">
        <SearchBox autofocus />
      </div>
      <p class="muted small">
        Figures as of <Time at={f.asOf} now={props.now} />; they are read again every 30 seconds.
      </p>
      <h2>People and credentials</h2>
      <div class="grid stats">
        <Stat label="Developers" value={f.developers} />
        <Stat label="Teams" value={f.teams} />
        <Stat label="Applications" value={f.applications} note="not revoked" />
        <Stat label="Active API keys" value={f.activeKeys} />
        <Stat label="Keys expiring within 14 days" value={f.expiringKeys} />
      </div>
      <h2>Activity</h2>
      <div class="grid stats">
        <Stat label="Tokens issued today" value={f.tokensToday} note="since 00:00 UTC" />
        <Stat label="Pending requests" value={f.pendingRequests} href="/admin/requests" />
        <Stat label="Failed checks, last hour" value={f.failedChecks} note="keys and tokens refused at introspection" />
      </div>
      <h2>Recent alerts</h2>
      {f.alerts.length === 0 ? (
        <EmptyState title="No alerts in the last 7 days">
          <p class="muted">Alerts about unusual use of credentials appear here when they are raised.</p>
        </EmptyState>
      ) : (
        <EventsTable
          head={['Alert', 'About']}
          rows={f.alerts}
          now={props.now}
          cells={(a) => (
            <>
              <td>
                <code>{a.type}</code>
              </td>
              <td>{a.subjectType ? <SubjectLink type={a.subjectType} id={a.subjectId} /> : <span class="muted">—</span>}</td>
            </>
          )}
        />
      )}
    </AdminLayout>
  );
}

const SUBJECT_PAGES: Record<string, string> = { api_key: 'keys', client: 'applications', account: 'developers', team: 'teams' };

/** An audit subject as a link to its admin page when it has one. */
export function SubjectLink(props: { type: string; id: string | null }) {
  const page = SUBJECT_PAGES[props.type];
  const label = (
    <>
      {props.type.replace('_', ' ')} <code>{props.id ?? '—'}</code>
    </>
  );
  return page && props.id ? <a href={`/admin/${page}/${encodeURIComponent(props.id)}`}>{label}</a> : <span>{label}</span>;
}
