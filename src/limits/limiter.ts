/*
 * Plan limits, counted in memory or shared by every node through Redis.
 *
 * Accuracy model with Redis (how Unkey and Envoy's global rate limiting do it): a check never
 * waits for Redis when this node can decide it. Each node mirrors every window it counts
 * (shared-counters.ts): the total Redis last answered, plus what it sent and what it counted
 * since, which together are a lower bound of the true total. Uses accepted here are sent in
 * batches every 100 ms (an INCRBY per window, all in one script call), whose answers bring
 * back every node's count.
 * A check asks Redis, and waits, when the window has not been read yet on this node (its first
 * use), within the last 10% of the limit (NEAR_LIMIT_SHARE), or when this node already holds
 * 0.5% of the limit (BATCH_SHARE) accepted and not yet acknowledged; a limit under 200 is so
 * asked on every check. An over-the-limit estimate refuses at once (a lower bound over the
 * limit is over it everywhere). So each node over-accepts a window by at most its unacknowledged
 * batch, 0.5% of the limit, and rarely that: N nodes stay within N × 0.5% of the limit, the 5%
 * of issue 9 up to ten nodes. `remaining` answered locally can be a little high (other nodes'
 * uses since the last batch are not in it); answers from Redis are exact. While Redis fails,
 * nothing is decided locally: every check is answered by its failure policy, as before.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Limits, QuotaPeriod } from './plans.ts';
import { estimate, SharedCounters, type Tally } from './shared-counters.ts';

/** The figures a gateway needs for RateLimit / Retry-After headers; `reset` in Unix milliseconds. */
export interface LimitWindow {
  limit: number;
  remaining: number;
  reset: number;
}

export type LimitRefusal = 'RATE_LIMITED' | 'QUOTA_EXCEEDED';

export interface LimitVerdict {
  refused: LimitRefusal | null;
  ratelimit?: LimitWindow;
  quota?: LimitWindow;
  /** When refused: how long until a retry can succeed. */
  retryAfterMs: number;
}

/**
 * What a check does while Redis cannot be reached (issue 9 §1.4): `open` lets it through
 * uncounted, `closed` refuses it (RATE_LIMITED, retry in a second), `memory` counts in this
 * node's memory (each node then allows the full limit).
 */
export type RedisFailurePolicy = 'open' | 'closed' | 'memory';
export const REDIS_FAILURE_POLICIES = ['open', 'closed', 'memory'] as const;

/** Where a limit is enforced: key verification, or an application's token requests. */
export type LimitedEndpoint = 'verify' | 'token' | 'introspect';

const SWEEP_EVERY_MS = 60_000;

/**
 * One node's counters, answered synchronously (the verify hot path waits on nothing). Window
 * keys carry their window, so a finished window's entry is garbage: swept once a minute.
 */
class MemoryCounters {
  #counts = new Map<string, { count: number; resetAt: number }>();
  #sweepAt = 0;

  add(key: string, cost: number, resetAt: number, now: number): number {
    let entry = this.#counts.get(key);
    if (entry === undefined || entry.resetAt <= now) {
      entry = { count: 0, resetAt };
      this.#counts.set(key, entry);
    }
    entry.count += cost;
    if (now >= this.#sweepAt) this.#sweep(now);
    return entry.count;
  }

  #sweep(now: number): void {
    this.#sweepAt = now + SWEEP_EVERY_MS;
    for (const [key, entry] of this.#counts) if (entry.resetAt <= now) this.#counts.delete(key);
  }
}

const DAY_MS = 86_400_000;

/** The clock-aligned window `now` falls in. */
const rateWindowOf = (windowSeconds: number, now: number) => {
  const windowMs = windowSeconds * 1000;
  const index = Math.floor(now / windowMs);
  return { index, resetAt: (index + 1) * windowMs };
};

// The period of the day last asked about: worked out once a day, not per check.
const periods = new Map<QuotaPeriod, { dayStart: number; label: string; resetAt: number }>();

/** The UTC day or calendar month `now` falls in: its label and when it ends. */
function quotaPeriod(period: QuotaPeriod, now: number): { label: string; resetAt: number } {
  const dayStart = Math.floor(now / DAY_MS) * DAY_MS;
  const known = periods.get(period);
  if (known?.dayStart === dayStart) return known;
  const at = new Date(now);
  const computed =
    period === 'day'
      ? { dayStart, label: at.toISOString().slice(0, 10), resetAt: dayStart + DAY_MS }
      : { dayStart, label: at.toISOString().slice(0, 7), resetAt: Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1) };
  periods.set(period, computed);
  return computed;
}

export interface LimiterOptions {
  /** Shared counters; without it, each node counts in its own memory. */
  redis?: Redis | undefined;
  /** Whether the shared connection is up (for /readyz and the metrics gauge). */
  redisState?: () => 'ok' | 'unreachable';
  keyPrefix: string;
  log: Pick<Logger, 'warn' | 'info'>;
}


/** One counter a check counts against: a rate window or a quota period. */
interface Counted {
  limit: number;
  key: string;
  resetAt: number;
}

