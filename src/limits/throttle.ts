import { hash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { peerKey } from './networks.ts';

export type ThrottleKind = 'sign_in' | 'mfa' | 'reset' | 'sign_up' | 'exists_mail' | 'invite';
export type ThrottleVerdict = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * Consume first: a try takes its point BEFORE the expensive check (argon2, TOTP), atomically
 * (in memory, and in Redis), so concurrent tries cannot all slip in under the limit.
 */
export interface Throttle {
  /** Takes one point on every rule of the kind; refused (nothing kept) when any rule is exhausted. */
  attempt(kind: ThrottleKind, subject: string, ip: string): Promise<ThrottleVerdict>;
  /**
   * After a success: the pair counter is cleared and the other rules get their point back, so
   * successes count against no limit. A failure just keeps its points.
   */
  succeed(kind: ThrottleKind, subject: string, ip: string): Promise<void>;
}

/** What a rule counts by: the (subject, IP) pair, the IP alone, or the subject alone (an IPv6 address by its /64: peerKey). */
type Scope = 'pair' | 'ip' | 'subject';
interface Rule {
  scope: Scope;
  /** Tries allowed in a window of `windowSeconds` from the first one. */
  limit: number;
  windowSeconds: number;
  /** Past the limit, one more try per this many seconds of the window (the back-off). */
  blockSeconds: number;
}

const MINUTE = 60;
const HOUR = 60 * MINUTE;

/**
 * Every limit, in one place (OWASP Authentication Cheat Sheet, "Protect against automated
 * attacks"; ASVS 5.0 §6.3.1). A rule allows `limit` tries in its window; past it, one more try
 * for each `blockSeconds` since the window began, so a short block is a back-off, not a lockout.
 * A refused try is not counted.
 *
 * - pair: the classic lockout, for one guesser against one account.
 * - ip: one address spraying many accounts.
 * - subject: many addresses against one account. Its block is short on purpose: anyone can
 *   trip it, so it must slow a distributed attack (one try per 5 minutes once 20 have failed
 *   in the hour) without locking the owner out for long.
 * - reset, sign_up: every request counts, since each may send a mail (and sign-up hashes a
 *   password): it limits mail to a victim's inbox and a sender's use of us as a mailer.
 * - exists_mail: at most one "account exists" mail per address per hour.
 * - invite: team invitations per inviting account (subject: the account id).
 */
export const THROTTLE_RULES: Record<ThrottleKind, readonly Rule[]> = {
  sign_in: [
    { scope: 'pair', limit: 5, windowSeconds: 15 * MINUTE, blockSeconds: 15 * MINUTE },
    { scope: 'ip', limit: 50, windowSeconds: HOUR, blockSeconds: HOUR },
    { scope: 'subject', limit: 20, windowSeconds: HOUR, blockSeconds: 5 * MINUTE },
  ],
  // The second factor of an account whose password is already known: same shape, so six
  // digits (10^6) cannot be walked through from many addresses either.
  mfa: [
    { scope: 'pair', limit: 5, windowSeconds: 15 * MINUTE, blockSeconds: 15 * MINUTE },
    { scope: 'ip', limit: 50, windowSeconds: HOUR, blockSeconds: HOUR },
    { scope: 'subject', limit: 20, windowSeconds: HOUR, blockSeconds: 5 * MINUTE },
  ],
  reset: [
    { scope: 'subject', limit: 5, windowSeconds: HOUR, blockSeconds: HOUR },
    { scope: 'ip', limit: 20, windowSeconds: HOUR, blockSeconds: HOUR },
  ],
  sign_up: [
    { scope: 'subject', limit: 5, windowSeconds: HOUR, blockSeconds: HOUR },
    { scope: 'ip', limit: 20, windowSeconds: HOUR, blockSeconds: HOUR },
  ],
  exists_mail: [{ scope: 'subject', limit: 1, windowSeconds: HOUR, blockSeconds: HOUR }],
  invite: [{ scope: 'subject', limit: 20, windowSeconds: HOUR, blockSeconds: HOUR }],
};

export interface ThrottleOptions {
  /** Shared counters across nodes; without it, each node counts in its own memory. */
  redis?: Redis;
  keyPrefix?: string;
}

/** Emails are compared case-insensitively, and never stored in clear as keys. */
function subjectKey(subject: string): string {
  return hash('sha256', subject.trim().toLowerCase(), 'hex').slice(0, 32);
}

interface BuiltRule extends Rule {
  /** Tries in the current window (points: limit, duration: the window). */
  counter: RateLimiterAbstract;
}

/** consume() answers a refusal by rejecting with the same result; an Error is a store failure. */
async function consume(limiter: RateLimiterAbstract, key: string): Promise<RateLimiterRes> {
  try {
    return await limiter.consume(key, 1);
  } catch (refused) {
    if (refused instanceof RateLimiterRes) return refused;
    throw refused;
  }
}

export function createThrottle({ redis, keyPrefix = 'latchkey:throttle' }: ThrottleOptions = {}): Throttle {
  const limiter = (name: string, points: number, durationSeconds: number): RateLimiterAbstract => {
    const options = { keyPrefix: `${keyPrefix}:${name}`, points, duration: durationSeconds };
    if (!redis) return new RateLimiterMemory(options);
    return new RateLimiterRedis({
      ...options,
      storeClient: redis,
      // ioredis, not the node-redis package.
      useRedisPackage: false,
      // While Redis is down or not yet connected, this node's memory answers at once instead
      // of ioredis queueing the command: the door stays shut (counted per node for that
      // time) and a sign-in neither hangs nor fails.
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory(options),
    });
  };

  const rules = Object.fromEntries(
    (Object.keys(THROTTLE_RULES) as ThrottleKind[]).map((kind) => [
      kind,
      THROTTLE_RULES[kind].map((rule): BuiltRule => ({ ...rule, counter: limiter(`${kind}:${rule.scope}`, rule.limit, rule.windowSeconds) })),
    ]),
  ) as Record<ThrottleKind, BuiltRule[]>;

  const keyFor = (scope: Scope, subject: string, ip: string): string =>
    scope === 'ip' ? peerKey(ip) : scope === 'subject' ? subjectKey(subject) : `${subjectKey(subject)}:${peerKey(ip)}`;

  /** Milliseconds until this rule allows a try again, or 0 when the try `counted` is allowed. */
  const waitFor = (rule: BuiltRule, counted: RateLimiterRes): number => {
    if (counted.consumedPoints <= rule.limit) return 0;
    const windowMs = rule.windowSeconds * 1000;
    const blockMs = rule.blockSeconds * 1000;
    const elapsed = Math.max(0, windowMs - counted.msBeforeNext);
    // The back-off: one try past the limit for each whole block since the window began.
    if (counted.consumedPoints <= rule.limit + Math.floor(elapsed / blockMs)) return 0;
    return Math.max(1, Math.min(counted.msBeforeNext, blockMs - (elapsed % blockMs)));
  };

  return {
    async attempt(kind, subject, ip) {
      const built = rules[kind];
      // Every counter takes its point at once: of N concurrent tries, each sees its own count.
      const counted = await Promise.all(built.map((rule) => consume(rule.counter, keyFor(rule.scope, subject, ip))));
      const retryAfterMs = Math.max(0, ...built.map((rule, i) => waitFor(rule, counted[i]!)));
      if (retryAfterMs === 0) return { allowed: true };
      // A refused try costs nothing: hammering a closed door does not keep it closed.
      await Promise.all(built.map((rule) => rule.counter.reward(keyFor(rule.scope, subject, ip), 1)));
      // Retry-After is whole seconds, and a block with milliseconds left is still a block.
      return { allowed: false, retryAfterSeconds: Math.ceil(retryAfterMs / 1000) };
    },

    async succeed(kind, subject, ip) {
      await Promise.all(
        rules[kind].map((rule) => {
          const key = keyFor(rule.scope, subject, ip);
          return rule.scope === 'pair' ? rule.counter.delete(key) : rule.counter.reward(key, 1);
        }),
      );
    },
  };
}
