import type { Deps } from '../context.ts';
import { tabbedPage } from '../db/tabbed-page.ts';
import type { ApiKeyFields } from './presenters.ts';

export type KeyListTab = 'live' | 'inactive';

export interface KeyListPage {
  keys: ApiKeyFields[];
  counts: Record<KeyListTab, number>;
  hasNext: boolean;
}

// A team's keys, a page of one tab with both tabs' counts (db/tabbed-page.ts), below Prisma
// since the key list is the portal's busiest page (bench/portal.ts). `live` is liveKeyWhere
// (api-keys.ts) written in SQL: not revoked, not past its expiry. Uses api_key_team_id_idx.
const KEY_LIST_SQL = `
  WITH team_keys AS (
    SELECT id, name, team_id, scopes, audiences, created_at, last_used_at, expires_at, revoked_at, revoked_reason, replaced_by_id, suspended_at,
           revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) AS live
      FROM api_key WHERE team_id = $1
  ), counts AS (
    SELECT count(*) FILTER (WHERE live)::int AS first_tab_count, count(*) FILTER (WHERE NOT live)::int AS second_tab_count FROM team_keys
  )
  SELECT c.first_tab_count, c.second_tab_count, k.*
    FROM counts c
    LEFT JOIN LATERAL (SELECT * FROM team_keys WHERE live = $3 ORDER BY created_at DESC, id DESC OFFSET $4 LIMIT $5) k ON true`;

interface Row {
  id: string | null;
  name: string;
  team_id: string | null;
  scopes: string[];
  audiences: string[];
  created_at: Date;
  last_used_at: Date | null;
  expires_at: Date | null;
  revoked_at: Date | null;
  revoked_reason: string | null;
  replaced_by_id: string | null;
  suspended_at: Date | null;
}

export async function listTeamKeys(
  deps: Pick<Deps, 'db'>,
  input: { teamId: string; tab: KeyListTab; page: number; pageSize: number; now: Date },
): Promise<KeyListPage> {
  const page = await tabbedPage<Row, ApiKeyFields>(
    deps.db,
    { name: 'team_key_list', text: KEY_LIST_SQL, values: [input.teamId, input.now, input.tab === 'live', (input.page - 1) * input.pageSize, input.pageSize + 1] },
    input.pageSize,
    (row) => ({
      id: row.id,
      name: row.name,
      teamId: row.team_id,
      scopes: row.scopes,
      audiences: row.audiences,
      createdAt: row.created_at,
      lastUsedAt: row.last_used_at,
      expiresAt: row.expires_at,
      revokedAt: row.revoked_at,
      revokedReason: row.revoked_reason,
      suspendedAt: row.suspended_at,
      replacedById: row.replaced_by_id,
    }),
  );
  return { keys: page.items, counts: { live: page.counts[0], inactive: page.counts[1] }, hasNext: page.hasNext };
}
