// The audit log viewer at 10 million events (DESIGN §4, issue 8 §4): the first page, a deep
// page and filtered pages each < 100 ms, and export throughput in events/s.
//
// The events are seeded in bulk with INSERT … SELECT generate_series, straight into the
// table (its shape, columns and indexes exactly as the migrations make them). Their hashes
// are unique and each row's prev_hash is its predecessor's hash, but they are not SHA-256 of
// the canonical event: `audit verify` would refuse them. Nothing measured here reads hashes.
// The indexes are dropped during the load and rebuilt after it (the same definitions), as
// any bulk load does; then VACUUM ANALYZE, as autovacuum would in time.
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { auditFilterSchema, exportAuditLines, queryAuditEvents, streamAuditEvents, type AuditFilter } from '../src/audit/audit-query.ts';
import { loadConfig } from '../src/config.ts';
import type { Deps } from '../src/context.ts';
import { closeDeps, createLogger, openDeps } from '../src/deps.ts';
import { BENCH_SECRET, createDatabase, log, median, withPg } from './lib.ts';

// BENCH_AUDIT_EVENTS=200000 for a quick look; the bar is at the default.
const EVENTS = Number(process.env.BENCH_AUDIT_EVENTS ?? 10_000_000);
const CHUNK = 1_000_000;
const RUNS = 15;
export const AUDIT_PAGE_BAR_MS = 100;
const EXPORT_EVENTS = Number(process.env.BENCH_AUDIT_EXPORT_EVENTS ?? 500_000);

// A plausible mix: 20 event types, 1 in 20 of them failures; 10,000 actors; 100,000 subjects;
// one event every ~3 s over the year before "now".
const TYPES = [
  'token.issued', 'token.issued', 'token.issued', 'token.issued', 'token.issued', 'token.issued', 'token.issued', 'token.issued',
  'api_key.created', 'api_key.rotated', 'api_key.revoked', 'client.created', 'client.secret_rotated', 'client.revoked',
  'request.created', 'request.approved', 'team.member_joined', 'account.password_changed', 'token.failed', 'account.sign_in_failed',
];
const SPAN_MS = 365 * 86_400_000;

export interface AuditQueryFigure {
  name: string;
  filter: string;
  median_ms: number;
  p95_ms: number;
  rows: number;
  plan: string;
  pass: boolean;
}

export interface AuditResults {
  events: number;
  seed_s: number;
  index_s: number;
  table_mib: number;
  indexes_mib: number;
  queries: AuditQueryFigure[];
  export: { format: 'jsonl' | 'csv'; events: number; seconds: number; events_per_s: number }[];
  bar_ms: number;
  pass: boolean;
}

const INDEXES = [
  ['audit_event_hash_key', 'CREATE UNIQUE INDEX "audit_event_hash_key" ON "audit_event"("hash")'],
  ['audit_event_subject_type_subject_id_seq_idx', 'CREATE INDEX "audit_event_subject_type_subject_id_seq_idx" ON "audit_event"("subject_type", "subject_id", "seq")'],
  ['audit_event_actor_id_seq_idx', 'CREATE INDEX "audit_event_actor_id_seq_idx" ON "audit_event"("actor_id", "seq")'],
  ['audit_event_type_seq_idx', 'CREATE INDEX "audit_event_type_seq_idx" ON "audit_event"("type", "seq")'],
  ['audit_event_type_at_idx', 'CREATE INDEX "audit_event_type_at_idx" ON "audit_event"("type", "at")'],
  ['audit_event_at_idx', 'CREATE INDEX "audit_event_at_idx" ON "audit_event"("at")'],
] as const;

