import { warnUnlessOutage } from '../lib/failure-log.ts';
import type { Deps } from '../context.ts';

export type CredentialType = 'api_key' | 'client';

/** Rows per flush statement: five bind parameters whatever the size (arrays), but a bounded statement. */
const FLUSH_CHUNK = 5_000;
const DAY_MS = 86_400_000;

interface Counts {
  succeeded: number;
  failed: number;
}

/**
 * Usage of credentials without a database write per request (issue 7 §2.9): checks are
 * counted in memory per (type, id) and written every few seconds as daily rollups
 * (`usage_daily`), with "last used" for keys and applications, in a few statements. A crash
 * loses at most one interval of counts, never a credential change.
 *
 * The hot path allocates only on a credential's first use in a batch (one small object).
 * A batch is dated by the UTC day on which it began: at midnight at most one interval lands
 * on the neighbouring day.
 */
export class Usage {
  #keys = new Map<string, Counts>();
  #clients = new Map<string, Counts>();
  #batchStartedAt: Date | null = null;
  #timer: NodeJS.Timeout | undefined;
  /** Statements written so far (tests prove there is no write per request). */
  statements = 0;

  constructor(private readonly deps: Pick<Deps, 'prisma' | 'now' | 'log'>) {}

  /** A successful API-key check (introspection, verification); `uses` is a verification's cost. */
  touch(keyId: string, uses = 1): void {
    this.record('api_key', keyId, true, uses);
  }

  record(type: CredentialType, id: string, ok: boolean, uses = 1): void {
    const map = type === 'api_key' ? this.#keys : this.#clients;
    let counts = map.get(id);
    if (counts === undefined) {
      if (this.#batchStartedAt === null) this.#batchStartedAt = this.deps.now();
      counts = { succeeded: 0, failed: 0 };
      map.set(id, counts);
    }
    if (ok) counts.succeeded += uses;
    else counts.failed += uses;
  }

  start(intervalMs = 5_000): void {
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  async flush(): Promise<void> {
    if (this.#batchStartedAt === null) return;
    const day = utcDay(this.#batchStartedAt);
    const keys = this.#keys;
    const clients = this.#clients;
    this.#keys = new Map();
    this.#clients = new Map();
    this.#batchStartedAt = null;
    const now = this.deps.now();
    await Promise.all([this.#write('api_key', keys, day, now), this.#write('client', clients, day, now)]).catch((err) =>
      // Every 5 s while the database is down: said once per outage (lib/failure-log.ts).
      warnUnlessOutage(this.deps.log, err, 'could not record credential usage'),
    );
  }

  async #write(type: CredentialType, batch: Map<string, Counts>, day: string, now: Date): Promise<void> {
    if (batch.size === 0) return;
    const entries = [...batch];
    for (let start = 0; start < entries.length; start += FLUSH_CHUNK) {
      const chunk = entries.slice(start, start + FLUSH_CHUNK);
      const ids = chunk.map(([id]) => id);
      const succeeded = chunk.map(([, c]) => c.succeeded);
      const failed = chunk.map(([, c]) => c.failed);
      this.statements += 1;
      await this.deps.prisma.$executeRaw`
        INSERT INTO usage_daily (credential_type, credential_id, day, succeeded, failed)
        SELECT ${type}, u.id, ${day}::date, u.succeeded, u.failed
        FROM unnest(${ids}::text[], ${succeeded}::int[], ${failed}::int[]) AS u(id, succeeded, failed)
        ON CONFLICT (credential_type, credential_id, day) DO UPDATE
        SET succeeded = usage_daily.succeeded + EXCLUDED.succeeded, failed = usage_daily.failed + EXCLUDED.failed`;
      const used = chunk.filter(([, c]) => c.succeeded > 0).map(([id]) => id);
      if (used.length === 0) continue;
      this.statements += 1;
      if (type === 'api_key') await this.deps.prisma.apiKey.updateMany({ where: { id: { in: used } }, data: { lastUsedAt: now } });
      else await this.deps.prisma.oAuthClient.updateMany({ where: { id: { in: used } }, data: { lastUsedAt: now } });
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}

export const utcDay = (at: Date): string => at.toISOString().slice(0, 10);

export interface UsagePoint {
  /** YYYY-MM-DD (UTC). */
  day: string;
  succeeded: number;
  failed: number;
}

/** The last `days` UTC days up to today, oldest first, each present (zero when unused). */
function zeroFilled(now: Date, days: number, rows: { day: Date; succeeded: number; failed: number }[]): UsagePoint[] {
  const byDay = new Map(rows.map((row) => [utcDay(row.day), row]));
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const series: UsagePoint[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const day = utcDay(new Date(today - i * DAY_MS));
    const row = byDay.get(day);
    series.push({ day, succeeded: Number(row?.succeeded ?? 0), failed: Number(row?.failed ?? 0) });
  }
  return series;
}

const firstDay = (now: Date, days: number) => utcDay(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) - (days - 1) * DAY_MS));

/** One credential's checks per day over the last `days` days (primary-key range scan). */
export async function usageSeries(deps: Pick<Deps, 'prisma' | 'now'>, type: CredentialType, id: string, days = 30): Promise<UsagePoint[]> {
  const now = deps.now();
  const rows = await deps.prisma.usageDaily.findMany({
    where: { credentialType: type, credentialId: id, day: { gte: new Date(`${firstDay(now, days)}T00:00:00Z`) } },
    select: { day: true, succeeded: true, failed: true },
  });
  return zeroFilled(now, days, rows);
}

/** A team's checks per day, summed over its API keys and applications. */
export async function teamUsageSeries(deps: Pick<Deps, 'prisma' | 'now'>, teamId: string, days = 30): Promise<UsagePoint[]> {
  const now = deps.now();
  const from = firstDay(now, days);
  const rows = await deps.prisma.$queryRaw<{ day: Date; succeeded: bigint; failed: bigint }[]>`
    SELECT u.day, sum(u.succeeded)::bigint AS succeeded, sum(u.failed)::bigint AS failed
    FROM usage_daily u
    WHERE u.day >= ${from}::date AND (
      (u.credential_type = 'api_key' AND u.credential_id IN (SELECT id FROM api_key WHERE team_id = ${teamId}::uuid))
      OR (u.credential_type = 'client' AND u.credential_id IN (SELECT id FROM oauth_client WHERE team_id = ${teamId}::uuid)))
    GROUP BY u.day`;
  return zeroFilled(
    now,
    days,
    rows.map((r) => ({ day: r.day, succeeded: Number(r.succeeded), failed: Number(r.failed) })),
  );
}

