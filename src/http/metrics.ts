import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Limiter } from '../limits/limiter.ts';

/** One registry per app instance, so two apps in one process (tests) never share counters. */
export function createMetrics(limits?: Pick<Limiter, 'rejections' | 'redisStatus'>) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
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
  const alerts = new Counter({
    name: 'latchkey_alerts_raised_total',
    help: 'Anomaly alerts raised by this node, by kind (spike, burst, new_network, rotated_secret)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  // Label children are looked up once per (route, status), not hashed again on every request.
  const children = new Map<string, { counter: { inc(): void }; histogram: { observe(value: number): void } }>();
  return {
    registry,
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
