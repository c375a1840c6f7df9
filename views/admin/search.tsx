import type { SearchResults } from '../../src/admin/search.ts';
import { Badge, DataTable, EmptyState, PageHeader } from '../components.tsx';
import type { Chrome } from '../layout.tsx';
import { SearchBox } from './dashboard.tsx';
import { AdminLayout } from './layout.tsx';

function Group<T>(props: { title: string; id: string; hits: { rows: T[]; more: boolean }; head: string[]; row: (item: T) => preact.JSX.Element }) {
  if (props.hits.rows.length === 0) return null;
  return (
    <section aria-labelledby={props.id}>
      <h2 id={props.id}>
        {props.title} <span class="count-pill">{props.hits.rows.length}{props.hits.more ? '+' : ''}</span>
      </h2>
      <DataTable head={props.head}>{props.hits.rows.map(props.row)}</DataTable>
      {props.hits.more ? <p class="muted small">Only the first {props.hits.rows.length} are shown: make the search more precise.</p> : null}
    </section>
  );
}

const keyStatus = (k: { revokedAt: Date | null; expiresAt: Date | null }, now: Date) => (k.revokedAt ? 'revoked' : k.expiresAt && k.expiresAt <= now ? 'expired' : 'active');

function TeamCell(props: { id: string | null; name: string | null }) {
  return props.id ? <a href={`/admin/teams/${props.id}`}>{props.name}</a> : <span class="muted">operator</span>;
}

export function SearchPage(props: { chrome: Chrome; now: Date; results: SearchResults | null }) {
  const r = props.results;
  const total = r ? r.keys.rows.length + r.applications.rows.length + r.developers.rows.length + r.teams.rows.length : 0;
  return (
    <AdminLayout chrome={props.chrome} title={r ? `Search: ${r.query}` : 'Search'}>
      <PageHeader title="Search" description="Find a key, an application, a developer or a team. An exact id comes first." />
      <div class="panel">
        <SearchBox query={r?.query} autofocus={!r} />
      </div>
      {r === null ? null : total === 0 ? (
        <EmptyState title={`Nothing matches “${r.query}”`}>
          <p class="muted">Try a key id (lk_…), a client id (lkc_…), part of an email, or part of a name.</p>
        </EmptyState>
      ) : (
        <>
          <p class="muted" role="status">
            {total} result{total === 1 ? '' : 's'} for “{r.query}”
          </p>
          <Group
            title="API keys"
            id="keys-heading"
            hits={r.keys}
            head={['Key', 'Name', 'Team', 'Status']}
            row={(k) => (
              <tr>
                <td>
                  <a href={`/admin/keys/${k.id}`}>
                    <code>lk_{k.id}</code>
                  </a>
                </td>
                <td>{k.name}</td>
                <td>
                  <TeamCell id={k.teamId} name={k.teamName} />
                </td>
                <td>
                  <Badge status={keyStatus(k, props.now)} />
                </td>
              </tr>
            )}
          />
          <Group
            title="Applications"
            id="applications-heading"
            hits={r.applications}
            head={['Client id', 'Name', 'Team', 'Status']}
            row={(c) => (
              <tr>
                <td>
                  <a href={`/admin/applications/${c.id}`}>
                    <code>{c.id}</code>
                  </a>
                </td>
                <td>{c.name}</td>
                <td>
                  <TeamCell id={c.teamId} name={c.teamName} />
                </td>
                <td>
                  <Badge status={c.status} />
                </td>
              </tr>
            )}
          />
          <Group
            title="Developers"
            id="developers-heading"
            hits={r.developers}
            head={['Email', 'Role', 'Status']}
            row={(d) => (
              <tr>
                <td>
                  <a href={`/admin/developers/${d.id}`}>{d.email}</a>
                </td>
                <td>{d.role}</td>
                <td>
                  <Badge status={d.status} />
                </td>
              </tr>
            )}
          />
          <Group
            title="Teams"
            id="teams-heading"
            hits={r.teams}
            head={['Name', 'Kind', 'Status']}
            row={(t) => (
              <tr>
                <td>
                  <a href={`/admin/teams/${t.id}`}>{t.name}</a>
                </td>
                <td>{t.personal ? 'personal' : 'shared'}</td>
                <td>
                  <Badge status={t.status} />
                </td>
              </tr>
            )}
          />
        </>
      )}
    </AdminLayout>
  );
}
