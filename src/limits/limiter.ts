import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { Limits, QuotaPeriod } from './plans.ts';

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

/** Adds `cost` to a window's counter and returns its new total. */
interface Counters {
  add(key: string, cost: number, resetAt: number, now: number): number | Promise<number>;
}

const SWEEP_EVERY_MS = 60_000;

/**
 * One node's counters, answered synchronously (the verify hot path waits on nothing). Window
 * keys carry their window, so a finished window's entry is garbage: swept once a minute.
 */
class MemoryCounters implements Counters {
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

/**
 * Counters shared by every node through Redis (rate-limiter-flexible's atomic INCRBY with a
 * TTL). A command never waits for a connection: it fails at once while Redis is away, and the
 * caller's policy decides (RedisFailurePolicy).
 */
class RedisCounters implements Counters {
  #limiter: RateLimiterRedis;
  constructor(redis: Redis, keyPrefix: string) {
    // Points are never refused here: the limit differs per credential and is compared by the caller.
    this.#limiter = new RateLimiterRedis({ storeClient: redis, keyPrefix, points: 2 ** 31 - 1, duration: 60, useRedisPackage: false, rejectIfRedisNotReady: true });
  }

  async add(key: string, cost: number, resetAt: number, now: number): Promise<number> {
    // The key expires a second after its window ends (clock skew between nodes).
    const customDuration = Math.max(1, Math.ceil((resetAt - now) / 1000) + 1);
    const res = await this.#limiter.penalty(key, cost, { customDuration });
    return res.consumedPoints;
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

/**
 * Plans' rates and quotas (issue 9 §1.1). Rates count in fixed windows aligned to the clock
 * (a 1m window ends on the minute), quotas per UTC day or calendar month, so `reset` is the
 * same on every node and under an injected clock. A refused request is counted too: a caller
 * hammering past its limit stays refused until the window ends.
 */
export class Limiter {
  readonly #memory = new MemoryCounters();
  readonly #shared: RedisCounters | undefined;
  readonly #redis: Redis | undefined;
  readonly #redisState: () => 'ok' | 'unreachable';
  readonly #log: LimiterOptions['log'];
  #failing = false;
  /** Refusals per endpoint since start (the metrics read them). */
  readonly rejections: Record<LimitedEndpoint, number> = { verify: 0, token: 0, introspect: 0 };

  constructor(options: LimiterOptions) {
    this.#redis = options.redis;
    this.#shared = options.redis ? new RedisCounters(options.redis, `${options.keyPrefix}:limits`) : undefined;
    this.#redisState = options.redisState ?? (() => 'ok');
    this.#log = options.log;
  }

  /** Whether checks are answered by Redis (and so asynchronously). */
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

  /**
   * Counts `cost` against the credential's rate, then (unless refused there) its quota.
   * Synchronous with memory counters; a promise with Redis, which never rejects: a Redis
   * failure is answered by `onRedisFailure`.
   */
  check(endpoint: LimitedEndpoint, subject: string, limits: Limits, cost: number, now: number, onRedisFailure: RedisFailurePolicy): LimitVerdict | Promise<LimitVerdict> {
    if (!this.#shared) return this.#count(endpoint, this.#memory, subject, limits, cost, now) as LimitVerdict;
    return (this.#count(endpoint, this.#shared, subject, limits, cost, now) as Promise<LimitVerdict>).then(
      (verdict) => {
        if (this.#failing) {
          this.#failing = false;
          this.#log.info('Redis reachable again: plan limits are shared across nodes again');
        }
        return verdict;
      },
      (err: unknown) => {
        if (!this.#failing) {
          this.#failing = true;
          this.#log.warn({ err, onRedisFailure }, 'Redis unreachable for plan limits: checks fail open, closed or count in memory per LATCHKEY_*_LIMITS_ON_REDIS_FAILURE');
        }
        return this.#unshared(endpoint, subject, limits, cost, now, onRedisFailure);
      },
    );
  }

  #unshared(endpoint: LimitedEndpoint, subject: string, limits: Limits, cost: number, now: number, policy: RedisFailurePolicy): LimitVerdict {
    if (policy === 'memory') return this.#count(endpoint, this.#memory, subject, limits, cost, now) as LimitVerdict;
    if (policy === 'open') return { refused: null, retryAfterMs: 0 };
    this.rejections[endpoint] += 1;
    // Closed: nothing is known of the window, so the answer says "try again in a second".
    const limit = limits.rate?.limit ?? limits.quota!.limit;
    return { refused: 'RATE_LIMITED', ratelimit: { limit, remaining: 0, reset: now + 1000 }, retryAfterMs: 1000 };
  }

  #count(endpoint: LimitedEndpoint, counters: Counters, subject: string, limits: Limits, cost: number, now: number): LimitVerdict | Promise<LimitVerdict> {
    const { rate, quota } = limits;
    const rateWindow = rate && rateWindowOf(rate.windowSeconds, now);
    const period = quota && quotaPeriod(quota.period, now);
    const rateKey = rateWindow && `r:${subject}:${rate.windowSeconds}:${rateWindow.index}`;
    const quotaKey = period && `q:${subject}:${period.label}`;
    const verdict = (rateCount: number | null, quotaCount: number | null): LimitVerdict => {
      const ratelimit = rate && rateWindow && rateCount !== null ? { limit: rate.limit, remaining: Math.max(0, rate.limit - rateCount), reset: rateWindow.resetAt } : undefined;
      if (ratelimit && rateCount! > rate!.limit) {
        this.rejections[endpoint] += 1;
        return { refused: 'RATE_LIMITED', ratelimit, retryAfterMs: ratelimit.reset - now };
      }
      if (!quota || !period || quotaCount === null) return { refused: null, ...(ratelimit && { ratelimit }), retryAfterMs: 0 };
      const window = { limit: quota.limit, remaining: Math.max(0, quota.limit - quotaCount), reset: period.resetAt };
      if (quotaCount <= quota.limit) return { refused: null, ...(ratelimit && { ratelimit }), quota: window, retryAfterMs: 0 };
      this.rejections[endpoint] += 1;
      return { refused: 'QUOTA_EXCEEDED', ...(ratelimit && { ratelimit }), quota: window, retryAfterMs: period.resetAt - now };
    };
    if (counters instanceof MemoryCounters) {
      // In memory the quota is counted only when the rate allowed the request.
      const rateCount = rateKey ? counters.add(rateKey, cost, rateWindow!.resetAt, now) : null;
      const rateRefused = rateCount !== null && rateCount > rate!.limit;
      const quotaCount = quotaKey && !rateRefused ? counters.add(quotaKey, cost, period!.resetAt, now) : null;
      return verdict(rateCount, quotaCount);
    }
    // Shared: both counters in one round trip; a request the rate refuses gives its quota back.
    return Promise.all([
      rateKey ? counters.add(rateKey, cost, rateWindow!.resetAt, now) : null,
      quotaKey ? counters.add(quotaKey, cost, period!.resetAt, now) : null,
    ]).then(([rateCount, quotaCount]) => {
      if (rateCount !== null && quotaKey && rateCount > rate!.limit) {
        void Promise.resolve(counters.add(quotaKey, -cost, period!.resetAt, now)).catch(() => {});
        return verdict(rateCount, null);
      }
      return verdict(rateCount, quotaCount);
    });
  }
}
