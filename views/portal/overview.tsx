import { LinkButton, PageHeader } from '../components.tsx';
import { Layout, type Chrome } from '../layout.tsx';

export interface OverviewView {
  teamName: string;
  keys: number;
  applications: number;
  pendingRequests: number;
  /** Approved requests whose key or secret is waiting to be shown once. */
  waiting: { id: string; name: string }[];
  mfaOn: boolean;
  members: number;
}

/** The landing page: where the team stands, and the next step when there is one. */
export function OverviewPage(props: { chrome: Chrome; view: OverviewView }) {
  const { view } = props;
  return (
    <Layout chrome={props.chrome} title="Overview">
      <PageHeader title="Overview" description={`Team ${view.teamName}`} actions={<LinkButton href="/portal/keys/new">New API key</LinkButton>} />
      {view.waiting.map((request) => (
        <div class="flash flash-info" role="status">
          Your request “{request.name}” was approved. <a href={`/portal/requests/${request.id}`}>Show it now</a>: it is shown once.
        </div>
      ))}
      <div class="grid">
        <a class="stat" href="/portal/keys">
          <span class="stat-value">{view.keys}</span> live API keys
        </a>
        <a class="stat" href="/portal/applications">
          <span class="stat-value">{view.applications}</span> active applications
        </a>
        <a class="stat" href="/portal/requests">
          <span class="stat-value">{view.pendingRequests}</span> pending requests
        </a>
        <a class="stat" href="/portal/team">
          <span class="stat-value">{view.members}</span> team members
        </a>
      </div>
      {view.keys === 0 && view.applications === 0 ? (
        <section class="panel" aria-labelledby="get-started">
          <h2 id="get-started">Get started</h2>
          <ol>
            <li>
              <a href="/portal/keys/new">Create an API key</a> for a service that calls an API protected by Latchkey; the API checks it at
              <code> /introspect</code>.
            </li>
            <li>
              Or <a href="/portal/applications/new">create an application</a> that gets short-lived access tokens from <code>/token</code> with its
              client id and secret.
            </li>
            <li>
              <a href="/portal/team">Invite your colleagues</a>: credentials belong to the team, so they outlive anyone's account.
            </li>
          </ol>
        </section>
      ) : null}
      {view.mfaOn ? null : (
        <section class="panel" aria-labelledby="protect">
          <h2 id="protect">Protect your account</h2>
          <p>Whoever signs in as you can create and revoke your team's keys. Turn on two-factor authentication so a password alone is not enough.</p>
          <LinkButton href="/portal/security" variant="secondary">
            Go to Security
          </LinkButton>
        </section>
      )}
    </Layout>
  );
}
