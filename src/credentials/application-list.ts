import type { Deps } from '../context.ts';
import { tabbedPage } from '../db/tabbed-page.ts';
import type { ApplicationFields } from './presenters.ts';

/** Active holds every application not revoked (a suspended one too, with its badge). */
export type ApplicationListTab = 'active' | 'revoked';

export interface ApplicationListPage {
  applications: ApplicationFields[];
  counts: Record<ApplicationListTab, number>;
  hasNext: boolean;
}

// A team's applications, a page of one tab with both tabs' counts (db/tabbed-page.ts), the
// key list's shape. Not the key set (jwks): the list shows no key ids, and a set can be
// 32 kB. Uses oauth_client_team_id_idx.
const APPLICATION_LIST_SQL = `
  WITH team_clients AS (
    SELECT id, name, team_id, scopes, audiences, auth_method, grant_types, status, created_at, last_used_at, revoked_at,
           previous_secret_expires_at, secret_version, jwks_uri, status <> 'revoked' AS active
      FROM oauth_client WHERE team_id = $1
  ), counts AS (
    SELECT count(*) FILTER (WHERE active)::int AS first_tab_count, count(*) FILTER (WHERE NOT active)::int AS second_tab_count FROM team_clients
  )
  SELECT c.first_tab_count, c.second_tab_count, a.*
    FROM counts c
    LEFT JOIN LATERAL (SELECT * FROM team_clients WHERE active = $2 ORDER BY created_at DESC, id DESC OFFSET $3 LIMIT $4) a ON true`;

interface Row {
  id: string | null;
  name: string;
  team_id: string | null;
  scopes: string[];
  audiences: string[];
  auth_method: string;
  grant_types: string[];
  status: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
  previous_secret_expires_at: Date | null;
  secret_version: number;
  jwks_uri: string | null;
}

export async function listTeamApplications(
  deps: Pick<Deps, 'db'>,
  input: { teamId: string; tab: ApplicationListTab; page: number; pageSize: number },
): Promise<ApplicationListPage> {
  const page = await tabbedPage<Row, ApplicationFields>(
    deps.db,
    { name: 'team_application_list', text: APPLICATION_LIST_SQL, values: [input.teamId, input.tab === 'active', (input.page - 1) * input.pageSize, input.pageSize + 1] },
    input.pageSize,
    (row) => ({
      id: row.id,
      name: row.name,
      teamId: row.team_id,
      scopes: row.scopes,
      audiences: row.audiences,
      authMethod: row.auth_method,
      grantTypes: row.grant_types,
      status: row.status,
      createdAt: row.created_at,
      lastUsedAt: row.last_used_at,
      revokedAt: row.revoked_at,
      previousSecretExpiresAt: row.previous_secret_expires_at,
      secretVersion: row.secret_version,
      jwksUri: row.jwks_uri,
    }),
  );
  return { applications: page.items, counts: { active: page.counts[0], revoked: page.counts[1] }, hasNext: page.hasNext };
}
