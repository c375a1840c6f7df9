// API-key introspection (POST /introspect, RFC 7662) on a warm Latchkey node vs an empty koa
// handler, and the same bench with 1,000 and with 1,000,000 stored keys (bulk-seeded in SQL).
// ~100 real keys (digests that match) are introspected in rotation, so the cache is exercised.
// JWT introspection too, on the smallest scale's node: ~100 access tokens from its /token, in rotation.
// Each scale has its own database and node; the baseline and the nodes are measured in
// alternating rounds, and each ratio is the median of per-round ratios.
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config.ts';
import { createApiKey } from '../src/credentials/api-keys.ts';
import { closeDeps, createLogger, openDeps } from '../src/deps.ts';
import {
  BENCH_SECRET,
  basic,
  cleanupAll,
  createDatabase,
  freePort,
  latchkeyCli,
  log,
  measureRounds,
  median,
  medianRun,
  roundRatios,
  rssMiB,
  SERVER_MALLOC_ARENA_MAX,
  startChild,
  withPg,
  type Child,
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
  /** The median round (by req/s), with every round's req/s. */
  figures: Figures & { rounds_rps: number[] };
  /** Median of the per-round ratios to the empty koa handler measured in the same round. */
  ratio_vs_empty_koa: number;
  ratio_rounds: number[];
  rss_mib_after: number | null;
}

export interface JwtIntrospectionResult {
  tokens_in_rotation: number;
  figures: Figures & { rounds_rps: number[] };
  ratio_vs_empty_koa: number;
  ratio_rounds: number[];
  bar_ratio: number;
  pass: boolean;
}

export interface IntrospectionResults {
  empty_koa: Figures & { rounds_rps: number[] };
  /** JWT access tokens (signature, lifetime, revocation list) on the smallest scale's node. */
  jwt: JwtIntrospectionResult | null;
  rounds: number;
  real_keys_in_rotation: number;
  scales: ScaleResult[];
  bar_ratio: number;
  ratio_pass: boolean;
  /** Median over rounds of (p50 at the largest scale / p50 at the smallest) − 1. */
  p50_change: number | null;
  p50_bar: number;
  p50_pass: boolean | null;
  rss_bar_mib: number;
  rss_pass: boolean | null;
}

/** Creates the real keys with Latchkey's own code (digests must match), in this process. */
async function createRealKeys(env: Record<string, string>, count: number): Promise<string[]> {
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
    await closeDeps(deps);
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
        `INSERT INTO api_key (id, name, team_id, scopes, audiences, digest, expires_at, created_at)
         SELECT substr(md5('seed' || i), 1, 12), 'seed-' || i, NULL, ARRAY['s'], ARRAY[$1::text], sha256(int8send(i)), NULL, now()
         FROM generate_series($2::bigint, $3::bigint) AS i
         ON CONFLICT (id) DO NOTHING`,
        [audience, before + 1, target],
      );
      inserted = result.rowCount ?? 0;
    }
    const seconds = (performance.now() - started) / 1000;
    // Settle what a bulk load leaves behind (autovacuum of a million fresh rows, dirty pages
    // for the checkpointer) before measuring, or it competes with the server for the cores:
    // the bench compares steady states, not a node running beside Postgres maintenance.
    await c.query('VACUUM (ANALYZE) api_key');
    await c.query('CHECKPOINT');
    const total = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM api_key')).rows[0]!.n);
    const bytes = Number((await c.query<{ b: string }>(`SELECT pg_total_relation_size('api_key') AS b`)).rows[0]!.b);
    return { rows: inserted, seconds: Math.round(seconds * 100) / 100, total, bytes };
  });
}

interface Scale {
  target: number;
  db: Awaited<ReturnType<typeof createDatabase>>;
  seeded: Awaited<ReturnType<typeof seed>>;
  node: Child;
  requests: LoadRequest[];
  /** Introspection of the client's own JWT access tokens. */
  jwtRequests: LoadRequest[];
}

const JWT_BAR = 0.25;

/** Access tokens from the node's own token endpoint, for the client that introspects them. */
async function accessTokens(url: string, authorization: string, count: number): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const answer = await fetch(`${url}/token`, { method: 'POST', headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&scope=s' });
    const body = (await answer.json()) as { access_token?: string };
    if (answer.status !== 200 || !body.access_token) throw new Error(`token for the JWT introspection bench: ${answer.status} ${JSON.stringify(body)}`);
    tokens.push(body.access_token);
  }
  return tokens;
}

