import type { Deps } from '../context.ts';
import type { ApiKeyFields } from './presenters.ts';

export type KeyListTab = 'live' | 'inactive';

export interface KeyListPage {
  keys: ApiKeyFields[];
  counts: Record<KeyListTab, number>;
  hasNext: boolean;
}

// A team's keys, a page of one tab, with both tabs' counts: one round trip below Prisma,
// since the key list is the portal's busiest page (bench/portal.ts). `live` is liveKeyWhere
// (api-keys.ts) written in SQL: not revoked, not past its expiry. Uses api_key_team_id_idx.
const KEY_LIST_SQL = `
  WITH team_keys AS (
    SELECT id, name, team_id, scopes, audiences, created_at, last_used_at, expires_at, revoked_at, revoked_reason, replaced_by_id,
           revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) AS live
      FROM api_key WHERE team_id = $1
  ), counts AS (
    SELECT count(*) FILTER (WHERE live)::int AS live_count, count(*) FILTER (WHERE NOT live)::int AS inactive_count FROM team_keys
  )
  SELECT c.live_count, c.inactive_count, k.*
    FROM counts c
    LEFT JOIN LATERAL (SELECT * FROM team_keys WHERE live = $3 ORDER BY created_at DESC, id DESC OFFSET $4 LIMIT $5) k ON true`;

interface Row {
  live_count: number;
  inactive_count: number;
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
}

export async function listTeamKeys(
  deps: Pick<Deps, 'db'>,
  input: { teamId: string; tab: KeyListTab; page: number; pageSize: number; now: Date },
): Promise<KeyListPage> {
  const rows = (await deps.db.query({
    name: 'team_key_list',
    text: KEY_LIST_SQL,
    values: [input.teamId, input.now, input.tab === 'live', (input.page - 1) * input.pageSize, input.pageSize + 1],
  })) as Row[];
  const counts = { live: rows[0]?.live_count ?? 0, inactive: rows[0]?.inactive_count ?? 0 };
  // An empty page still has its one row of counts (the lateral join found nothing).
  const keys = rows
    .filter((row) => row.id !== null)
    .map((row) => ({
      id: row.id!,
      name: row.name,
      teamId: row.team_id,
      scopes: row.scopes,
      audiences: row.audiences,
      createdAt: row.created_at,
      lastUsedAt: row.last_used_at,
      expiresAt: row.expires_at,
      revokedAt: row.revoked_at,
      revokedReason: row.revoked_reason,
      replacedById: row.replaced_by_id,
    }));
  return { keys: keys.slice(0, input.pageSize), counts, hasNext: keys.length > input.pageSize };
}
