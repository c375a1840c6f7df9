import { hash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';

export type ThrottleKind = 'sign_in' | 'mfa' | 'reset';
export type ThrottleVerdict = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export interface Throttle {
  /** Whether a try is allowed now; consumes nothing. */
  check(kind: ThrottleKind, subject: string, ip: string): Promise<ThrottleVerdict>;
  /** Records a failure (for 'reset': a request, since each one sends a mail). */
  fail(kind: ThrottleKind, subject: string, ip: string): Promise<void>;
  /** Clears the (subject, IP) counter after a success; the IP and subject counters stay. */
  succeed(kind: ThrottleKind, subject: string, ip: string): Promise<void>;
}

/** What a rule counts by: the (subject, IP) pair, the IP alone, or the subject alone. */
type Scope = 'pair' | 'ip' | 'subject';
interface Rule {
  scope: Scope;
  /** Failures allowed in a window of `windowSeconds` from the first one. */
  limit: number;
  windowSeconds: number;
  /** Once the limit is reached, tries are refused for this long. */
  blockSeconds: number;
}

const MINUTE = 60;
const HOUR = 60 * MINUTE;

/**
 * Every limit, in one place (OWASP Authentication Cheat Sheet, "Protect against automated
 * attacks"; ASVS 5.0 §6.3.1). A rule's block starts when its limit is reached; a failure
 * recorded later in the same window (after the block) blocks again, so past the limit an
 * attacker gets one try per block.
 *
 * - pair: the classic lockout, for one guesser against one account.
 * - ip: one address spraying many accounts.
 * - subject: many addresses against one account. Its block is short on purpose: anyone can
 *   trip it, so it must slow a distributed attack (one try per 5 minutes once 20 have failed
 *   in the hour) without locking the owner out for long.
 * - reset: every request counts, since each sends a mail: it limits mail to a victim's
 *   inbox and a sender's use of us as a mailer.
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
  /** Failures in the current window. */
  counter: RateLimiterAbstract;
  /** Present while blocked; only ever written by block(). */
  block: RateLimiterAbstract;
}

export function createThrottle({ redis, keyPrefix = 'latchkey:throttle' }: ThrottleOptions = {}): Throttle {
  const limiter = (name: string, durationSeconds: number): RateLimiterAbstract => {
    const options = { keyPrefix: `${keyPrefix}:${name}`, points: 1, duration: durationSeconds };
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
      THROTTLE_RULES[kind].map((rule): BuiltRule => ({
        ...rule,
        // points is irrelevant to how these are used (get/penalty/block), so 1 for all.
        counter: limiter(`${kind}:${rule.scope}`, rule.windowSeconds),
        block: limiter(`${kind}:${rule.scope}:block`, rule.blockSeconds),
      })),
    ]),
  ) as Record<ThrottleKind, BuiltRule[]>;

  const keyFor = (scope: Scope, subject: string, ip: string): string =>
    scope === 'ip' ? ip : scope === 'subject' ? subjectKey(subject) : `${subjectKey(subject)}:${ip}`;

  return {
    async check(kind, subject, ip) {
      let retryAfterMs = 0;
      for (const rule of rules[kind]) {
        const blocked = await rule.block.get(keyFor(rule.scope, subject, ip));
        if (blocked && blocked.consumedPoints > 0) retryAfterMs = Math.max(retryAfterMs, blocked.msBeforeNext);
      }
      // Retry-After is whole seconds, and a block with milliseconds left is still a block.
      return retryAfterMs > 0 ? { allowed: false, retryAfterSeconds: Math.ceil(retryAfterMs / 1000) } : { allowed: true };
    },

    async fail(kind, subject, ip) {
      await Promise.all(
        rules[kind].map(async (rule) => {
          const key = keyFor(rule.scope, subject, ip);
          // penalty() counts without rejecting, so every failure is recorded.
          const counted = await rule.counter.penalty(key);
          if (counted.consumedPoints >= rule.limit) await rule.block.block(key, rule.blockSeconds);
        }),
      );
    },

    async succeed(kind, subject, ip) {
      await Promise.all(
        rules[kind]
          .filter((rule) => rule.scope === 'pair')
          .map(async (rule) => {
            const key = keyFor(rule.scope, subject, ip);
            await Promise.all([rule.counter.delete(key), rule.block.delete(key)]);
          }),
      );
    },
  };
}
