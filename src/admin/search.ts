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

export interface KeyHit {
  id: string;
  name: string;
  teamId: string | null;
  teamName: string | null;
  revokedAt: Date | null;
  expiresAt: Date | null;
}
export interface ApplicationHit {
  id: string;
  name: string;
  teamId: string | null;
  teamName: string | null;
  status: string;
}
export interface DeveloperHit {
  id: string;
  email: string;
  role: string;
  status: string;
}
export interface TeamHit {
  id: string;
  name: string;
  status: string;
  personal: boolean;
}

export interface SearchResults {
  query: string;
  keys: SearchHits<KeyHit>;
  applications: SearchHits<ApplicationHit>;
  developers: SearchHits<DeveloperHit>;
  teams: SearchHits<TeamHit>;
}

/** LIKE's wildcards and its escape character (the default, backslash), taken literally: `50%_off` means that text. */
export const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A pasted key `lk_<id>_<secret>` or its public part `lk_<id>` is looked up by its id (the secret is never used or kept). */
function keyIdIn(query: string): string | null {
  const match = /^lk_([0-9A-Za-z]{12})(?:_|$)/.exec(query);
  if (match) return match[1]!;
  return KEY_ID.test(query) ? query : null;
}

// Each kind: the exact id first, then ids starting with the text, then names (emails) starting
// with it, case-insensitively — every part a bounded range scan of an index of migration
// 20261202030000_admin (lower(...) COLLATE "C"; LIKE without an ESCAPE clause, so that the
// planner turns the prefix into an index range). Duplicates are dropped in order.
const KEY_COLUMNS = `k.id, k.name, k.team_id, t.name AS team_name, k.revoked_at, k.expires_at FROM api_key k LEFT JOIN team t ON t.id = k.team_id`;
const KEYS_SQL = `
  (SELECT ${KEY_COLUMNS} WHERE k.id = $1)
  UNION ALL
  (SELECT ${KEY_COLUMNS} WHERE lower(k.id) COLLATE "C" LIKE $2 ORDER BY lower(k.id) COLLATE "C" LIMIT $4)
  UNION ALL
  (SELECT ${KEY_COLUMNS} WHERE lower(k.name) COLLATE "C" LIKE $3 ORDER BY lower(k.name) COLLATE "C", k.id LIMIT $4)`;
const APP_COLUMNS = `c.id, c.name, c.team_id, t.name AS team_name, c.status FROM oauth_client c LEFT JOIN team t ON t.id = c.team_id`;
const APPLICATIONS_SQL = `
  (SELECT ${APP_COLUMNS} WHERE c.id = $1)
  UNION ALL
  (SELECT ${APP_COLUMNS} WHERE lower(c.id) COLLATE "C" LIKE $2 ORDER BY lower(c.id) COLLATE "C" LIMIT $4)
  UNION ALL
  (SELECT ${APP_COLUMNS} WHERE lower(c.name) COLLATE "C" LIKE $3 ORDER BY lower(c.name) COLLATE "C", c.id LIMIT $4)`;
const DEVELOPERS_SQL = `
  (SELECT id::text, email, role, status FROM account WHERE id = $1::uuid)
  UNION ALL
  (SELECT id::text, email, role, status FROM account WHERE lower(email) COLLATE "C" LIKE $2 ORDER BY lower(email) COLLATE "C" LIMIT $4)
  UNION ALL
  (SELECT id::text, email, role, status FROM account WHERE lower(split_part(email, '@', 2)) COLLATE "C" LIKE $3
    ORDER BY lower(split_part(email, '@', 2)) COLLATE "C", email LIMIT $4)`;
const TEAMS_SQL = `
  (SELECT id::text, name, status, personal_account_id IS NOT NULL AS personal FROM team WHERE id = $1::uuid)
  UNION ALL
  (SELECT id::text, name, status, personal_account_id IS NOT NULL AS personal FROM team WHERE lower(name) COLLATE "C" LIKE $2
    ORDER BY lower(name) COLLATE "C", id LIMIT $3)`;

/** Rows in order, each id once, at most SEARCH_LIMIT, and whether there were more. */
function hits<T extends { id: string }>(rows: T[]): SearchHits<T> {
  const seen = new Set<string>();
  const unique = rows.filter((row) => !seen.has(row.id) && seen.add(row.id));
  return { rows: unique.slice(0, SEARCH_LIMIT), more: unique.length > SEARCH_LIMIT };
}

type KeyRow = { id: string; name: string; team_id: string | null; team_name: string | null; revoked_at: Date | null; expires_at: Date | null };
type AppRow = { id: string; name: string; team_id: string | null; team_name: string | null; status: string };
// The pattern of a part of a search that does not apply: only an empty text matches it, and
// no id, name or email is empty.
const NEVER = '';

/** One box across key ids and names, client ids and names, emails and team names (issue 8 §1.2), grouped by kind. */
export async function searchEverything(deps: Pick<Deps, 'db'>, raw: string): Promise<SearchResults> {
  const query = raw.trim().slice(0, SEARCH_MAX_LENGTH);
  const limit = SEARCH_LIMIT + 1;
  const prefix = `${escapeLike(query.toLowerCase())}%`;
  const keyId = keyIdIn(query);
  // An id prefix of at least 4 characters (fewer would list everything), with or without lk_.
  const keyPrefix = /^(?:lk_)?([0-9A-Za-z]{4,11})$/.exec(query)?.[1];
  const clientPrefix = /^lkc_[0-9A-Za-z]{2,21}$/.test(query) ? query : null;
  const uuid = UUID.test(query) ? query.toLowerCase() : null;
  const domain = query.startsWith('@') && query.length > 1 ? `${escapeLike(query.slice(1).toLowerCase())}%` : NEVER;
  const [keys, applications, developers, teams] = await Promise.all([
    deps.db.query(KEYS_SQL, [keyId ?? '', keyPrefix ? `${keyPrefix.toLowerCase()}%` : NEVER, prefix, limit]) as Promise<KeyRow[]>,
    deps.db.query(APPLICATIONS_SQL, [CLIENT_ID.test(query) ? query : '', clientPrefix ? `${clientPrefix.toLowerCase()}%` : NEVER, prefix, limit]) as Promise<AppRow[]>,
    deps.db.query(DEVELOPERS_SQL, [uuid, query.startsWith('@') ? NEVER : prefix, domain, limit]) as Promise<DeveloperHit[]>,
    deps.db.query(TEAMS_SQL, [uuid, prefix, limit]) as Promise<TeamHit[]>,
  ]);
  return {
    query,
    keys: hits(keys.map((k) => ({ id: k.id, name: k.name, teamId: k.team_id, teamName: k.team_name, revokedAt: k.revoked_at, expiresAt: k.expires_at }))),
    applications: hits(applications.map((c) => ({ id: c.id, name: c.name, teamId: c.team_id, teamName: c.team_name, status: c.status }))),
    developers: hits(developers),
    teams: hits(teams),
  };
}
