import type { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';

/** How often uses counted locally are sent to Redis (and the window's total read back). */
export const SYNC_EVERY_MS = 100;
const SWEEP_EVERY_MS = 60_000;
/** Windows per script call: bounds how long one batch occupies Redis. */
const BATCH_KEYS = 500;

/**
 * Adds ARGV[2i-1] to KEYS[i], which expires ARGV[2i] seconds after its creation, for each i;
 * returns the new totals. Per key, rate-limiter-flexible's incrTtl script (RateLimiterRedis).
 */
const ADD_MANY = `local totals = {}
for i, key in ipairs(KEYS) do
  redis.call('set', key, 0, 'EX', ARGV[2 * i], 'NX')
  totals[i] = redis.call('incrby', key, ARGV[2 * i - 1])
  if redis.call('pttl', key) == -1 then redis.call('expire', key, ARGV[2 * i]) end
end
return totals`;

/**
 * One window's counter as this node sees it. `global` is Redis's total at the last answer
 * (every node's uses it had then); `inFlight` was sent and is not answered yet; `pending` was
 * counted here and is not sent yet. Their sum is a lower bound of the true total.
 */
export interface Tally {
  readonly key: string;
  readonly resetAt: number;
  /** False until Redis has answered once: nothing can be decided locally before. */
  known: boolean;
  global: number;
  inFlight: number;
  pending: number;
  /** The (injectable) clock at the last use: the Redis key expires relative to it. */
  lastNow: number;
  /** Sends so far, and the latest whose total `global` holds (a retried script can answer late). */
  sent: number;
  applied: number;
}

export const estimate = (tally: Tally): number => tally.global + tally.inFlight + tally.pending;

/**
 * Redis's total after a send. Replies on one connection come in the order sent, so a total
 * includes every earlier send; only a script retried after NOSCRIPT (a restarted Redis)
 * answers late, and its older total must not replace a newer one.
 */
function settle(tally: Tally, sequence: number, total: number): void {
  if (sequence < tally.applied) return;
  tally.applied = sequence;
  tally.global = total;
  tally.known = true;
}

/**
 * Counters shared by every node through Redis (rate-limiter-flexible's atomic INCRBY with a
 * TTL), mirrored in this node's memory so that most checks wait for nothing: a use decided
 * locally is added to its tally's `pending` and sent with the others every SYNC_EVERY_MS, one
 * script call for every dirty window, whose answer refreshes each `global`. A command never waits for a
 * connection: it fails at once while Redis is away, and every tally is forgotten (Redis may
 * come back empty), so each window is read afresh once it is back.
 */
export class SharedCounters {
  readonly #limiter: RateLimiterRedis;
  readonly #redis: Redis;
  readonly #keyPrefix: string;
  readonly #tallies = new Map<string, Tally>();
  readonly #dirty = new Set<Tally>();
  readonly #onAnswer: (failure: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #sweepAt = 0;

  /** `onAnswer(undefined)` after each answer from Redis, `onAnswer(err)` after each failure. */
  constructor(redis: Redis, keyPrefix: string, onAnswer: (failure: unknown) => void) {
    this.#redis = redis;
    this.#keyPrefix = keyPrefix;
    // Points are never refused here: the limit differs per credential and is compared by the caller.
    this.#limiter = new RateLimiterRedis({ storeClient: redis, keyPrefix, points: 2 ** 31 - 1, duration: 60, useRedisPackage: false, rejectIfRedisNotReady: true });
    this.#onAnswer = onAnswer;
  }

  /** The window's tally if Redis has answered for it, so that it may be decided here. */
  known(key: string, now: number): Tally | undefined {
    if (now >= this.#sweepAt) this.#sweep(now);
    const tally = this.#tallies.get(key);
    return tally?.known ? tally : undefined;
  }

  /** Counts `cost` here; sent with the next batch. */
  countLocally(tally: Tally, cost: number, now: number): void {
    tally.pending += cost;
    tally.lastNow = now;
    this.#dirty.add(tally);
    this.#timer ??= setTimeout(() => void this.flush(), SYNC_EVERY_MS).unref();
  }

  /**
   * Adds `cost` in Redis now, with whatever this node counted in the window meanwhile, and
   * returns the window's new total: the exact count of this use, whatever the other nodes did.
   */
  async add(key: string, cost: number, resetAt: number, now: number): Promise<number> {
    let tally = this.#tallies.get(key);
    if (!tally) {
      tally = { key, resetAt, known: false, global: 0, inFlight: 0, pending: 0, lastNow: now, sent: 0, applied: 0 };
      this.#tallies.set(key, tally);
    }
    const delta = tally.pending + cost;
    tally.pending = 0;
    tally.lastNow = now;
    this.#dirty.delete(tally);
    return this.#send(tally, delta);
  }

  /** Sends every use counted locally and waits for the answers (timer, tests, shutdown). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch: { tally: Tally; delta: number }[] = [];
    for (const tally of this.#dirty) {
      if (tally.pending !== 0) batch.push({ tally, delta: tally.pending });
      tally.pending = 0;
    }
    this.#dirty.clear();
    const sends: Promise<void>[] = [];
    for (let i = 0; i < batch.length; i += BATCH_KEYS) sends.push(this.#sendMany(batch.slice(i, i + BATCH_KEYS)));
    // A batch still on its way counts too.
    const flushing = Promise.all([this.#flushing, ...sends]).then(() => {});
    this.#flushing = flushing;
    await flushing;
    if (this.#flushing === flushing) this.#flushing = undefined;
  }

  async #send(tally: Tally, delta: number): Promise<number> {
    tally.inFlight += delta;
    const sequence = ++tally.sent;
    // The key expires a second after its window ends (clock skew between nodes).
    const customDuration = Math.max(1, Math.ceil((tally.resetAt - tally.lastNow) / 1000) + 1);
    let total: number;
    try {
      total = (await this.#limiter.penalty(tally.key, delta, { customDuration })).consumedPoints;
    } catch (err) {
      tally.inFlight -= delta;
      this.#forget();
      this.#onAnswer(err);
      throw err;
    }
    tally.inFlight -= delta;
    settle(tally, sequence, total);
    this.#onAnswer(undefined);
    return total;
  }

  /**
   * A batch in one script call, not one library call per window: at thousands of windows a
   * second the per-call cost would stall the event loop. The script does for each key what
   * rate-limiter-flexible's own does (same keys, same expiry), so both paths count alike.
   */
  async #sendMany(batch: { tally: Tally; delta: number }[]): Promise<void> {
    const args: (string | number)[] = [];
    const sequences: number[] = [];
    for (const { tally, delta } of batch) {
      tally.inFlight += delta;
      sequences.push(++tally.sent);
      args.push(delta, Math.max(1, Math.ceil((tally.resetAt - tally.lastNow) / 1000) + 1));
    }
    let totals: number[];
    try {
      if (this.#redis.status !== 'ready') throw new Error('Redis connection is not ready');
      totals = (await this.#redis.eval(ADD_MANY, batch.length, ...batch.map(({ tally }) => `${this.#keyPrefix}:${tally.key}`), ...args)) as number[];
    } catch (err) {
      for (const { tally, delta } of batch) tally.inFlight -= delta;
      this.#forget();
      this.#onAnswer(err);
      return;
    }
    batch.forEach(({ tally, delta }, i) => {
      tally.inFlight -= delta;
      settle(tally, sequences[i]!, totals[i]!);
    });
    this.#onAnswer(undefined);
  }

  /** Redis failed: what it holds is unknown (it may come back empty), so nothing is decided locally. */
  #forget(): void {
    this.#tallies.clear();
    this.#dirty.clear();
  }

  // Window keys carry their window, so a finished window's tally is garbage.
  #sweep(now: number): void {
    this.#sweepAt = now + SWEEP_EVERY_MS;
    for (const [key, tally] of this.#tallies) {
      if (tally.resetAt <= now) {
        this.#tallies.delete(key);
        this.#dirty.delete(tally);
      }
    }
  }
}
