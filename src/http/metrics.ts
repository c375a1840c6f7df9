import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Usage } from '../credentials/usage.ts';
import type { Database } from '../db/database.ts';
import { databaseDown } from '../lib/failure-log.ts';
import type { CredentialCache } from '../lib/invalidation.ts';
import type { Limiter } from '../limits/limiter.ts';

/** What the metrics read when scraped (issue 9 §1.8); each is optional, so a test can build a bare registry. */
export interface MetricSources {
  limits?: Pick<Limiter, 'rejections' | 'redisStatus'>;
  cache?: Pick<CredentialCache, 'hits' | 'misses'>;
  db?: Pick<Database, 'pool'>;
  usage?: Pick<Usage, 'dropped'>;
  /** The node's logger: the database outage state is kept beside it (lib/failure-log.ts). */
  log?: Logger;
}

/**
 * One registry per app instance, so two apps in one process (tests) never share counters.
 * The hot paths bump pre-bound label children or plain numbers; anything that can be read
 * instead (cache hits, pool use, Redis state) is read when scraped.
 */
export function createMetrics(sources: MetricSources = {}) {
  const { limits, cache, db, usage, log } = sources;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // The hot paths bump these plain numbers (a labelled inc hashes its labels on every call);
  // the counters catch up when scraped.
  const counts = { tokens: 0, active: 0, inactive: 0 };
  const reported = { ...counts };
  const catchUp = (name: keyof typeof counts) => {
    const delta = counts[name] - reported[name];
    reported[name] = counts[name];
    return delta;
  };
  new Counter({
    name: 'latchkey_tokens_issued_total',
    help: 'Access tokens issued at /token (each one audited before it was answered)',
    registers: [registry],
    collect() {
      this.inc(catchUp('tokens'));
    },
  });
  new Counter({
    name: 'latchkey_introspections_total',
    help: 'POST /introspect answers by result (active, inactive)',
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      this.inc({ result: 'active' }, catchUp('active'));
      this.inc({ result: 'inactive' }, catchUp('inactive'));
    },
  });
  const alerts = new Counter({
    name: 'latchkey_alerts_raised_total',
    help: 'Anomaly alerts raised by this node, by kind (spike, burst, new_network, rotated_secret)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const auditWrite = new Histogram({
    name: 'latchkey_audit_write_seconds',
    help: 'Time to commit one batch of audit events (group commit, audit/audit-writer.ts)',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const auditBatch = new Histogram({
    name: 'latchkey_audit_batch_size',
    help: 'Audit events committed per batch',
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500],
    registers: [registry],
  });
  if (cache) {
    // Counted as plain numbers by the cache; the counters catch up when scraped.
    let hits = 0;
    let misses = 0;
    new Counter({
      name: 'latchkey_credential_cache_hits_total',
      help: 'Credential lookups (clients, API keys) answered from the node-local cache',
      registers: [registry],
      collect() {
        this.inc(cache.hits - hits);
        hits = cache.hits;
      },
    });
    new Counter({
      name: 'latchkey_credential_cache_misses_total',
      help: 'Credential lookups that had to read the database',
      registers: [registry],
      collect() {
        this.inc(cache.misses - misses);
        misses = cache.misses;
      },
    });
  }
  if (usage) {
    const reported: Record<string, number> = {};
    new Counter({
      name: 'latchkey_usage_dropped_total',
      help: 'Credential uses left out of the usage rollups: overflow (kept past the limit while the database was away), unconfirmed (a write whose COMMIT was lost), refused (a write the database refused)',
      labelNames: ['reason'] as const,
      registers: [registry],
      collect() {
        for (const [reason, dropped] of Object.entries(usage.dropped)) {
          this.inc({ reason }, dropped - (reported[reason] ?? 0));
          reported[reason] = dropped;
        }
      },
    });
  }
  const pool = db?.pool;
  if (pool) {
    const poolGauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    poolGauge('latchkey_db_pool_connections', 'Open connections in the Postgres pool (in use or idle)', () => pool.totalCount);
    poolGauge('latchkey_db_pool_idle_connections', 'Idle connections in the Postgres pool', () => pool.idleCount);
    poolGauge('latchkey_db_pool_waiting_requests', 'Queries waiting for a pool connection', () => pool.waitingCount);
  }
  if (log) {
    new Gauge({
      name: 'latchkey_database_up',
      help: 'Whether the database was reachable when last needed: 1 yes, 0 no (an outage answers 503)',
      registers: [registry],
      collect() {
        this.set(databaseDown(log) ? 0 : 1);
      },
    });
  }
  const verifications = new Counter({
    name: 'latchkey_key_verifications_total',
    help: 'POST /v1/keys/verify answers by code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const verificationChildren = new Map<string, { inc(): void }>();
  if (limits) {
    // Read when scraped: the hot paths only bump plain numbers.
    new Gauge({
      name: 'latchkey_plan_limit_rejections',
      help: 'Requests refused by a plan limit since start, by endpoint',
      labelNames: ['endpoint'] as const,
      registers: [registry],
      collect() {
        for (const [endpoint, count] of Object.entries(limits.rejections)) this.set({ endpoint }, count);
      },
    });
    new Gauge({
      name: 'latchkey_redis_up',
      help: 'Whether the Redis of the shared counters (REDIS_URL) is reachable: 1 yes, 0 no, -1 not configured',
      registers: [registry],
      collect() {
        const status = limits.redisStatus();
        this.set(status === 'ok' ? 1 : status === 'unreachable' ? 0 : -1);
      },
    });
  }
  const requests = new Counter({
    name: 'latchkey_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'latchkey_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const junk = new Counter({
    name: 'latchkey_junk_requests_total',
    help: 'Junk requests (failed client authentication, unknown credentials, throttled requests) by audit event type; summarised in the audit log',
    labelNames: ['type'] as const,
    registers: [registry],
  });
  const refusals = new Counter({
    name: 'latchkey_limit_rejections_total',
    help: 'Requests refused with 429 by self-protection limits, by reason (requests: rate per peer or client; failures: back-off)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  // Label children are looked up once per (route, status), not hashed again on every request.
  const children = new Map<string, { counter: { inc(): void }; histogram: { observe(value: number): void } }>();
  return {
    registry,
    tokenIssued(): void {
      counts.tokens++;
    },
    introspected(active: boolean): void {
      if (active) counts.active++;
      else counts.inactive++;
    },
    auditBatch(size: number, seconds: number): void {
      auditBatch.observe(size);
      auditWrite.observe(seconds);
    },
    junk(type: string): void {
      junk.labels(type).inc();
    },
    refused(reason: string): void {
      refusals.labels(reason).inc();
    },
    verified(code: string): void {
      let child = verificationChildren.get(code);
      if (!child) verificationChildren.set(code, (child = verifications.labels(code)));
      child.inc();
    },
    alert(kind: string): void {
      alerts.labels(kind).inc();
    },
    observe(route: string, status: number, seconds: number): void {
      const key = `${route} ${status}`;
      let child = children.get(key);
      if (!child) {
        child = { counter: requests.labels(route, String(status)), histogram: duration.labels(route) };
        children.set(key, child);
      }
      child.counter.inc();
      child.histogram.observe(seconds);
    },
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
