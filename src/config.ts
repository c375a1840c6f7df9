import { z } from 'zod';
import { parseDuration } from './lib/duration.ts';

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      try {
        return parseDuration(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    });

const url = z.url({ protocol: /^https?$/ });

const flag = (fallback: 'true' | 'false') => z.enum(['true', 'false']).default(fallback).transform((v) => v === 'true');

/** `N/DURATION`, e.g. `100/1m`: N events per window. */
export interface Rate {
  limit: number;
  windowMs: number;
}
const rate = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx): Rate => {
      const match = /^(\d{1,9})\/(\S+)$/.exec(value.trim());
      try {
        if (!match || Number(match[1]) < 1) throw new Error('must be N/DURATION, e.g. 100/1m');
        const windowMs = parseDuration(match[2]!);
        // A zero window counts nothing; beyond 30 days the counters' rows are pruned while current.
        if (windowMs < 1_000 || windowMs > 30 * 86_400_000) throw new Error('the window must be between 1s and 30d');
        return { limit: Number(match[1]), windowMs };
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    });

// Every environment variable Latchkey reads, with its default. Nothing else reads process.env.
const schema = z.object({
  /** `production` demands LATCHKEY_SECRET and LATCHKEY_ISSUER (no generated or guessed values). */
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  /** TCP port to listen on (0: any free port). */
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Address to listen on. */
  HOST: z.string().min(1).default('0.0.0.0'),
  /** Public base URL; tokens carry it as `iss`. Defaults to http://localhost:PORT. */
  LATCHKEY_ISSUER: url.optional(),
  /** Postgres URL; unset = embedded PGlite in LATCHKEY_DATA_DIR. */
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  /** The schema owner's URL, for migrations only, when DATABASE_URL is a least-privilege role (docs/database-roles.md). */
  DATABASE_MIGRATION_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  /**
   * Postgres: the longest a server waits for a connection or for a query's answer before it
   * fails the request with 503 (issue 9 §1.9: a silent partition must not hang requests). The
   * CLI waits this long to connect only: `audit export` and migrations may run for minutes.
   */
  // At most 10 minutes: timers past 2^31 ms fire at once, which would fail every query.
  DATABASE_TIMEOUT: duration('5s').refine((ms) => ms > 0 && ms <= 600_000, 'must be a positive duration up to 10m, such as 5s'),
  /** Embedded database, generated secret, mail files, control socket and lock: one process owns it. */
  LATCHKEY_DATA_DIR: z.string().min(1).default('./.latchkey'),
  /** Optional: cache invalidation over pub/sub and shared throttle counters across nodes. */
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  /** Mail relay, `smtp://` or `smtps://` with credentials in the URL; unset = each message written as an .eml file to LATCHKEY_DATA_DIR/mail/. */
  SMTP_URL: z.url({ protocol: /^smtps?$/ }).optional(),
  /** From header of every message Latchkey sends (an RFC 5322 address, at most 320 characters). */
  LATCHKEY_MAIL_FROM: z.string().trim().min(1).max(320).regex(/^[^\r\n]*$/, 'must be one line').default('Latchkey <latchkey@localhost>'),
  /** Master secret (≥ 32 chars): peppers and encryption at rest. Generated into the data dir when unset, outside production. */
  LATCHKEY_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** The admin account created on first start, when there is none. */
  LATCHKEY_ADMIN_EMAIL: z.email().default('admin@localhost.localdomain'),
  /** JWT access token lifetime. Short, because resource servers that verify offline never see a revocation. */
  LATCHKEY_ACCESS_TOKEN_TTL: duration('10m'),
  /** The longest a resource server may cache the JWKS: a new signing key is published this long before it signs. */
  LATCHKEY_JWKS_CACHE_TTL: duration('1h'),
  /** How long a signing key signs before a successor is published (scheduled rotation). */
  LATCHKEY_SIGNING_ROTATION: duration('30d').refine((ms) => ms > 0, 'must be a positive duration such as 30d'),
  /** Audience given to clients and keys created without one. Defaults to the issuer. */
  LATCHKEY_DEFAULT_AUDIENCE: url.optional(),
  /** Trust X-Forwarded-* (only behind a proxy that sets them). */
  LATCHKEY_TRUST_PROXY: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** Who may sign up in the portal: `open`, `invite` (by a team invitation only) or `domain:example.com`. */
  LATCHKEY_SIGNUP: z
    .string()
    .default('open')
    .refine((v) => v === 'open' || v === 'invite' || /^domain:[a-z0-9.-]+\.[a-z]{2,}$/i.test(v), 'must be open, invite or domain:example.com'),
  /** A portal session ends after this long without a request (ASVS 7.3.1)… */
  LATCHKEY_SESSION_IDLE: duration('30m'),
  /** …and after this long in any case (ASVS 7.3.2). */
  LATCHKEY_SESSION_MAX: duration('12h'),
  /**
   * Self-protection of /token, /introspect and /revoke (limits/endpoint-guard.ts): requests per
   * peer address and per client. Generous: it stops floods, not legitimate load.
   */
  LATCHKEY_LIMIT_REQUESTS: rate('50000/1s'),
  /** Failed client authentications and failed credential checks per peer and per client id; past it, 429 with growing back-off. */
  LATCHKEY_LIMIT_FAILURES: rate('100/1m'),
  /** The longest back-off a peer or client id can earn by failing. */
  LATCHKEY_LIMIT_MAX_BLOCK: duration('15m'),
  /** Junk (unknown client ids and keys, failed client authentication) is audited as one event per source per window. */
  LATCHKEY_AUDIT_SUMMARY_WINDOW: duration('1m'),
  /**
   * Anomaly alerts (limits/alerts.ts): a credential's uses in an hour above FACTOR × its mean of
   * the 24 hours before, when also above FLOOR per hour…
   */
  LATCHKEY_ALERT_SPIKE_FACTOR: z.coerce.number().min(1).max(1_000_000).default(10),
  LATCHKEY_ALERT_SPIKE_FLOOR: z.coerce.number().int().min(1).default(1000),
  /** …failed checks of one key or application within a window (counted per node)… */
  LATCHKEY_ALERT_BURST: rate('50/10m'),
  /** …first use from a network (/24, /48) not seen for that credential in 30 days (`false` turns it off). */
  LATCHKEY_ALERT_NEW_NETWORK: flag('true'),
  /** How often a node looks for spikes and due expiry and rotation reminders. */
  LATCHKEY_ALERT_INTERVAL: duration('1m').refine((ms) => ms >= 1000, 'must be at least 1s'),
  /** Bearer token for /metrics; unset = /metrics answers loopback peers only. */
  LATCHKEY_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Lets a client's jwks_uri point at private, loopback or link-local addresses (tests, development). */
  LATCHKEY_JWKS_URI_ALLOW_PRIVATE: flag('false'),
  /** While Redis (REDIS_URL) is unreachable, plan limits at /v1/keys/verify: `closed` answers RATE_LIMITED, `open` lets checks through uncounted, `memory` counts per node. */
  LATCHKEY_VERIFY_LIMITS_ON_REDIS_FAILURE: z.enum(['open', 'closed', 'memory']).default('closed'),
  /** The same for applications' plans at the token endpoint: `open` by default, so token issuance survives a Redis outage. */
  LATCHKEY_TOKEN_LIMITS_ON_REDIS_FAILURE: z.enum(['open', 'closed', 'memory']).default('open'),
  /** Whether API-key introspection (RFC 7662) counts toward the key's plan limits (over them: `{"active":false}`); it always counts toward usage. */
  LATCHKEY_INTROSPECTION_LIMITS: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** A signed audit checkpoint once this many events have been appended since the last one… */
  LATCHKEY_AUDIT_CHECKPOINT_EVENTS: z.coerce.number().int().min(1).max(100_000_000).default(1000),
  /** …or once this long has passed with new events, whichever comes first. */
  LATCHKEY_AUDIT_CHECKPOINT_INTERVAL: duration('5m'),
  /** pino levels; `info` writes one line per request (never a secret). */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = Omit<z.infer<typeof schema>, 'LATCHKEY_ISSUER' | 'LATCHKEY_DEFAULT_AUDIENCE'> & {
  LATCHKEY_ISSUER: string;
  LATCHKEY_DEFAULT_AUDIENCE: string;
};

export class ConfigError extends Error {}

/** Parses the environment once; every problem is reported as one line per variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `invalid ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(lines.join('\n'));
  }
  const config = parsed.data;
  if (config.NODE_ENV === 'production' && !config.LATCHKEY_SECRET) {
    throw new ConfigError('invalid LATCHKEY_SECRET: required when NODE_ENV=production');
  }
  if (config.NODE_ENV === 'production' && !config.LATCHKEY_ISSUER) {
    throw new ConfigError('invalid LATCHKEY_ISSUER: required when NODE_ENV=production');
  }
  if (config.DATABASE_MIGRATION_URL && !config.DATABASE_URL) {
    throw new ConfigError('invalid DATABASE_MIGRATION_URL: only used with DATABASE_URL (the embedded database has one role)');
  }
  const issuer = (config.LATCHKEY_ISSUER ?? `http://localhost:${config.PORT}`).replace(/\/+$/, '');
  return { ...config, LATCHKEY_ISSUER: issuer, LATCHKEY_DEFAULT_AUDIENCE: config.LATCHKEY_DEFAULT_AUDIENCE ?? issuer };
}

/**
 * Settings that work but are unsafe where they are: logged as warnings at start. An http://
 * issuer in production is allowed (a first `docker compose up`), but its cookies go without
 * Secure and its tokens in clear.
 */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.NODE_ENV === 'production' && config.LATCHKEY_ISSUER.startsWith('http://')) {
    warnings.push('LATCHKEY_ISSUER is http:// in production: session cookies lack Secure and tokens travel in clear; serve Latchkey behind TLS with an https:// issuer');
  }
  if (config.NODE_ENV === 'production' && config.LATCHKEY_JWKS_URI_ALLOW_PRIVATE) {
    warnings.push('LATCHKEY_JWKS_URI_ALLOW_PRIVATE=true in production: a client\'s jwks_uri can make Latchkey fetch from internal addresses');
  }
  return warnings;
}
