// POST /v1/keys/verify on a warm Latchkey node vs an empty koa handler, with limits and usage
// on (every key on a plan with a rate and a quota it never reaches): counters in memory, then
// shared through Redis (BENCH_REDIS_URL, default the local one; skipped when none answers).
// ~100 real keys are verified in rotation. Nodes and the baseline are measured in alternating
// rounds; each ratio is the median of per-round ratios.
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
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
  medianRun,
  roundRatios,
  rssMiB,
  SERVER_MALLOC_ARENA_MAX,
  startChild,
  type Child,
  type Figures,
  type LoadRequest,
} from './lib.ts';

const REAL_KEYS = Number(process.env.BENCH_REAL_KEYS ?? 100);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const BAR_RATIO = 0.5;
const BAR_P99_MS = 5;

export interface VerifyTarget {
  counters: 'memory' | 'redis';
  figures: Figures & { rounds_rps: number[] };
  ratio_vs_empty_koa: number;
  ratio_rounds: number[];
  rss_mib_after: number | null;
  pass: boolean;
}

export interface VerifyResults {
  empty_koa: Figures & { rounds_rps: number[] };
  rounds: number;
  real_keys_in_rotation: number;
  targets: VerifyTarget[];
  bar_ratio: number;
  bar_p99_ms: number;
}

async function redisAnswers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** Keys on the plan, made with Latchkey's own code (digests must match), in this process. */
async function createPlannedKeys(env: Record<string, string>, count: number): Promise<string[]> {
  const deps = await openDeps(loadConfig(env), createLogger({ LOG_LEVEL: 'warn' }));
  try {
    const keys: string[] = [];
    for (let i = 0; i < count; i++) keys.push((await createApiKey(deps, { name: `bench-${i}`, scopes: ['s'], plan: 'bench' }, { type: 'cli', id: 'bench' })).key);
    await deps.audit.idle();
    return keys;
  } finally {
    await closeDeps(deps);
  }
}

export async function runVerifyBench(): Promise<VerifyResults> {
  const db = await createDatabase('latchkey_bench_verify');
  const nodes: { counters: 'memory' | 'redis'; node: Child }[] = [];
  let koa: Child | undefined;
  try {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    // At the settings `npm start` uses (LOG_LEVEL info: one access log line per request).
    const env = { DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', LATCHKEY_SECRET: BENCH_SECRET, LATCHKEY_ISSUER: issuer, MALLOC_ARENA_MAX: SERVER_MALLOC_ARENA_MAX };
    log(`verify: database ${db.name}; scope, plan, gateway client and ${REAL_KEYS} keys on the plan`);
    await latchkeyCli(env, 'scope', 'create', 's', '--description', 'bench scope');
    // Counted on every check, never reached.
    await latchkeyCli(env, 'plan', 'create', 'bench', '--rate', '1000000000/1m', '--quota', '1000000000/month');
    const client = (await latchkeyCli(env, 'client', 'create', '--name', 'bench-gateway', '--scopes', 's')) as { client_id: string; client_secret: string };
    const keys = await createPlannedKeys(env, REAL_KEYS);
    const headers = { authorization: basic(client.client_id, client.client_secret), 'content-type': 'application/json' };
    const requests: LoadRequest[] = keys.map((key) => ({ method: 'POST', path: '/v1/keys/verify', headers, body: JSON.stringify({ key, scopes: ['s'] }) }));

    const variants: { counters: 'memory' | 'redis'; extra: Record<string, string> }[] = [{ counters: 'memory', extra: {} }];
    if (await redisAnswers(REDIS_URL)) variants.push({ counters: 'redis', extra: { REDIS_URL } });
    else log(`verify: no Redis at ${REDIS_URL}; the Redis variant is skipped`);
    for (const variant of variants) {
      const nodePort = variant.counters === 'memory' ? port : await freePort();
      const node = await startChild(['bin/latchkey.mjs', 'serve'], { ...env, ...variant.extra, PORT: String(nodePort) }, nodePort, '/healthz');
      const probe = await fetch(`${node.url}/v1/keys/verify`, { method: 'POST', headers, body: requests[0]!.body });
      const text = await probe.text();
      if (probe.status !== 200 || (JSON.parse(text) as { code?: string }).code !== 'VALID') throw new Error(`verify probe failed (${variant.counters}): ${probe.status} ${text}`);
      nodes.push({ counters: variant.counters, node });
    }
    const koaPort = await freePort();
    koa = await startChild(['--import', 'tsx', 'bench/empty-koa.ts'], { PORT: String(koaPort) }, koaPort);
    const [koaRuns, ...nodeRuns] = await measureRounds([
      { name: 'verify/empty-koa', url: koa.url, requests, pid: koa.pid },
      ...nodes.map((n) => ({ name: `verify/latchkey ${n.counters}`, url: n.node.url, requests, pid: n.node.pid })),
    ]);
    return {
      empty_koa: medianRun(koaRuns!),
      rounds: koaRuns!.length,
      real_keys_in_rotation: requests.length,
      targets: nodes.map((n, i) => {
        const { ratio, rounds } = roundRatios(nodeRuns[i]!, koaRuns!);
        const figures = medianRun(nodeRuns[i]!);
        return { counters: n.counters, figures, ratio_vs_empty_koa: ratio, ratio_rounds: rounds, rss_mib_after: rssMiB(n.node.pid), pass: ratio >= BAR_RATIO && figures.p99_ms < BAR_P99_MS };
      }),
      bar_ratio: BAR_RATIO,
      bar_p99_ms: BAR_P99_MS,
    };
  } finally {
    await koa?.stop();
    for (const n of nodes) await n.node.stop();
    await db.drop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log(JSON.stringify(await runVerifyBench(), null, 2));
  } finally {
    await cleanupAll();
  }
}
