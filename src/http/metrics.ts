import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per app instance, so two apps in one process (tests) never share counters. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
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
