// Shared helpers for the benchmarks: child processes, throwaway databases, autocannon runs.
// Everything here targets 127.0.0.1 only and is bounded in time.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createHistogram } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { withPg } from '../test/helpers/database.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
export const WARMUP_S = Number(process.env.BENCH_WARMUP ?? 2);
export const DURATION_S = Number(process.env.BENCH_DURATION ?? 9);
// Each target is measured this many times, alternating with its baseline (see measureRounds).
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
// The allocator setting `npm start` and the Docker image run Latchkey with: glibc's per-thread
// arenas otherwise hold on to tens of MiB that a node never needs again.
export const SERVER_MALLOC_ARENA_MAX = '2';

// Any value of 32+ characters: the bench databases are throwaway.
export const BENCH_SECRET = 'bench-secret-not-for-production-0123456789abcdef';

export const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

// ---------------------------------------------------------------------------------------------
// Throwaway Postgres databases

export const dbUrl = (name: string) => {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
};

export { withPg };

export async function createDatabase(prefix: string): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}`;
  await withPg(PG_ADMIN_URL, (c) => c.query(`CREATE DATABASE "${name}"`));
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    await withPg(PG_ADMIN_URL, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  };
  cleanups.push(drop);
  return { name, url: dbUrl(name), drop };
}

// ---------------------------------------------------------------------------------------------
// Child processes (each server gets its own process, hence its own core, like a deployment)

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void>)[] = [];

/** Kills every child still running and drops every database still there. */
export async function cleanupAll(): Promise<void> {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((err) => log(`cleanup failed: ${(err as Error).message}`));
}
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Child {
  pid: number;
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `node args...` with env, waits until `readyPath` answers (any HTTP status). */
export async function startChild(args: string[], env: NodeJS.ProcessEnv, port: number, readyPath = '/', timeoutMs = 30_000): Promise<Child> {
  // BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") goes to every server
  // under test and baseline, for profiling them under load; NODE_OPTIONS refuses --cpu-prof.
  const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...extra, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      children.delete(child);
      resolve();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`${args.join(' ')} exited before it was ready:\n${output}`);
    try {
      await fetch(`${url}${readyPath}`, { signal: AbortSignal.timeout(1_000) });
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${args.join(' ')} not ready after ${timeoutMs} ms:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    pid: child.pid!,
    url,
    output: () => output,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** Runs `node args...` to completion (bounded), returning stdout; throws with stderr on failure. */
export async function runNode(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<string> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  children.delete(child);
  if (code !== 0) throw new Error(`node ${args.join(' ')} exited ${code}:\n${stderr}`);
  return stdout;
}

/** Latchkey's CLI with --json, parsed. */
export async function latchkeyCli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<Record<string, unknown>> {
  const out = await runNode(['bin/latchkey.mjs', ...args, '--json'], env);
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

/** CPU time (user + system, all threads) a process has used so far, from /proc (ms). */
export function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
const CLOCK_TICKS = 100;

/**
 * Every process named postgres on this machine (postmaster, backends, WAL writer…: the bench's
 * database server, and any other cluster): where they share the cores with the server under
 * test, their work per request is part of the cost.
 */
export function postgresPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres') pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** CPU time of a set of processes by pid (ms); a process gone since is absent. */
function cpuByPid(pids: number[]): Map<number, number> {
  const used = new Map<number, number>();
  for (const pid of pids) {
    const ms = cpuMs(pid);
    if (ms !== null) used.set(pid, ms);
  }
  return used;
}

/** What processes used between two readings: those present at both, plus all of those that started since. */
function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

/** Resident set size of a process, from /proc (MiB). */
export function rssMiB(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round((Number(match[1]) / 1024) * 10) / 10 : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Load generation

export interface LoadRequest {
  method: 'POST' | 'GET';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  onResponse?: (status: number, body: string) => void;
}

export interface Figures {
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p95_ms: number;
  p99_ms: number;
  mean_ms: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  duration_s: number;
  connections: number;
  /** Server CPU (user + system) per 2xx response during the measured run, and its share of one core. */
  server_cpu_us_per_req: number | null;
  server_cpu_cores: number | null;
  /** CPU of the database processes per 2xx response (only where measured: the token bench). */
  database_cpu_us_per_req?: number | null;
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

async function cannon(url: string, requests: LoadRequest[], seconds: number, connections: number) {
  // Latencies are recorded here in microseconds: autocannon's own histogram has 1 ms resolution,
  // too coarse for sub-millisecond endpoints.
  const histogram = createHistogram();
  const instance = autocannon({
    url,
    connections,
    duration: seconds,
    timeout: 10,
    requests: requests.map((r) => ({
      method: r.method,
      path: r.path,
      headers: r.headers,
      body: r.body,
      ...(r.onResponse ? { onResponse: (status: number, body: string) => r.onResponse!(status, body) } : {}),
    })),
  });
  instance.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) => {
    if (status >= 200 && status < 300) histogram.record(Math.max(1, Math.round(responseTime * 1000)));
  });
  const result = await instance;
  return { result, histogram };
}

/**
 * A warm-up run, then the measured run on fresh connections. Requests are cycled in order on
 * each connection (autocannon builds them once, so rotating bodies cost nothing per request).
 */
export async function measure(name: string, url: string, requests: LoadRequest[], options: { connections?: number; warmup?: number; duration?: number; pid?: number; database?: () => number[] } = {}): Promise<Figures & { warmupOk: number; warmupNon2xx: number }> {
  const connections = options.connections ?? CONNECTIONS;
  const warmupSeconds = options.warmup ?? WARMUP_S;
  const seconds = options.duration ?? DURATION_S;
  log(`${name}: warm-up ${warmupSeconds}s`);
  const warm = await cannon(url, requests, warmupSeconds, connections);
  log(`${name}: measuring ${seconds}s with ${connections} connections`);
  const cpuBefore = options.pid ? cpuMs(options.pid) : null;
  const databaseBefore = cpuByPid(options.database?.() ?? []);
  const { result, histogram } = await cannon(url, requests, seconds, connections);
  const cpuAfter = options.pid ? cpuMs(options.pid) : null;
  // A process that ended during the run (rare: backends live as long as their pooled connections) is not counted.
  const databaseCpu = options.database ? cpuBetween(databaseBefore, cpuByPid(options.database())) : 0;
  const cpu = cpuBefore !== null && cpuAfter !== null ? cpuAfter - cpuBefore : null;
  const us = (p: number) => round(histogram.percentile(p) / 1000, 3);
  const figures = {
    rps: Math.round(result['2xx'] / result.duration),
    p50_ms: us(50),
    p90_ms: us(90),
    p95_ms: us(95),
    p99_ms: us(99),
    mean_ms: round(histogram.mean / 1000, 3),
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    duration_s: result.duration,
    connections,
    server_cpu_us_per_req: cpu === null || result['2xx'] === 0 ? null : Math.round((cpu * 1000) / result['2xx']),
    server_cpu_cores: cpu === null ? null : round(cpu / 1000 / result.duration, 2),
    ...(options.database ? { database_cpu_us_per_req: result['2xx'] === 0 ? null : Math.round((databaseCpu * 1000) / result['2xx']) } : {}),
    warmupOk: warm.result['2xx'],
    warmupNon2xx: warm.result.non2xx,
  };
  log(`${name}: ${figures.rps} req/s, p50 ${figures.p50_ms} ms, p99 ${figures.p99_ms} ms, non-2xx ${figures.non2xx}, errors ${figures.errors}${figures.server_cpu_us_per_req === null ? '' : `, server CPU ${figures.server_cpu_us_per_req} µs/req (${figures.server_cpu_cores} cores)`}${figures.database_cpu_us_per_req == null ? '' : `, database CPU ${figures.database_cpu_us_per_req} µs/req`}`);
  return figures;
}

export interface Target {
  name: string;
  url: string;
  requests: LoadRequest[];
  pid?: number;
  /** The database processes whose CPU per request is reported beside the server's. */
  database?: () => number[];
}

export type Measured = Awaited<ReturnType<typeof measure>>;

/**
 * Measures every target once per round, in turn, for `rounds` rounds. On a shared 2-core box
 * the speed drifts by tens of percent within a minute: alternating puts each baseline next to
 * what it is compared with, and the median of rounds discards a round that drift spoiled.
 */
export async function measureRounds(targets: Target[], rounds = ROUNDS): Promise<Measured[][]> {
  const runs: Measured[][] = targets.map(() => []);
  for (let round = 1; round <= rounds; round++) {
    for (const [i, target] of targets.entries()) {
      runs[i]!.push(await measure(`${target.name} (round ${round}/${rounds})`, target.url, target.requests, { pid: target.pid, database: target.database }));
    }
  }
  return runs;
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** The round with the median request rate stands for a target (its latencies come from one real run). */
export function medianRun(runs: Measured[]): Figures & { rounds_rps: number[] } {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  const { warmupOk: _w, warmupNon2xx: _n, ...figures } = sorted[(sorted.length - 1) >> 1]!;
  return { ...figures, rounds_rps: runs.map((r) => r.rps) };
}

/** Per-round ratios of a target's rate to its baseline's in the same round, and their median. */
export function roundRatios(target: Measured[], baseline: Measured[]): { ratio: number; rounds: number[] } {
  const rounds = target.map((run, i) => ratio(run.rps, baseline[i]!.rps));
  return { ratio: Math.round(median(rounds) * 1000) / 1000, rounds };
}

export const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

export const ratio = (a: number, b: number) => (b === 0 ? 0 : Math.round((a / b) * 1000) / 1000);
