// API-key introspection (POST /introspect, RFC 7662) on a warm Latchkey node vs an empty koa
// handler, and the same bench with 1,000 and with 1,000,000 stored keys (bulk-seeded in SQL).
// ~100 real keys (digests that match) are introspected in rotation, so the cache is exercised.
import { pathToFileURL } from 'node:url';
import {
  BENCH_SECRET,
  basic,
  cleanupAll,
  createDatabase,
  freePort,
  latchkeyCli,
  log,
  measure,
  ratio,
  rssMiB,
  SERVER_MALLOC_ARENA_MAX,
  startChild,
  withPg,
  type Figures,
  type LoadRequest,
} from './lib.ts';

const REAL_KEYS = Number(process.env.BENCH_REAL_KEYS ?? 100);
const SCALES = (process.env.BENCH_SCALES ?? '1000,1000000').split(',').map(Number);

export interface ScaleResult {
  stored_keys: number;
  seed_rows: number;
  seed_s: number;
  table_bytes: number;
  table_mib: number;
  figures: Figures;
  ratio_vs_empty_koa: number;
  rss_mib_after: number | null;
}

export interface IntrospectionResults {
  empty_koa: Figures;
  real_keys_in_rotation: number;
  scales: ScaleResult[];
  bar_ratio: number;
  ratio_pass: boolean;
  p50_change: number | null;
  p50_bar: number;
  p50_pass: boolean | null;
  rss_bar_mib: number;
  rss_pass: boolean | null;
}

/** Creates the real keys with Latchkey's own code (digests must match), in this process. */
async function createRealKeys(env: Record<string, string>, count: number): Promise<string[]> {
  const { loadConfig } = await import('../src/config.ts');
  // Service wiring lives in src/deps.ts (older trees had it in src/server.ts).
  const wiring = (await import('../src/deps.ts').catch(() => import('../src/server.ts'))) as unknown as typeof import('../src/deps.ts');
  const { createLogger, openDeps } = wiring;
  const { createApiKey } = await import('../src/credentials/api-keys.ts');
  const deps = await openDeps(loadConfig(env), createLogger({ LOG_LEVEL: 'warn' }));
  try {
    const keys: string[] = [];
    for (let i = 0; i < count; i++) {
      const issued = await createApiKey(deps, { name: `bench-${i}`, scopes: ['s'] }, { type: 'cli', id: 'bench' });
      keys.push(issued.key);
    }
    await deps.audit.idle();
    return keys;
  } finally {
    await deps.db.close();
  }
}

/** Bulk insert straight into Postgres: ids are 12 hex chars (base62-safe), digests 32 arbitrary bytes. */
async function seed(url: string, audience: string, target: number): Promise<{ rows: number; seconds: number; total: number; bytes: number }> {
  return withPg(url, async (c) => {
    const before = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM api_key')).rows[0]!.n);
    const started = performance.now();
    let inserted = 0;
    if (target > before) {
      const result = await c.query(
        `INSERT INTO api_key (id, name, owner_id, scopes, audiences, digest, expires_at, created_at)
         SELECT substr(md5('seed' || i), 1, 12), 'seed-' || i, NULL, ARRAY['s'], ARRAY[$1::text], sha256(int8send(i)), NULL, now()
         FROM generate_series($2::bigint, $3::bigint) AS i
         ON CONFLICT (id) DO NOTHING`,
        [audience, before + 1, target],
      );
      inserted = result.rowCount ?? 0;
      await c.query('ANALYZE api_key');
    }
    const seconds = (performance.now() - started) / 1000;
    const total = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM api_key')).rows[0]!.n);
    const bytes = Number((await c.query<{ b: string }>(`SELECT pg_total_relation_size('api_key') AS b`)).rows[0]!.b);
    return { rows: inserted, seconds: Math.round(seconds * 100) / 100, total, bytes };
  });
}

