import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Rate } from '../config.ts';
import { peerKey } from './networks.ts';

/**
 * Self-protection of the credential endpoints (issue 9 §1.3): requests per peer address and per
 * client, and failures (failed client authentication, failed credential checks) per peer and
 * per claimed client id, with a back-off that doubles with each block. A peer is its address,
 * or its /64 for IPv6 (networks.ts peerKey).
 *
 * Every decision is synchronous and counts in this node's memory, because it sits on the
 * hottest path (http/token-endpoints.ts answers a cached introspection without a promise).
 * With Redis, failure counts are summed across nodes in the background once a second
 * (rate-limiter-flexible), and a key over the shared limit is blocked on every node that sees it.
 * Request counts stay per node: their limit stops a flood at the node it hits.
 */
export interface EndpointGuardOptions {
  requests: Rate;
  failures: Rate;
  maxBlockMs: number;
  redis?: Redis;
  keyPrefix?: string;
  now?: () => number;
}

export type RefusalReason = 'requests' | 'failures';

interface Window {
  start: number;
  count: number;
}

interface FailureState extends Window {
  blockedUntil: number;
  /** Blocks earned in a row: each one doubles the next. */
  strikes: number;
  /** Failures not yet added to the shared (Redis) count. */
  unshared: number;
}

/** Past this many tracked keys, new client ids are no longer tracked (a spray of random ids cannot grow memory). */
const MAX_KEYS = 100_000;
/** Claimed client ids are the caller's text: bounded before they become map keys. */
const MAX_ID = 128;
const SHARE_EVERY_MS = 1_000;

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export class EndpointGuard {
  readonly #options: EndpointGuardOptions;
  readonly #now: () => number;
  readonly #requests = new Map<string, Window>();
  readonly #failures = new Map<string, FailureState>();
  readonly #shared?: RateLimiterRedis;
  #timers: NodeJS.Timeout[] = [];
  #sharing = false;
  /** Called on every refusal (metrics). */
  onRefused: (reason: RefusalReason) => void = () => {};
  /** Called when the shared count cannot be reached (logged once per outage by the caller). */
  onSharedError: (error: unknown) => void = () => {};
  /** Called after a successful share (to log that Redis is back). */
  onSharedOk: () => void = () => {};

  constructor(options: EndpointGuardOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    if (options.redis) {
      this.#shared = new RateLimiterRedis({
        storeClient: options.redis,
        useRedisPackage: false,
        rejectIfRedisNotReady: true,
        keyPrefix: `${options.keyPrefix ?? 'latchkey:guard'}:failures`,
        points: options.failures.limit,
        duration: Math.max(1, Math.ceil(options.failures.windowMs / 1000)),
      });
    }
  }

  start(): void {
    const sweep = setInterval(() => this.#sweep(), Math.max(this.#options.requests.windowMs, 10_000));
    sweep.unref();
    this.#timers.push(sweep);
    if (this.#shared) {
      const share = setInterval(() => void this.share(), SHARE_EVERY_MS);
      share.unref();
      this.#timers.push(share);
    }
  }

  async stop(): Promise<void> {
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    await this.share();
  }

  /** A request from `peer`: 0 when admitted, else the seconds to wait (Retry-After). */
  admitPeer(peer: string | undefined): number {
    if (!peer) return 0;
    const now = this.#now();
    const key = `p:${peerKey(peer)}`;
    const blocked = this.#failures.get(key)?.blockedUntil ?? 0;
    if (blocked > now) return this.#refuse('failures', blocked - now);
    return this.#count(key, now);
  }

  /** A request by an authenticated client: 0 when admitted, else the seconds to wait. */
  admitClient(clientId: string): number {
    return this.#count(`c:${clientId.slice(0, MAX_ID)}`, this.#now());
  }

  /**
   * A failed authentication or credential check from `peer`, claiming `clientId`: 0 while
   * under the limits, else the seconds to wait, so the answer becomes 429 instead of 401. A
   * client id is blocked only for failures, never for its successes, so nobody can lock a
   * client out by failing in its name.
   */
  failed(peer: string | undefined, clientId?: string | null): number {
    const now = this.#now();
    let wait = 0;
    if (peer) wait = Math.max(wait, this.#fail(`p:${peerKey(peer)}`, now));
    if (clientId) wait = Math.max(wait, this.#fail(`c:${clientId.slice(0, MAX_ID)}`, now));
    return wait === 0 ? 0 : this.#refuse('failures', wait);
  }

  /**
   * A failed check of one credential (a key id with a wrong secret, revoked or expired): true
   * once its failures are past the limit, until the back-off ends. The check is not refused
   * for it (a resource server that keeps presenting a revoked key must keep hearing "inactive",
   * and a 256-bit secret needs no guard against guessing): its failures are then summarised
   * rather than audited one row each.
   */
  failedCheck(credentialId: string): boolean {
    return this.#fail(`k:${credentialId.slice(0, MAX_ID)}`, this.#now()) !== 0;
  }

  #refuse(reason: RefusalReason, waitMs: number): number {
    this.onRefused(reason);
    return seconds(waitMs);
  }

  #count(key: string, now: number): number {
    const { limit, windowMs } = this.#options.requests;
    let window = this.#requests.get(key);
    if (!window || now - window.start >= windowMs) {
      if (!window && this.#requests.size >= MAX_KEYS) this.#requests.clear();
      window = { start: now, count: 0 };
      this.#requests.set(key, window);
    }
    window.count++;
    return window.count > limit ? this.#refuse('requests', window.start + windowMs - now) : 0;
  }

  /** Milliseconds this key must wait, 0 when the failure is still under the limit. */
  #fail(key: string, now: number): number {
    const { limit, windowMs } = this.#options.failures;
    let state = this.#failures.get(key);
    if (!state) {
      if (this.#failures.size >= MAX_KEYS && key.startsWith('c:')) return 0;
      state = { start: now, count: 0, blockedUntil: 0, strikes: 0, unshared: 0 };
      this.#failures.set(key, state);
    }
    if (state.blockedUntil > now) return state.blockedUntil - now;
    // A quiet spell as long as the longest block forgives earlier blocks.
    if (state.strikes > 0 && now - state.blockedUntil >= this.#options.maxBlockMs) state.strikes = 0;
    if (now - state.start >= windowMs) {
      state.start = now;
      state.count = 0;
    }
    state.count++;
    state.unshared++;
    return state.count > limit ? this.#block(state, now) : 0;
  }

  #block(state: FailureState, now: number): number {
    const { windowMs } = this.#options.failures;
    state.strikes++;
    const ms = Math.min(windowMs * 2 ** (state.strikes - 1), this.#options.maxBlockMs);
    state.blockedUntil = now + ms;
    state.start = now;
    state.count = 0;
    return ms;
  }

  /** Adds this node's new failures to the shared counts; a key over the shared limit is blocked here too. */
  async share(): Promise<void> {
    const shared = this.#shared;
    if (!shared || this.#sharing) return;
    this.#sharing = true;
    try {
      const pending = [...this.#failures].filter(([, state]) => state.unshared > 0);
      for (const [key, state] of pending) {
        const points = state.unshared;
        state.unshared = 0;
        let total: number;
        try {
          total = (await shared.consume(key, points)).consumedPoints;
        } catch (refused) {
          if (!(refused instanceof RateLimiterRes)) {
            // Redis is away: this node keeps counting alone, and shares these next time.
            state.unshared += points;
            this.onSharedError(refused);
            return;
          }
          total = refused.consumedPoints;
        }
        const now = this.#now();
        if (total > this.#options.failures.limit && state.blockedUntil <= now) this.#block(state, now);
      }
      if (pending.length > 0) this.onSharedOk();
    } finally {
      this.#sharing = false;
    }
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, window] of this.#requests) if (now - window.start >= this.#options.requests.windowMs) this.#requests.delete(key);
    const forgetAfter = this.#options.maxBlockMs + this.#options.failures.windowMs;
    for (const [key, state] of this.#failures) {
      if (state.unshared === 0 && now - Math.max(state.start, state.blockedUntil) >= forgetAfter) this.#failures.delete(key);
    }
  }
}
