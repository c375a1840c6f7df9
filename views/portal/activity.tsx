import { EmptyState, PageHeader, Time } from '../components.tsx';
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

export function ActivityPage(props: { chrome: Chrome; now: Date; teamName: string; usage: UsageChartPoint[]; events: ActivityEventView[] }) {
  const { chrome, now, events } = props;
  return (
    <Layout chrome={chrome} title="Activity">
      <PageHeader title="Activity" description={`Checks and recent events of the team ${props.teamName}.`} />
      <section class="panel" aria-labelledby="usage-heading">
        <h2 id="usage-heading">Checks of the team’s credentials</h2>
        <UsageChart series={props.usage} title="API keys and applications" />
      </section>
      <section aria-labelledby="events-heading">
        <h2 id="events-heading">Recent events</h2>
        {events.length === 0 ? (
          <EmptyState title="Nothing has happened yet">
            <p>Changes to the team’s keys, applications and people appear here.</p>
          </EmptyState>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Event</th>
                  <th scope="col">Who</th>
                  <th scope="col">Subject</th>
                </tr>
              </thead>
              <tbody>
                {events.map((event) => (
                  <tr>
                    <td>
                      <Time at={event.at} now={now} />
                    </td>
                    <td>{event.what}</td>
                    <td>{event.who}</td>
                    <td>{event.subject}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <p class="muted small">The 50 most recent events.</p>
      </section>
    </Layout>
  );
}
