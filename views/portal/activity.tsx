import { EmptyState, EventsTable, PageHeader, Panel } from '../components.tsx';
import { Layout, type Chrome } from '../layout.tsx';
import { UsageChart, type UsageChartPoint } from '../usage-chart.tsx';

export interface ActivityEventView {
  seq: string;
  at: Date;
  /** The event type in plain words ("API key created"). */
  what: string;
  /** The actor: an email for people, else "application <id>", "Latchkey", … */
  who: string;
  /** What it concerns ("API key lk_3f9…", "team"). */
  subject: string;
}

export interface ActivityAlertView {
  seq: string;
  at: Date;
  /** The kind in plain words ("Traffic spike"). */
  what: string;
  /** "API key lk_…" or "Application lkc_…". */
  credential: string;
  /** The figures, in a sentence. */
  detail: string;
}

export function ActivityPage(props: { chrome: Chrome; now: Date; teamName: string; usage: UsageChartPoint[]; alerts: ActivityAlertView[]; events: ActivityEventView[] }) {
  const { chrome, now, events } = props;
  return (
    <Layout chrome={chrome} title="Activity">
      <PageHeader title="Activity" description={`Checks and recent events of the team ${props.teamName}.`} />
      <Panel id="usage" title="Checks of the team’s credentials">
        <UsageChart series={props.usage} title="API keys and applications" />
      </Panel>
      <section aria-labelledby="alerts-heading">
        <h2 id="alerts-heading">Recent alerts</h2>
        {props.alerts.length === 0 ? (
          <EmptyState title="No alerts">
            <p>Spikes, bursts of failed checks, use from a new network and use of a rotated-out secret appear here, and are mailed to the team’s owners.</p>
          </EmptyState>
        ) : (
          <EventsTable
            head={['Alert', 'Credential', 'Details']}
            rows={props.alerts}
            now={now}
            cells={(alert) => (
              <>
                <td>{alert.what}</td>
                <td>{alert.credential}</td>
                <td>{alert.detail}</td>
              </>
            )}
          />
        )}
      </section>
      <section aria-labelledby="events-heading">
        <h2 id="events-heading">Recent events</h2>
        {events.length === 0 ? (
          <EmptyState title="Nothing has happened yet">
            <p>Changes to the team’s keys, applications and people appear here.</p>
          </EmptyState>
        ) : (
          <EventsTable
            head={['Event', 'Who', 'Subject']}
            rows={events}
            now={now}
            cells={(event) => (
              <>
                <td>{event.what}</td>
                <td>{event.who}</td>
                <td>{event.subject}</td>
              </>
            )}
          />
        )}
        <p class="muted small">The 50 most recent events.</p>
      </section>
    </Layout>
  );
}
