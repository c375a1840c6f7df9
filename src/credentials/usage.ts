import { isDatabaseUnavailable } from '../lib/errors.ts';
import { warnUnlessOutage } from '../lib/failure-log.ts';
import type { Deps } from '../context.ts';
import type { Tx } from '../db/database.ts';
import { networkOf } from '../limits/networks.ts';

export type CredentialType = 'api_key' | 'client';

/** Rows per flush statement: a few bind parameters whatever the size (arrays), but a bounded statement. */
const FLUSH_CHUNK = 5_000;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** A network unseen for this long is new again (issue 9 §1.6). */
const NETWORK_MEMORY_MS = 30 * DAY_MS;
/** A (credential, network) pair written within this long is not written again by this node. */
const NETWORK_REFRESH_MS = HOUR_MS;
const NETWORK_WRITTEN_MAX = 100_000;
/** (credential, hour) counts kept from failed flushes, at most: ~100 bytes each, a few MiB (DESIGN §4: 300 MiB a node). */
const HELD_MAX = 100_000;

interface Tally {
  succeeded: number;
  failed: number;
}

interface Counts extends Tally {
  /** The last peer address seen in this batch: an unchanged address costs one comparison. */
  lastIp: string | undefined;
  networks: Set<string> | undefined;
}

/** What a flush saw that an alert may be about (limits/alerts.ts decides). */
export interface UsageFindings {
  /** Used from a network not seen for that credential in 30 days, while it has been used from others. */
  newNetworks: { type: CredentialType; id: string; network: string }[];
  /** A rotated-out key, or an application's previous secret, used inside its grace window. */
  rotatedUses: { type: CredentialType; id: string; graceEndsAt: Date }[];
  /**
   * Failed checks of one credential, on all nodes together, reached the burst threshold within
   * the window's length: about `failed` of them since `since`; `windowStart` is the slot it is raised for.
   */
  bursts: { type: CredentialType; id: string; failed: number; windowStart: Date; since: Date }[];
}

/** Counts of one credential type and UTC hour (ms) to add to the rollups. */
interface Rollup {
  type: CredentialType;
  hour: number;
  tallies: ReadonlyMap<string, Tally>;
}

export interface BurstRule {
  failed: number;
  windowMs: number;
}

/**
 * Usage of credentials without a database write per request (issue 7 §2.9, issue 9 §1.5):
 * checks are counted in memory per (type, id) and written every few seconds as hourly and
 * daily rollups (`usage_hourly`, `usage_daily`) in one statement, with "last used" for keys
 * and applications and the networks they were used from. A crash loses at most one interval
 * of counts (and what failed flushes kept), never a credential change.
 *
 * The hot path allocates only on a credential's first use in a batch (one small object) and
 * on a peer address it has not seen in this batch (its network). A batch is dated by the UTC
 * hour in which it began: at an hour's end at most one interval lands in the neighbouring hour.
 *
 * A flush that fails (the database out of reach) keeps its counts, by hour, for the next
 * flush on the usual schedule; at most `heldMax` (credential, hour) counts are kept, the
 * oldest dropped first (`dropped.overflow`, warned once until a write succeeds). Flushes
 * never overlap.
 */
export class Usage {
  #keys = new Map<string, Counts>();
  #clients = new Map<string, Counts>();
  /** Applications whose previous (rotated-out) secret authenticated in this batch. */
  #previousSecrets = new Set<string>();
  #batchStartedAt: Date | null = null;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | null = null;
  /** Counts that failed flushes could not write, by `${type} ${hour}`. */
  #held = new Map<string, Rollup & { tallies: Map<string, Tally> }>();
  #heldCount = 0;
  /** Whether counts were dropped over `heldMax` since the database last took a write: warned once. */
  #overflowing = false;
  /** Failed checks since the last flush, per credential and burst window (failures only: not the hot path). */
  #failures = new Map<string, { type: CredentialType; id: string; slot: number; count: number }>();
  /** (type, id, network) → when this node last wrote it: keeps network writes to new pairs. */
  #networksWritten = new Map<string, number>();
  /** Statements written so far (tests prove there is no write per request). */
  statements = 0;
  /** Uses not recorded since start (metrics): over the held limit, or in a write whose commit went unconfirmed. */
  readonly dropped = { overflow: 0, unconfirmed: 0, refused: 0 };
  /** Told what each flush found (alerts): awaited, so that a flush is done when its alerts are. */
  onFindings: ((findings: UsageFindings) => Promise<void>) | undefined;
  /** Failed checks of one credential within a window that make a burst (config: LATCHKEY_ALERT_BURST). */
  burst: BurstRule | undefined;