export async function runIntrospectionBench(): Promise<IntrospectionResults> {
  const db = await createDatabase('latchkey_bench_introspect');
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const env = { DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', LATCHKEY_SECRET: BENCH_SECRET, LOG_LEVEL: 'warn', LATCHKEY_ISSUER: issuer, MALLOC_ARENA_MAX: SERVER_MALLOC_ARENA_MAX };
  try {
    log(`introspection: database ${db.name}; scope, client and one key with the CLI, ${REAL_KEYS - 1} more keys in-process`);
    await latchkeyCli(env, 'scope', 'create', 's', '--description', 'bench scope');
    const client = (await latchkeyCli(env, 'client', 'create', '--name', 'bench-rs', '--scopes', 's')) as { client_id: string; client_secret: string };
    const first = (await latchkeyCli(env, 'key', 'create', '--name', 'b', '--scopes', 's')) as { id: string; key: string };
    const keys = [first.key, ...(await createRealKeys(env, REAL_KEYS - 1))];

    const headers = { authorization: basic(client.client_id, client.client_secret), 'content-type': 'application/x-www-form-urlencoded' };
    const requests: LoadRequest[] = keys.map((key) => ({ method: 'POST', path: '/introspect', headers, body: `token=${encodeURIComponent(key)}` }));

    // ---- Baseline: empty koa handler, same connection count
    const koaPort = await freePort();
    const koa = await startChild(['--import', 'tsx', 'bench/empty-koa.ts'], { PORT: String(koaPort) }, koaPort);
    let emptyKoa: Figures;
    try {
      emptyKoa = strip(await measure('introspect/empty-koa', koa.url, requests, { pid: koa.pid }));
    } finally {
      await koa.stop();
    }

    // ---- Latchkey at each scale (a fresh, then warmed, node per scale)
    const scales: ScaleResult[] = [];
    for (const target of SCALES) {
      log(`introspection: seeding api_key up to ${target.toLocaleString('en')} rows`);
      const seeded = await seed(db.url, issuer, target);
      log(`introspection: ${seeded.rows} rows in ${seeded.seconds} s; ${seeded.total} keys, api_key ${(seeded.bytes / 2 ** 20).toFixed(1)} MiB`);
      const latchkey = await startChild(['bin/latchkey.mjs', 'serve'], env, port, '/healthz');
      try {
        for (const key of [keys[0]!, keys.at(-1)!]) {
          const probe = await fetch(`${latchkey.url}/introspect`, { method: 'POST', headers, body: `token=${encodeURIComponent(key)}` });
          const body = await probe.text();
          if (probe.status !== 200 || !(JSON.parse(body) as { active?: boolean }).active) throw new Error(`introspection probe failed: ${probe.status} ${body}`);
        }
        const figures = strip(await measure(`introspect/latchkey ${target}`, latchkey.url, requests, { pid: latchkey.pid }));
        scales.push({
          stored_keys: seeded.total,
          seed_rows: seeded.rows,
          seed_s: seeded.seconds,
          table_bytes: seeded.bytes,
          table_mib: Math.round((seeded.bytes / 2 ** 20) * 10) / 10,
          figures,
          ratio_vs_empty_koa: ratio(figures.rps, emptyKoa.rps),
          rss_mib_after: rssMiB(latchkey.pid),
        });
      } finally {
        await latchkey.stop();
      }
    }

    const small = scales[0];
    const large = scales.at(-1);
    const p50Change = small && large && small !== large ? Math.round(((large.figures.p50_ms - small.figures.p50_ms) / small.figures.p50_ms) * 1000) / 1000 : null;
    const rss = large?.rss_mib_after ?? null;
    return {
      empty_koa: emptyKoa,
      real_keys_in_rotation: keys.length,
      scales,
      bar_ratio: 0.5,
      ratio_pass: scales.every((s) => s.ratio_vs_empty_koa >= 0.5),
      p50_change: p50Change,
      p50_bar: 0.1,
      p50_pass: p50Change === null ? null : p50Change <= 0.1,
      rss_bar_mib: 300,
      rss_pass: rss === null ? null : rss < 300,
    };
  } finally {
    await db.drop();
  }
}

const strip = ({ warmupOk: _w, warmupNon2xx: _n, ...f }: Awaited<ReturnType<typeof measure>>): Figures => f;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log(JSON.stringify(await runIntrospectionBench(), null, 2));
  } finally {
    await cleanupAll();
  }
}
