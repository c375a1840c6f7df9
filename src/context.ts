import type { Logger } from 'pino';
import type { AuditWriter } from './audit/audit-writer.ts';
import type { AuditSummariser } from './audit/summariser.ts';
import type { Config } from './config.ts';
import type { Usage } from './credentials/usage.ts';
import type { Database, Prisma } from './db/database.ts';
import type { CredentialCache } from './lib/invalidation.ts';
import type { Metrics } from './http/metrics.ts';
import type { Keyring } from './lib/keyring.ts';
import type { Alerts } from './limits/alerts.ts';
import type { EndpointGuard } from './limits/endpoint-guard.ts';
import type { Limiter } from './limits/limiter.ts';
import type { Throttle } from './limits/throttle.ts';
import type { Mailer } from './mail/mailer.ts';

/** Everything a service needs, passed in explicitly: nothing is created at module load. */
export interface Deps {
  config: Config;
  db: Database;
  prisma: Prisma;
  keyring: Keyring;
  audit: AuditWriter;
  cache: CredentialCache;
  usage: Usage;
  /** Anomaly alerts and expiry reminders (limits/alerts.ts): fed by usage flushes and a timer. */
  alerts: Alerts;
  /** Send only after the commit of what a message announces. */
  mailer: Mailer;
  /** Brute-force limits (sign-in, MFA, reset): one per process, shared across nodes through Redis when REDIS_URL is set. */
  throttle: Throttle;
  /** Self-protection of /token, /introspect, /revoke: requests and failures per peer and client (limits/endpoint-guard.ts). */
  guard: EndpointGuard;
  /** Junk requests, audited as one event per source per window (audit/summariser.ts). */
  junk: AuditSummariser;
  /** Plans' rates and quotas (verify, token endpoint): in memory, or shared through Redis when REDIS_URL is set. */
  limits: Limiter;
  log: Logger;
  /** The server's Prometheus metrics (http/metrics.ts); absent in the CLI. */
  metrics?: Metrics;
  /** Injected so that expiry and rotation are testable without sleeping. */
  now: () => Date;
}