interface Windows {
  rate: Counted | null;
  quota: Counted | null;
}

function windowsOf(subject: string, { rate, quota }: Limits, now: number): Windows {
  const rateWindow = rate && rateWindowOf(rate.windowSeconds, now);
  const period = quota && quotaPeriod(quota.period, now);
  return {
    rate: rate && rateWindow ? { limit: rate.limit, key: `r:${subject}:${rate.windowSeconds}:${rateWindow.index}`, resetAt: rateWindow.resetAt } : null,
    quota: quota && period ? { limit: quota.limit, key: `q:${subject}:${period.label}`, resetAt: period.resetAt } : null,
  };
}

/** Within this share of a limit from its end, every check asks Redis (see the top of this file). */
export const NEAR_LIMIT_SHARE = 0.1;
/** At most this share of a limit is accepted here and not yet acknowledged by Redis, per node. */
export const BATCH_SHARE = 1 / 200;

/** Whether a use that brings its window to `count` may be accepted without asking Redis. */
function acceptableLocally(tally: Tally, limit: number, count: number, cost: number): boolean {
  return count <= limit - Math.ceil(limit * NEAR_LIMIT_SHARE) && tally.pending + tally.inFlight + cost <= Math.floor(limit * BATCH_SHARE);
}

/**
 * Plans' rates and quotas (issue 9 §1.1). Rates count in fixed windows aligned to the clock
 * (a 1m window ends on the minute), quotas per UTC day or calendar month, so `reset` is the
 * same on every node and under an injected clock. A refused request is counted too: a caller
 * hammering past its limit stays refused until the window ends.
 */
export class Limiter {
  readonly #memory = new MemoryCounters();
  readonly #shared: SharedCounters | undefined;
  readonly #redis: Redis | undefined;
  readonly #redisState: () => 'ok' | 'unreachable';
  readonly #log: LimiterOptions['log'];
  #failing = false;
  /** Refusals per endpoint since start (the metrics read them). */
  readonly rejections: Record<LimitedEndpoint, number> = { verify: 0, token: 0, introspect: 0 };

  constructor(options: LimiterOptions) {
    this.#redis = options.redis;
    this.#shared = options.redis ? new SharedCounters(options.redis, `${options.keyPrefix}:limits`, (failure) => this.#answered(failure)) : undefined;
    this.#redisState = options.redisState ?? (() => 'ok');
    this.#log = options.log;
  }

  /** Whether counters are shared through Redis (and so a check may have to wait for it). */
  get shared(): boolean {
    return this.#shared !== undefined;
  }