async function seed(url: string, start: Date): Promise<{ seed_s: number; index_s: number }> {
  return withPg(url, async (client) => {
    // Any index the migrations add and this list lacks would be silently missing: refuse.
    const existing = (await client.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'audit_event' AND indexname <> 'audit_event_pkey' ORDER BY 1`)).rows.map((r) => r.indexname as string);
    const known = INDEXES.map(([name]) => name).sort();
    if (existing.join() !== known.join()) throw new Error(`audit_event indexes changed (${existing.join(', ')}): update bench/audit.ts`);
    for (const [name] of INDEXES) await client.query(`DROP INDEX "${name}"`);
    const types = `ARRAY[${TYPES.map((t) => `'${t}'`).join(',')}]`;
    const hash = (g: string) => `encode(sha256(int8send(${g})), 'hex')`;
    const t0 = performance.now();
    for (let from = 1; from <= EVENTS; from += CHUNK) {
      const to = Math.min(from + CHUNK - 1, EVENTS);
      await client.query(`
        INSERT INTO audit_event (seq, at, type, actor_type, actor_id, subject_type, subject_id, request_id, ip, data, prev_hash, hash)
        SELECT g,
               $1::timestamptz + (g * ${SPAN_MS / EVENTS}) * interval '1 millisecond',
               (${types})[1 + (g * 7919) % ${TYPES.length}],
               CASE WHEN g % 3 = 0 THEN 'client' ELSE 'account' END,
               'actor' || (g * 104729) % 10000,
               'api_key', 'key' || (g * 1299709) % 100000,
               md5(g::text), '10.0.' || (g % 250) || '.' || (g % 251),
               jsonb_build_object('scopes', 'orders.read', 'n', g),
               CASE WHEN g = 1 THEN repeat('0', 64) ELSE ${hash('g - 1')} END,
               ${hash('g')}
          FROM generate_series($2::bigint, $3::bigint) AS g`, [start.toISOString(), from, to]);
      log(`audit: seeded ${to.toLocaleString('en')} of ${EVENTS.toLocaleString('en')} events`);
    }
    const seeded = performance.now();
    await client.query(`SELECT setval(pg_get_serial_sequence('audit_event', 'seq'), ${EVENTS})`);
    await client.query(`SET maintenance_work_mem = '512MB'`);
    for (const [, sql] of INDEXES) await client.query(sql);
    await client.query('VACUUM ANALYZE audit_event');
    const indexed = performance.now();
    return { seed_s: Math.round((seeded - t0) / 100) / 10, index_s: Math.round((indexed - seeded) / 100) / 10 };
  });
}

/** Runs `fn` RUNS times after two warm-ups; median and p95 in ms. */
async function time(fn: () => Promise<number>): Promise<{ median_ms: number; p95_ms: number; rows: number }> {
  let rows = 0;
  for (let i = 0; i < 2; i++) rows = await fn();
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    rows = await fn();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return { median_ms: round(median(samples)), p95_ms: round(samples[Math.ceil(0.95 * samples.length) - 1]!), rows };
}

/** The plan of the query a page runs (the same WHERE, order and limit Prisma sends), for the report. */
async function plan(url: string, where: string, params: unknown[]): Promise<string> {
  return withPg(url, async (client) => {
    const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM audit_event WHERE ${where} ORDER BY seq DESC LIMIT 51`, params);
    return rows.map((r) => r['QUERY PLAN'] as string).filter((line) => /Scan|Sort|Limit|InitPlan|Execution/.test(line)).map((l) => l.trim()).join(' | ');
  });
}