/** One database and one warm node per scale, all running, so that rounds can alternate. */
async function prepareScale(target: number): Promise<Scale> {
  const db = await createDatabase(`latchkey_bench_keys_${target}`);
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const env = { DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', LATCHKEY_SECRET: BENCH_SECRET, LATCHKEY_ISSUER: issuer, MALLOC_ARENA_MAX: SERVER_MALLOC_ARENA_MAX };
  log(`introspection: database ${db.name}; scope, client and one key with the CLI, ${REAL_KEYS - 1} more keys in-process`);
  await latchkeyCli(env, 'scope', 'create', 's', '--description', 'bench scope');
  const client = (await latchkeyCli(env, 'client', 'create', '--name', 'bench-rs', '--scopes', 's')) as { client_id: string; client_secret: string };
  const first = (await latchkeyCli(env, 'key', 'create', '--name', 'b', '--scopes', 's')) as { id: string; key: string };
  const keys = [first.key, ...(await createRealKeys(env, REAL_KEYS - 1))];
  const headers = { authorization: basic(client.client_id, client.client_secret), 'content-type': 'application/x-www-form-urlencoded' };
  const requests: LoadRequest[] = keys.map((key) => ({ method: 'POST', path: '/introspect', headers, body: `token=${encodeURIComponent(key)}` }));

  log(`introspection: seeding api_key up to ${target.toLocaleString('en')} rows`);
  const seeded = await seed(db.url, issuer, target);
  log(`introspection: ${seeded.rows} rows in ${seeded.seconds} s; ${seeded.total} keys, api_key ${(seeded.bytes / 2 ** 20).toFixed(1)} MiB`);
  const node = await startChild(['bin/latchkey.mjs', 'serve'], env, port, '/healthz');
  for (const key of [keys[0]!, keys.at(-1)!]) {
    const probe = await fetch(`${node.url}/introspect`, { method: 'POST', headers, body: `token=${encodeURIComponent(key)}` });
    const body = await probe.text();
    if (probe.status !== 200 || !(JSON.parse(body) as { active?: boolean }).active) throw new Error(`introspection probe failed: ${probe.status} ${body}`);
  }
  const jwts = target === SCALES[0] ? await accessTokens(node.url, headers.authorization, REAL_KEYS) : [];
  const jwtRequests: LoadRequest[] = jwts.map((token) => ({ method: 'POST', path: '/introspect', headers, body: `token=${encodeURIComponent(token)}` }));
  for (const request of jwtRequests.slice(0, 1)) {
    const probe = await fetch(`${node.url}/introspect`, { method: 'POST', headers, body: request.body });
    const body = await probe.text();
    if (probe.status !== 200 || !(JSON.parse(body) as { active?: boolean }).active) throw new Error(`JWT introspection probe failed: ${probe.status} ${body}`);
  }
  return { target, db, seeded, node, requests, jwtRequests };
}

export async function runIntrospectionBench(): Promise<IntrospectionResults> {
  const scales: Scale[] = [];
  const koaPort = await freePort();
  let koa: Child | undefined;
  try {
    for (const target of SCALES) scales.push(await prepareScale(target));
    koa = await startChild(['--import', 'tsx', 'bench/empty-koa.ts'], { PORT: String(koaPort) }, koaPort);
    const [koaRuns, ...scaleRuns] = await measureRounds([
      // The baseline answers the same requests (it ignores them), on the same connection count.
      { name: 'introspect/empty-koa', url: koa.url, requests: scales[0]!.requests, pid: koa.pid },
      ...scales.map((s) => ({ name: `introspect/latchkey ${s.target}`, url: s.node.url, requests: s.requests, pid: s.node.pid })),
      { name: 'introspect/latchkey jwt', url: scales[0]!.node.url, requests: scales[0]!.jwtRequests, pid: scales[0]!.node.pid },
    ]);
    const jwtRuns = scaleRuns.pop()!;
    const jwtRatio = roundRatios(jwtRuns, koaRuns!);
    const results: ScaleResult[] = scales.map((s, i) => {
      const { ratio, rounds } = roundRatios(scaleRuns[i]!, koaRuns!);
      return {
        stored_keys: s.seeded.total,
        seed_rows: s.seeded.rows,
        seed_s: s.seeded.seconds,
        table_bytes: s.seeded.bytes,
        table_mib: Math.round((s.seeded.bytes / 2 ** 20) * 10) / 10,
        figures: medianRun(scaleRuns[i]!),
        ratio_vs_empty_koa: ratio,
        ratio_rounds: rounds,
        rss_mib_after: rssMiB(s.node.pid),
      };
    });
    const [smallRuns, largeRuns] = [scaleRuns[0]!, scaleRuns.at(-1)!];
    const p50Change = scaleRuns.length > 1 ? Math.round(median(largeRuns.map((run, i) => run.p50_ms / smallRuns[i]!.p50_ms - 1)) * 1000) / 1000 : null;
    const rss = results.at(-1)?.rss_mib_after ?? null;
    return {
      empty_koa: medianRun(koaRuns!),
      jwt: {
        tokens_in_rotation: scales[0]!.jwtRequests.length,
        figures: medianRun(jwtRuns),
        ratio_vs_empty_koa: jwtRatio.ratio,
        ratio_rounds: jwtRatio.rounds,
        bar_ratio: JWT_BAR,
        pass: jwtRatio.ratio >= JWT_BAR,
      },
      rounds: koaRuns!.length,
      real_keys_in_rotation: scales[0]!.requests.length,
      scales: results,
      bar_ratio: 0.5,
      ratio_pass: results.every((s) => s.ratio_vs_empty_koa >= 0.5),
      p50_change: p50Change,
      p50_bar: 0.1,
      p50_pass: p50Change === null ? null : p50Change <= 0.1,
      rss_bar_mib: 300,
      rss_pass: rss === null ? null : rss < 300,
    };
  } finally {
    await koa?.stop();
    for (const s of scales) {
      await s.node.stop();
      await s.db.drop();
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log(JSON.stringify(await runIntrospectionBench(), null, 2));
  } finally {
    await cleanupAll();
  }
}