  constructor(
    private readonly deps: Pick<Deps, 'prisma' | 'now' | 'log'>,
    readonly heldMax = HELD_MAX,
  ) {}

  /**
   * A successful API-key check (introspection, verification): `ip` is the caller's peer
   * address (the networks a key is used from), `uses` a verification's cost.
   */
  touch(keyId: string, ip?: string, uses = 1): void {
    this.record('api_key', keyId, true, ip, uses);
  }

  record(type: CredentialType, id: string, ok: boolean, ip?: string, uses = 1): void {
    const map = type === 'api_key' ? this.#keys : this.#clients;
    let counts = map.get(id);
    if (counts === undefined) {
      if (this.#batchStartedAt === null) this.#batchStartedAt = this.deps.now();
      counts = { succeeded: 0, failed: 0, lastIp: undefined, networks: undefined };
      map.set(id, counts);
    }
    if (ok) {
      counts.succeeded += uses;
      if (ip !== undefined && ip !== counts.lastIp) {
        counts.lastIp = ip;
        const network = networkOf(ip);
        if (network !== undefined) (counts.networks ??= new Set()).add(network);
      }
    } else {
      counts.failed += uses;
      if (this.burst) this.#countFailure(type, id, this.burst);
    }
  }

  /** An application authenticated with its previous secret, inside the rotation's grace window. */
  previousSecretUsed(clientId: string): void {
    if (this.#batchStartedAt === null) this.#batchStartedAt = this.deps.now();
    this.#previousSecrets.add(clientId);
  }

  /** Counts a failure in the fixed burst window it falls in; the flush adds it to every node's count. */
  #countFailure(type: CredentialType, id: string, rule: BurstRule): void {
    const slot = Math.floor(this.deps.now().getTime() / rule.windowMs) * rule.windowMs;
    const key = `${type} ${id} ${slot}`;
    const counted = this.#failures.get(key);
    if (counted) counted.count += 1;
    else this.#failures.set(key, { type, id, slot, count: 1 });
  }

  start(intervalMs = 5_000): void {
    // A tick while a flush still runs (a database that hangs) is skipped, not queued.
    this.#timer = setInterval(() => {
      if (!this.#flushing) void this.flush();
    }, intervalMs);
    this.#timer.unref();
  }

  /** Writes what was counted, and what earlier flushes could not write; after any flush under way. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    this.#flushing = this.#flush().finally(() => (this.#flushing = null));
    await this.#flushing;
  }

  async #flush(): Promise<void> {
    const findings: UsageFindings = { newNetworks: [], rotatedUses: [], bursts: [] };
    const failures = this.#failures;
    this.#failures = new Map();
    const rollups: Rollup[] = [...this.#held.values()];
    this.#held = new Map();
    this.#heldCount = 0;
    const writes: Promise<void>[] = [];
    if (this.#batchStartedAt !== null) {
      const hour = utcHour(this.#batchStartedAt).getTime();
      const keys = this.#keys;
      const clients = this.#clients;
      const previousSecrets = this.#previousSecrets;
      this.#keys = new Map();
      this.#clients = new Map();
      this.#previousSecrets = new Set();
      this.#batchStartedAt = null;
      rollups.push({ type: 'api_key', hour, tallies: keys }, { type: 'client', hour, tallies: clients });
      const now = this.deps.now();
      writes.push(
        this.#writeUse('api_key', keys, now, findings),
        this.#writeUse('client', clients, now, findings),
        this.#writePreviousSecrets(previousSecrets, now, findings),
      );
    }
    writes.push(this.#writeRollups(rollups));
    if (failures.size > 0 && this.burst) writes.push(this.#writeFailures([...failures.values()], this.burst, findings));
    const failure = (await Promise.allSettled(writes)).find((result) => result.status === 'rejected');
    // Every 5 s while the database is down: said once per outage (lib/failure-log.ts).
    if (failure) warnUnlessOutage(this.deps.log, failure.reason, 'could not record credential usage');
    if (this.onFindings && (findings.newNetworks.length || findings.rotatedUses.length || findings.bursts.length)) {
      await this.onFindings(findings).catch((err) => this.deps.log.warn({ err }, 'could not raise usage alerts'));
    }
  }

  /**
   * Adds the counts to the hourly and daily rollups, a chunk per transaction; on a failure
   * the chunks not written are kept for the next flush. The rows add up, so a chunk must
   * commit exactly once. The server commits only on our COMMIT, sent after the upsert
   * succeeded: a failure before that leaves nothing committed, and the chunk is retried. A
   * failure during COMMIT (the connection lost) cannot be told from a commit: that chunk is
   * dropped and counted (`dropped.unconfirmed`), at most once rather than twice, since an
   * overcount would refuse quota and raise alerts nobody earned. Closing that one round trip
   * would take a batch id per chunk, a table of them and its pruning.
   */
  async #writeRollups(rollups: Rollup[]): Promise<void> {
    const chunks: { type: CredentialType; hour: number; entries: [string, Tally][] }[] = [];
    for (const { type, hour, tallies } of rollups) {
      const entries = [...tallies];
      for (let start = 0; start < entries.length; start += FLUSH_CHUNK) chunks.push({ type, hour, entries: entries.slice(start, start + FLUSH_CHUNK) });
    }
    for (const [index, chunk] of chunks.entries()) {
      let upserted = false;
      try {
        await this.deps.prisma.$transaction(
          async (tx) => {
            await this.#upsert(tx, chunk.type, chunk.hour, chunk.entries);
            upserted = true;
          },
          // Longer than any upsert: an expiry after it ran would look like a COMMIT lost.
          { timeout: 60_000 },
        );
      } catch (error) {
        // Refused by a database that answered (a count out of range, say): the same write
        // would fail every flush, so it is dropped, and the chunks behind it go on.
        if (!upserted && !isDatabaseUnavailable(error)) {
          this.#drop('refused', chunk.entries, 'usage write refused by the database: not retried', error);
          continue;
        }
        if (upserted) this.#drop('unconfirmed', chunk.entries, 'usage write lost its connection during COMMIT: not retried, so that no use is counted twice');
        for (const kept of chunks.slice(upserted ? index + 1 : index)) this.#hold(kept.type, kept.hour, kept.entries);
        if (this.#heldCount > this.heldMax) this.#shed();
        throw error;
      }
    }
    this.#overflowing = false;
  }