export async function runAuditBench(): Promise<AuditResults> {
  const db = await createDatabase('latchkey_bench_audit');
  const env = { DATABASE_URL: db.url, LATCHKEY_SECRET: BENCH_SECRET, LOG_LEVEL: 'warn', LATCHKEY_DATA_DIR: '/tmp/latchkey-bench-audit' };
  const deps: Deps = await openDeps(loadConfig(env), createLogger({ LOG_LEVEL: 'warn' }));
  try {
    const start = new Date(Date.now() - SPAN_MS);
    log(`audit: seeding ${EVENTS.toLocaleString('en')} events`);
    const { seed_s, index_s } = await seed(db.url, start);
    const sizes = await withPg(db.url, async (c) => (await c.query(`SELECT pg_table_size('audit_event') AS t, pg_indexes_size('audit_event') AS i`)).rows[0]);
    const mib = (n: string) => Math.round(Number(n) / 2 ** 20);
    const atSeq = (seq: number) => new Date(start.getTime() + seq * (SPAN_MS / EVENTS));

    const cases: { name: string; input: Record<string, unknown>; older?: string; where: string; params: unknown[] }[] = [
      { name: 'first page', input: {}, where: 'TRUE', params: [] },
      { name: 'deep page (older than event 1,000)', input: {}, older: '1000', where: 'seq < 1000', params: [] },
      { name: `middle page (older than event ${Math.floor(EVENTS / 2).toLocaleString('en')})`, input: {}, older: String(Math.floor(EVENTS / 2)), where: `seq < ${Math.floor(EVENTS / 2)}`, params: [] },
      { name: 'filtered: one actor', input: { actor: 'actor4242' }, where: 'actor_id = $1', params: ['actor4242'] },
      { name: 'filtered: one actor, deep', input: { actor: 'actor4242' }, older: '10000', where: 'actor_id = $1 AND seq < 10000', params: ['actor4242'] },
      { name: 'filtered: event type', input: { type: 'api_key.revoked' }, where: 'type = $1', params: ['api_key.revoked'] },
      { name: 'filtered: subject', input: { subjectType: 'api_key', subjectId: 'key31337' }, where: 'subject_type = $1 AND subject_id = $2', params: ['api_key', 'key31337'] },
      { name: 'filtered: failures', input: { outcome: 'failure' }, where: `type LIKE '%failed'`, params: [] },
      {
        name: 'filtered: one day, 6 months ago',
        input: { from: atSeq(EVENTS / 2).toISOString(), to: atSeq(EVENTS / 2 + EVENTS / 365).toISOString() },
        // As queryAuditEvents asks it: the time range narrowed to a seq range by two probes of the at index.
        where: `at >= $1 AND at < $2 AND seq >= (SELECT seq FROM audit_event WHERE at < $1::timestamptz - interval '60 seconds' ORDER BY at DESC LIMIT 1)
                AND seq <= (SELECT seq FROM audit_event WHERE at >= $2::timestamptz + interval '60 seconds' ORDER BY at LIMIT 1)`,
        params: [atSeq(EVENTS / 2).toISOString(), atSeq(EVENTS / 2 + EVENTS / 365).toISOString()],
      },
      { name: 'filtered: actor + failures + last 30 days', input: { actor: 'actor77', outcome: 'failure', from: atSeq(EVENTS - EVENTS / 12).toISOString() }, where: `actor_id = $1 AND type LIKE '%failed' AND at >= $2 AND seq >= (SELECT seq FROM audit_event WHERE at < $2::timestamptz - interval '60 seconds' ORDER BY at DESC LIMIT 1)`, params: ['actor77', atSeq(EVENTS - EVENTS / 12).toISOString()] },
    ];
    const queries: AuditQueryFigure[] = [];
    for (const c of cases) {
      const filter: AuditFilter = auditFilterSchema.parse(c.input);
      const figures = await time(async () => (await queryAuditEvents(deps, filter, { older: c.older })).events.length);
      const figure = { name: c.name, filter: JSON.stringify({ ...c.input, ...(c.older ? { older: c.older } : {}) }), ...figures, plan: await plan(db.url, c.where, c.params), pass: figures.median_ms < AUDIT_PAGE_BAR_MS };
      log(`audit: ${c.name}: median ${figure.median_ms} ms, p95 ${figure.p95_ms} ms, ${figure.rows} rows — ${figure.plan}`);
      queries.push(figure);
    }

    const exports: AuditResults['export'] = [];
    for (const format of ['jsonl', 'csv'] as const) {
      // The newest EXPORT_EVENTS events, streamed to a sink that only counts.
      const filter = auditFilterSchema.parse({ from: atSeq(EVENTS - EXPORT_EVENTS + 1).toISOString() });
      let events = 0;
      const sink = new Writable({
        write(_chunk, _encoding, done) {
          events++;
          done();
        },
      });
      const t = performance.now();
      await pipeline(Readable.from(exportAuditLines(streamAuditEvents(deps, filter), format)), sink);
      const seconds = (performance.now() - t) / 1000;
      if (format === 'csv') events--; // the header line
      exports.push({ format, events, seconds: Math.round(seconds * 100) / 100, events_per_s: Math.round(events / seconds) });
      log(`audit: export ${format}: ${events.toLocaleString('en')} events in ${seconds.toFixed(2)} s`);
    }
    return {
      events: EVENTS,
      seed_s,
      index_s,
      table_mib: mib(sizes.t),
      indexes_mib: mib(sizes.i),
      queries,
      export: exports,
      bar_ms: AUDIT_PAGE_BAR_MS,
      pass: queries.every((q) => q.pass),
    };
  } finally {
    await closeDeps(deps);
    await db.drop();
  }
}
