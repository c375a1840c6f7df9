import type { Deps } from '../context.ts';
import { KEY_ID } from '../credentials/api-key-format.ts';
import { CLIENT_ID } from '../credentials/clients.ts';

/** How many hits of each kind a search shows; one more is read to tell that there are more. */
export const SEARCH_LIMIT = 10;
export const SEARCH_MAX_LENGTH = 200;

export interface SearchHits<T> {
  rows: T[];
  /** More matched than are shown: narrow the search. */
  more: boolean;
}

export interface SearchResults {
  query: string;
  keys: SearchHits<{ id: string; name: string; teamId: string | null; teamName: string | null; revokedAt: Date | null; expiresAt: Date | null }>;
  applications: SearchHits<{ id: string; name: string; teamId: string | null; teamName: string | null; status: string }>;
  developers: SearchHits<{ id: string; email: string; role: string; status: string }>;
  teams: SearchHits<{ id: string; name: string; status: string; personal: boolean }>;
}

/** LIKE's wildcards and its escape character, taken literally (a search for `50%_off` means that text). */
export const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * What was typed, as an id where it can be one: a pasted key `lk_<id>_<secret>` or its
 * public part `lk_<id>` is looked up by its id (the secret is never used or kept).
 */
function keyIdIn(query: string): string | null {
  const match = /^lk_([0-9A-Za-z]{12})(?:_|$)/.exec(query);
  if (match) return match[1]!;
  return KEY_ID.test(query) ? query : null;
}

// Each kind in one statement: an exact id (or exact name) first, then ids that start with the
// text, then names containing it; bounded. Names are matched case-insensitively, ids exactly.
const KEYS_SQL = `
  SELECT k.id, k.name, k.team_id, t.name AS team_name, k.revoked_at, k.expires_at
    FROM api_key k LEFT JOIN team t ON t.id = k.team_id
   WHERE k.id = $2 OR k.id LIKE $3 ESCAPE '\\' OR k.name ILIKE $4 ESCAPE '\\'
   ORDER BY (k.id = $2) DESC, (lower(k.name) = lower($1)) DESC, k.revoked_at IS NOT NULL, k.created_at DESC
   LIMIT $5`;
const APPLICATIONS_SQL = `
  SELECT c.id, c.name, c.team_id, t.name AS team_name, c.status
    FROM oauth_client c LEFT JOIN team t ON t.id = c.team_id
   WHERE c.id = $1 OR c.id LIKE $2 ESCAPE '\\' OR c.name ILIKE $3 ESCAPE '\\'
   ORDER BY (c.id = $1) DESC, (lower(c.name) = lower($1)) DESC, c.status = 'revoked', c.created_at DESC
   LIMIT $4`;
const DEVELOPERS_SQL = `
  SELECT id, email, role, status
    FROM account
   WHERE id::text = $2 OR email ILIKE $3 ESCAPE '\\'
   ORDER BY (id::text = $2) DESC, (email = lower($1)) DESC, email
   LIMIT $4`;
const TEAMS_SQL = `
  SELECT id, name, status, personal_account_id IS NOT NULL AS personal
    FROM team
   WHERE id::text = $2 OR name ILIKE $3 ESCAPE '\\'
   ORDER BY (id::text = $2) DESC, (lower(name) = lower($1)) DESC, name
   LIMIT $4`;

const hits = <T>(rows: T[]): SearchHits<T> => ({ rows: rows.slice(0, SEARCH_LIMIT), more: rows.length > SEARCH_LIMIT });

/** One box across key ids and names, client ids and names, emails and team names (issue 8 §1.2), grouped by kind. */
export async function searchEverything(deps: Pick<Deps, 'db'>, raw: string): Promise<SearchResults> {
  const query = raw.trim().slice(0, SEARCH_MAX_LENGTH);
  const limit = SEARCH_LIMIT + 1;
  const contains = `%${escapeLike(query)}%`;
  const keyId = keyIdIn(query) ?? '';
  const clientId = CLIENT_ID.test(query) ? query : '';
  const uuid = UUID.test(query) ? query.toLowerCase() : '';
  // A key id prefix (at least 4 characters: fewer would match everything).
  const keyPrefix = /^(?:lk_)?([0-9A-Za-z]{4,11})$/.exec(query)?.[1];
  const clientPrefix = /^lkc_[0-9A-Za-z]{2,21}$/.test(query) ? query : null;
  const [keys, applications, developers, teams] = await Promise.all([
    deps.db.query(KEYS_SQL, [query, keyId, keyPrefix ? `${escapeLike(keyPrefix)}%` : '', contains, limit]),
    deps.db.query(APPLICATIONS_SQL, [clientId || query, clientPrefix ? `${escapeLike(clientPrefix)}%` : '', contains, limit]),
    deps.db.query(DEVELOPERS_SQL, [query, uuid, contains, limit]),
    deps.db.query(TEAMS_SQL, [query, uuid, contains, limit]),
  ]);
  type KeyRow = { id: string; name: string; team_id: string | null; team_name: string | null; revoked_at: Date | null; expires_at: Date | null };
  type AppRow = { id: string; name: string; team_id: string | null; team_name: string | null; status: string };
  return {
    query,
    keys: hits((keys as KeyRow[]).map((k) => ({ id: k.id, name: k.name, teamId: k.team_id, teamName: k.team_name, revokedAt: k.revoked_at, expiresAt: k.expires_at }))),
    applications: hits((applications as AppRow[]).map((c) => ({ id: c.id, name: c.name, teamId: c.team_id, teamName: c.team_name, status: c.status }))),
    developers: hits(developers as { id: string; email: string; role: string; status: string }[]),
    teams: hits(teams as { id: string; name: string; status: string; personal: boolean }[]),
  };
}