  async #upsert(tx: Tx, type: CredentialType, hour: number, entries: [string, Tally][]): Promise<void> {
    const ids = entries.map(([id]) => id);
    const succeeded = entries.map(([, c]) => c.succeeded);
    const failed = entries.map(([, c]) => c.failed);
    const at = new Date(hour);
    // Both rollups in one statement: the data-modifying CTE writes the day, the outer insert the hour.
    // Rows in key order, so that two nodes flushing the same credentials lock them in one order (no deadlock).
    this.statements += 1;
    await tx.$executeRaw`
      WITH u AS (SELECT * FROM unnest(${ids}::text[], ${succeeded}::int[], ${failed}::int[]) AS u(id, succeeded, failed)),
      daily AS (
        INSERT INTO usage_daily (credential_type, credential_id, day, succeeded, failed)
        SELECT ${type}, u.id, ${utcDay(at)}::date, u.succeeded, u.failed FROM u ORDER BY u.id
        ON CONFLICT (credential_type, credential_id, day) DO UPDATE
        SET succeeded = usage_daily.succeeded + EXCLUDED.succeeded, failed = usage_daily.failed + EXCLUDED.failed)
      INSERT INTO usage_hourly (credential_type, credential_id, hour, succeeded, failed)
      SELECT ${type}, u.id, ${at}, u.succeeded, u.failed FROM u ORDER BY u.id
      ON CONFLICT (credential_type, credential_id, hour) DO UPDATE
      SET succeeded = usage_hourly.succeeded + EXCLUDED.succeeded, failed = usage_hourly.failed + EXCLUDED.failed`;
  }

  #hold(type: CredentialType, hour: number, entries: [string, Tally][]): void {
    const key = `${type} ${hour}`;
    let held = this.#held.get(key);
    if (!held) this.#held.set(key, (held = { type, hour, tallies: new Map() }));
    for (const [id, { succeeded, failed }] of entries) {
      const tally = held.tallies.get(id);
      if (tally) {
        tally.succeeded += succeeded;
        tally.failed += failed;
      } else {
        held.tallies.set(id, { succeeded, failed });
        this.#heldCount += 1;
      }
    }
  }

  /** Over the limit: the oldest hours go first. */
  #shed(): void {
    let uses = 0;
    for (const held of [...this.#held.values()].sort((a, b) => a.hour - b.hour)) {
      for (const [id, tally] of held.tallies) {
        if (this.#heldCount <= this.heldMax) break;
        held.tallies.delete(id);
        this.#heldCount -= 1;
        uses += tally.succeeded + tally.failed;
      }
      if (held.tallies.size === 0) this.#held.delete(`${held.type} ${held.hour}`);
    }
    this.dropped.overflow += uses;
    if (!this.#overflowing) {
      this.#overflowing = true;
      this.deps.log.warn({ heldMax: this.heldMax, uses }, 'usage kept for the database exceeds its limit: dropping the oldest counts until a write succeeds');
    }
  }

  #drop(reason: 'unconfirmed' | 'refused', entries: [string, Tally][], message: string, err?: unknown): void {
    const uses = entries.reduce((sum, [, c]) => sum + c.succeeded + c.failed, 0);
    this.dropped[reason] += uses;
    this.deps.log.warn({ uses, credentials: entries.length, ...(err ? { err } : {}) }, message);
  }

  /**
   * Adds this node's failures to the shared count of each burst window, one statement per
   * chunk, and reports a burst when the failures of the last window's length, on all nodes,
   * reach the threshold. That count is estimated the way sliding-window limiters do: this
   * slot's count plus the previous slot's, weighted by how much of it still falls within the
   * window, so failures that straddle a slot boundary still add up. The row lock orders
   * concurrent flushes (rows are written in key order, so two flushes cannot deadlock), so
   * exactly one of them takes the count past the threshold: N nodes behind a balancer alert
   * as one would, once per slot (alerts dedupe on it). Failures a flush could not write are
   * not retried; the rollups keep their counts.
   */
  async #writeFailures(failures: { type: CredentialType; id: string; slot: number; count: number }[], rule: BurstRule, findings: UsageFindings): Promise<void> {
    const now = this.deps.now().getTime();
    for (let start = 0; start < failures.length; start += FLUSH_CHUNK) {
      const chunk = failures.slice(start, start + FLUSH_CHUNK);
      this.statements += 1;
      // The previous slot is read as it was before this statement, plus what this flush adds to it.
      const rows = await this.deps.prisma.$queryRaw<{ credential_type: CredentialType; credential_id: string; slot: Date; failed: number; added: number; previous: number }[]>`
        WITH input AS (
          SELECT * FROM unnest(${chunk.map((f) => f.type)}::text[], ${chunk.map((f) => f.id)}::text[], ${chunk.map((f) => new Date(f.slot))}::timestamptz[], ${chunk.map((f) => f.count)}::int[])
            AS i (credential_type, credential_id, slot, added)
        ), counted AS (
          INSERT INTO failure_window AS w (credential_type, credential_id, slot, failed)
          SELECT credential_type, credential_id, slot, added FROM input ORDER BY credential_type, credential_id, slot
          ON CONFLICT (credential_type, credential_id, slot) DO UPDATE SET failed = w.failed + excluded.failed
          RETURNING w.credential_type, w.credential_id, w.slot, w.failed
        )
        SELECT c.credential_type, c.credential_id, c.slot, c.failed, i.added, (coalesce(p.failed, 0) + coalesce(pi.added, 0))::int AS previous
          FROM counted c
          JOIN input i ON i.credential_type = c.credential_type AND i.credential_id = c.credential_id AND i.slot = c.slot
          LEFT JOIN failure_window p ON p.credential_type = c.credential_type AND p.credential_id = c.credential_id AND p.slot = c.slot - ${rule.windowMs} * interval '1 millisecond'
          LEFT JOIN input pi ON pi.credential_type = c.credential_type AND pi.credential_id = c.credential_id AND pi.slot = c.slot - ${rule.windowMs} * interval '1 millisecond'`;
      for (const row of rows) {
        const slot = row.slot.getTime();
        const carried = row.previous * Math.max(0, 1 - (now - slot) / rule.windowMs);
        const after = carried + row.failed;
        if (after >= rule.failed && after - row.added < rule.failed) {
          findings.bursts.push({ type: row.credential_type, id: row.credential_id, failed: Math.round(after), windowStart: row.slot, since: new Date(carried > 0 ? now - rule.windowMs : slot) });
        }
      }
    }
  }

  /** "Last used", rotated-out credentials still in use, and the networks seen. */
  async #writeUse(type: CredentialType, batch: Map<string, Counts>, now: Date, findings: UsageFindings): Promise<void> {
    const entries = [...batch];
    for (let start = 0; start < entries.length; start += FLUSH_CHUNK) {
      const chunk = entries.slice(start, start + FLUSH_CHUNK);
      const used = chunk.filter(([, c]) => c.succeeded > 0).map(([id]) => id);
      if (used.length > 0) {
        this.statements += 1;
        if (type === 'api_key') {
          // A used key that has a successor is rotating out: worth an alert (limits/alerts.ts).
          const rotated = await this.deps.prisma.$queryRaw<{ id: string; expires_at: Date }[]>`
            WITH touched AS (UPDATE api_key SET last_used_at = ${now} WHERE id = ANY(${used}::text[]) RETURNING id, replaced_by_id, expires_at)
            SELECT id, expires_at FROM touched WHERE replaced_by_id IS NOT NULL AND expires_at > ${now}`;
          for (const row of rotated) findings.rotatedUses.push({ type, id: row.id, graceEndsAt: row.expires_at });
        } else {
          await this.deps.prisma.oAuthClient.updateMany({ where: { id: { in: used } }, data: { lastUsedAt: now } });
        }
      }
      await this.#writeNetworks(type, chunk, now, findings);
    }
  }

  /**
   * Upserts the networks seen; reports those new to a credential that was used from other
   * networks in the last 30 days (a credential's very first network is not news). Every CTE
   * reads the table as it was before the statement, so `fresh` and `known` see no row it writes.
   */
  async #writeNetworks(type: CredentialType, chunk: [string, Counts][], now: Date, findings: UsageFindings): Promise<void> {
    const ids: string[] = [];
    const networks: string[] = [];
    const at = now.getTime();
    for (const [id, counts] of chunk) {
      for (const network of counts.networks ?? []) {
        const pair = `${type} ${id} ${network}`;
        const written = this.#networksWritten.get(pair);
        if (written !== undefined && at - written < NETWORK_REFRESH_MS && written <= at) continue;
        if (this.#networksWritten.size >= NETWORK_WRITTEN_MAX) this.#networksWritten.clear();
        this.#networksWritten.set(pair, at);
        ids.push(id);
        networks.push(network);
      }
    }
    if (ids.length === 0) return;
    const since = new Date(at - NETWORK_MEMORY_MS);
    this.statements += 1;
    const fresh = await this.deps.prisma.$queryRaw<{ id: string; network: string }[]>`
      WITH input AS (SELECT * FROM unnest(${ids}::text[], ${networks}::text[]) AS i(id, network)),
      fresh AS (
        SELECT i.id, i.network FROM input i WHERE NOT EXISTS (
          SELECT 1 FROM credential_network n
          WHERE n.credential_type = ${type} AND n.credential_id = i.id AND n.network = i.network AND n.last_seen > ${since})),
      known AS (
        SELECT DISTINCT n.credential_id AS id FROM credential_network n
        WHERE n.credential_type = ${type} AND n.credential_id IN (SELECT id FROM input) AND n.last_seen > ${since}),
      seen AS (
        INSERT INTO credential_network (credential_type, credential_id, network, first_seen, last_seen)
        SELECT ${type}, i.id, i.network, ${now}, ${now} FROM input i
        ON CONFLICT (credential_type, credential_id, network) DO UPDATE
        SET last_seen = GREATEST(credential_network.last_seen, EXCLUDED.last_seen),
            first_seen = CASE WHEN credential_network.last_seen <= ${since} THEN EXCLUDED.first_seen ELSE credential_network.first_seen END)
      SELECT f.id, f.network FROM fresh f WHERE f.id IN (SELECT id FROM known)`;
    for (const row of fresh) findings.newNetworks.push({ type, id: row.id, network: row.network });
  }

  async #writePreviousSecrets(clientIds: Set<string>, now: Date, findings: UsageFindings): Promise<void> {
    if (clientIds.size === 0) return;
    this.statements += 1;
    const rows = await this.deps.prisma.$queryRaw<{ id: string; previous_secret_expires_at: Date }[]>`
      UPDATE oauth_client SET previous_secret_used_at = ${now}
      WHERE id = ANY(${[...clientIds]}::text[]) AND previous_secret_expires_at > ${now}
      RETURNING id, previous_secret_expires_at`;
    for (const row of rows) findings.rotatedUses.push({ type: 'client', id: row.id, graceEndsAt: row.previous_secret_expires_at });
  }

  /** The last flush (shutdown): tries the kept counts once more, and says what is lost. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
    if (this.#heldCount === 0) return;
    let uses = 0;
    for (const held of this.#held.values()) for (const tally of held.tallies.values()) uses += tally.succeeded + tally.failed;
    this.deps.log.error({ uses, counts: this.#heldCount }, 'usage not recorded at shutdown: the database could not take it');
  }
}

/** The start of the UTC hour `at` falls in. */
export const utcHour = (at: Date): Date => new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS);

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