  /**
   * Waits (at most `timeoutMs`) for the shared counters' first connection, so that a node
   * starting next to a healthy Redis does not answer its first checks by the failure policy.
   */
  async connected(timeoutMs: number): Promise<void> {
    const redis = this.#redis;
    if (!redis || redis.status === 'ready') return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      redis.once('ready', () => resolve());
    });
    clearTimeout(timer);
  }

  /** `absent` without REDIS_URL; else whether the shared counters can be reached. */
  redisStatus(): 'absent' | 'ok' | 'unreachable' {
    return this.#shared ? this.#redisState() : 'absent';
  }

  /** Sends the uses counted here to Redis and waits for the answers (shutdown, tests). */
  async flush(): Promise<void> {
    await this.#shared?.flush();
  }

  /**
   * Counts `cost` against the credential's rate, then (unless refused there) its quota.
   * Synchronous whenever the decision is made here: always with memory counters, and with
   * Redis while the key is known and far from its limits; else a promise, which never
   * rejects: a Redis failure is answered by `onRedisFailure`.
   */
  check(endpoint: LimitedEndpoint, subject: string, limits: Limits, cost: number, now: number, onRedisFailure: RedisFailurePolicy): LimitVerdict | Promise<LimitVerdict> {
    const shared = this.#shared;
    if (!shared) return this.#countInMemory(endpoint, windowsOf(subject, limits, now), cost, now);
    const windows = windowsOf(subject, limits, now);
    const local = this.#decideLocally(endpoint, shared, windows, cost, now);
    if (local) return local;
    return this.#countShared(endpoint, shared, windows, cost, now).catch(() => this.#unshared(endpoint, windows, cost, now, onRedisFailure));
  }

  /**
   * As `check` when the decision can be made without waiting for Redis; else undefined and
   * nothing counted (the caller's full path then calls `check`).
   */
  checkLocally(endpoint: LimitedEndpoint, subject: string, limits: Limits, cost: number, now: number): LimitVerdict | undefined {
    const shared = this.#shared;
    if (!shared) return this.#countInMemory(endpoint, windowsOf(subject, limits, now), cost, now);
    return this.#decideLocally(endpoint, shared, windowsOf(subject, limits, now), cost, now);
  }

  #answered(failure: unknown): void {
    if (failure === undefined) {
      if (!this.#failing) return;
      this.#failing = false;
      this.#log.info('Redis reachable again: plan limits are shared across nodes again');
    } else if (!this.#failing) {
      this.#failing = true;
      this.#log.warn({ err: failure }, 'Redis unreachable for plan limits: checks fail open, closed or count in memory per LATCHKEY_*_LIMITS_ON_REDIS_FAILURE');
    }
  }

  #unshared(endpoint: LimitedEndpoint, windows: Windows, cost: number, now: number, policy: RedisFailurePolicy): LimitVerdict {
    if (policy === 'memory') return this.#countInMemory(endpoint, windows, cost, now);
    if (policy === 'open') return { refused: null, retryAfterMs: 0 };
    this.rejections[endpoint] += 1;
    // Closed: nothing is known of the window, so the answer says "try again in a second".
    const limit = windows.rate?.limit ?? windows.quota!.limit;
    return { refused: 'RATE_LIMITED', ratelimit: { limit, remaining: 0, reset: now + 1000 }, retryAfterMs: 1000 };
  }

  #verdict(endpoint: LimitedEndpoint, { rate, quota }: Windows, rateCount: number | null, quotaCount: number | null, now: number): LimitVerdict {
    const ratelimit = rate && rateCount !== null ? { limit: rate.limit, remaining: Math.max(0, rate.limit - rateCount), reset: rate.resetAt } : undefined;
    if (ratelimit && rateCount! > rate!.limit) {
      this.rejections[endpoint] += 1;
      return { refused: 'RATE_LIMITED', ratelimit, retryAfterMs: ratelimit.reset - now };
    }
    if (!quota || quotaCount === null) return { refused: null, ...(ratelimit && { ratelimit }), retryAfterMs: 0 };
    const window = { limit: quota.limit, remaining: Math.max(0, quota.limit - quotaCount), reset: quota.resetAt };
    if (quotaCount <= quota.limit) return { refused: null, ...(ratelimit && { ratelimit }), quota: window, retryAfterMs: 0 };
    this.rejections[endpoint] += 1;
    return { refused: 'QUOTA_EXCEEDED', ...(ratelimit && { ratelimit }), quota: window, retryAfterMs: quota.resetAt - now };
  }

  /** One node's own counters: the quota is counted only when the rate allowed the request. */
  #countInMemory(endpoint: LimitedEndpoint, windows: Windows, cost: number, now: number): LimitVerdict {
    const { rate, quota } = windows;
    const rateCount = rate ? this.#memory.add(rate.key, cost, rate.resetAt, now) : null;
    const rateRefused = rateCount !== null && rateCount > rate!.limit;
    const quotaCount = quota && !rateRefused ? this.#memory.add(quota.key, cost, quota.resetAt, now) : null;
    return this.#verdict(endpoint, windows, rateCount, quotaCount, now);
  }

  /**
   * The shared counters' answer from this node's tallies, or undefined when Redis must be
   * asked: a window not yet read, Redis failing, near a limit, or this node's batch full.
   * Nothing is counted unless the whole check is decided here.
   */
  #decideLocally(endpoint: LimitedEndpoint, shared: SharedCounters, windows: Windows, cost: number, now: number): LimitVerdict | undefined {
    if (this.#failing || this.#redis!.status !== 'ready') return undefined;
    const { rate, quota } = windows;
    let rateTally: Tally | undefined;
    let rateCount: number | null = null;
    if (rate) {
      rateTally = shared.known(rate.key, now);
      if (!rateTally) return undefined;
      rateCount = estimate(rateTally) + cost;
      // The estimate is a lower bound: over the limit here is over it everywhere.
      if (rateCount > rate.limit) {
        shared.countLocally(rateTally, cost, now);
        return this.#verdict(endpoint, windows, rateCount, null, now);
      }
      if (!acceptableLocally(rateTally, rate.limit, rateCount, cost)) return undefined;
    }
    let quotaTally: Tally | undefined;
    let quotaCount: number | null = null;
    if (quota) {
      quotaTally = shared.known(quota.key, now);
      if (!quotaTally) return undefined;
      quotaCount = estimate(quotaTally) + cost;
      if (quotaCount <= quota.limit && !acceptableLocally(quotaTally, quota.limit, quotaCount, cost)) return undefined;
    }
    if (rateTally) shared.countLocally(rateTally, cost, now);
    if (quotaTally) shared.countLocally(quotaTally, cost, now);
    return this.#verdict(endpoint, windows, rateCount, quotaCount, now);
  }

  /** Asks Redis: the exact count. Both counters in one round trip; a request the rate refuses gives its quota back. */
  async #countShared(endpoint: LimitedEndpoint, shared: SharedCounters, windows: Windows, cost: number, now: number): Promise<LimitVerdict> {
    const { rate, quota } = windows;
    const [rateCount, quotaCount] = await Promise.all([rate ? shared.add(rate.key, cost, rate.resetAt, now) : null, quota ? shared.add(quota.key, cost, quota.resetAt, now) : null]);
    if (rateCount !== null && quota && rateCount > rate!.limit) {
      shared.add(quota.key, -cost, quota.resetAt, now).catch(() => {});
      return this.#verdict(endpoint, windows, rateCount, null, now);
    }
    return this.#verdict(endpoint, windows, rateCount, quotaCount, now);
  }
}
