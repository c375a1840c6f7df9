import type { Deps } from '../context.ts';

/** What the admin dashboard shows (issue 8 §1.2): counts, and the newest alerts. */
export interface DashboardFigures {
  /** When these figures were read (they may be up to FIGURES_FRESH_MS old: see cachedDashboardFigures). */
  asOf: Date;
  developers: number;
  teams: number;
  applications: number;
  activeKeys: number;
  /** Live keys that stop working within EXPIRING_WITHIN_MS. */
  expiringKeys: number;
  /** `token.issued` audit events since 00:00 UTC. */
  tokensToday: number;
  pendingRequests: number;
  /** `api_key.check_failed` / `access_token.check_failed` audit events (credentials/introspection.ts) in the last hour. */
  failedChecks: number;
  alerts: { seq: string; at: Date; type: string; subjectType: string | null; subjectId: string | null; data: unknown }[];
}

export const EXPIRING_WITHIN_MS = 14 * 86_400_000;
export const CHECK_FAILED_TYPES = ['api_key.check_failed', 'access_token.check_failed'];

// One round trip. The audit counts and alerts read the (type, at) index. For the alerts, every
// type starting with the letters "alert" sorts in ['alert', 'aleru') under byte order and under
// linguistic collations alike (punctuation weighs less than letters there), so the range uses
// the index whatever the database's collation, and the LIKE keeps the match exact.
const FIGURES_SQL = `
  SELECT (SELECT count(*) FROM account WHERE role = 'developer')::int AS developers,
         (SELECT count(*) FROM team)::int AS teams,
         (SELECT count(*) FROM oauth_client WHERE status <> 'revoked')::int AS applications,
         (SELECT count(*) FROM api_key WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1))::int AS active_keys,
         (SELECT count(*) FROM api_key WHERE revoked_at IS NULL AND expires_at > $1 AND expires_at <= $2)::int AS expiring_keys,
         (SELECT count(*) FROM audit_event WHERE type = 'token.issued' AND at >= $3)::int AS tokens_today,
         (SELECT count(*) FROM credential_request WHERE status = 'pending')::int AS pending_requests,
         (SELECT count(*) FROM audit_event WHERE type = ANY($4::text[]) AND at >= $5)::int AS failed_checks`;

const ALERTS_SQL = `
  SELECT seq::text AS seq, at, type, subject_type, subject_id, data
    FROM audit_event
   WHERE type >= 'alert' AND type < 'aleru' AND type LIKE 'alert.%' AND at >= $1
   ORDER BY at DESC
   LIMIT 5`;

interface FiguresRow {
  developers: number;
  teams: number;
  applications: number;
  active_keys: number;
  expiring_keys: number;
  tokens_today: number;
  pending_requests: number;
  failed_checks: number;
}

interface AlertRow {
  seq: string;
  at: Date;
  type: string;
  subject_type: string | null;
  subject_id: string | null;
  data: unknown;
}

/** The figures, read now: exact counts, one round trip for them and one for the alerts. */
export async function dashboardFigures(deps: Pick<Deps, 'db' | 'now'>): Promise<DashboardFigures> {
  const now = deps.now();
  const midnight = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const [figures, alerts] = await Promise.all([
    deps.db.query(FIGURES_SQL, [now, new Date(now.getTime() + EXPIRING_WITHIN_MS), midnight, CHECK_FAILED_TYPES, new Date(now.getTime() - 3_600_000)]) as Promise<FiguresRow[]>,
    deps.db.query(ALERTS_SQL, [new Date(now.getTime() - 7 * 86_400_000)]) as Promise<AlertRow[]>,
  ]);
  const row = figures[0];
  return {
    asOf: now,
    developers: row!.developers,
    teams: row!.teams,
    applications: row!.applications,
    activeKeys: row!.active_keys,
    expiringKeys: row!.expiring_keys,
    tokensToday: row!.tokens_today,
    pendingRequests: row!.pending_requests,
    failedChecks: row!.failed_checks,
    alerts: alerts.map((a) => ({ seq: a.seq, at: a.at, type: a.type, subjectType: a.subject_type, subjectId: a.subject_id, data: a.data })),
  };
}

/** How long a node serves the same figures before reading them again. */
export const FIGURES_FRESH_MS = 30_000;

interface CachedFigures {
  value?: DashboardFigures;
  pending?: Promise<DashboardFigures>;
}
const figuresCache = new WeakMap<object, CachedFigures>();

/**
 * The figures for the dashboard page. Exact counts over a million keys or a day of token events
 * take longer than a page may (DESIGN §4: p95 < 50 ms), and a dashboard needs no second-exact
 * figures: each node keeps the last ones for FIGURES_FRESH_MS, and once they are older serves
 * them while one read refreshes them (the page says when they were read). Only the first view
 * after a start waits for the read.
 */
export async function cachedDashboardFigures(deps: Pick<Deps, 'db' | 'now' | 'log'>): Promise<DashboardFigures> {
  let entry = figuresCache.get(deps.db);
  if (!entry) figuresCache.set(deps.db, (entry = {}));
  const cached = entry.value;
  if (cached && deps.now().getTime() - cached.asOf.getTime() < FIGURES_FRESH_MS) return cached;
  const slot = entry;
  slot.pending ??= dashboardFigures(deps)
    .then((fresh) => (slot.value = fresh))
    .finally(() => (slot.pending = undefined));
  if (!cached) return slot.pending;
  slot.pending.catch((error: unknown) => deps.log.warn({ err: error }, 'dashboard figures could not be refreshed'));
  return cached;
}
