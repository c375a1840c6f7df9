// `npm run bench`: token issuance and API-key introspection, each against its baseline, and a
// signed-in portal page; all
// measured in this one run on this machine (ratios only mean something within one run).
// Prints a summary table and writes bench/results.json.
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { runAuditBench, type AuditResults } from './audit.ts';
import { runIntrospectionBench, type IntrospectionResults } from './introspection.ts';
import { runPortalBench, type PortalResults } from './portal.ts';
import { CONNECTIONS, DURATION_S, ROUNDS, WARMUP_S, cleanupAll, log, type Figures } from './lib.ts';
import { runTokenBench, type TokenResults } from './token.ts';
import { runVerifyBench, type VerifyResults } from './verify.ts';

// Everything is bounded: a stuck run is killed, its children and databases cleaned up.
const LIMIT_MS = Number(process.env.BENCH_TIME_LIMIT_S ?? 600) * 1000;
const watchdog = setTimeout(() => {
  log(`time limit of ${LIMIT_MS / 1000} s reached, giving up`);
  void cleanupAll().finally(() => process.exit(2));
}, LIMIT_MS);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void cleanupAll().finally(() => process.exit(130)));
}

const verdict = (pass: boolean | null) => (pass === null ? 'n/a' : pass ? 'PASS' : 'MISS');
const ms = (n: number) => n.toFixed(2);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}

function summary(token: TokenResults | null, intro: IntrospectionResults | null, portal: PortalResults | null, verify: VerifyResults | null, audit: AuditResults | null = null): string {
  const out: string[] = [];
  out.push(`Latchkey bench — ${new Date().toISOString()} — node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model.trim()}), ${CONNECTIONS} connections, ${WARMUP_S}s warm-up + ${DURATION_S}s measured, ${ROUNDS} alternating rounds (medians shown)`);
  out.push('');
  const rows: string[][] = [['target', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'server CPU µs/req', 'server cores']];
  const row = (name: string, f: Figures) => [name, String(f.rps), ms(f.p50_ms), ms(f.p99_ms), String(f.non2xx), String(f.errors), String(f.server_cpu_us_per_req ?? '-'), String(f.server_cpu_cores ?? '-')];
  if (token) {
    rows.push(row('token: bare oidc-provider (in-memory)', token.bare));
    rows.push(row('token: Latchkey (Postgres, audited)', token.latchkey));
  }
  if (intro) {
    rows.push(row('introspect: empty koa handler', intro.empty_koa));
    for (const s of intro.scales) {
      rows.push(row(`introspect: Latchkey, ${s.stored_keys.toLocaleString('en')} keys`, s.figures));
    }
    if (intro.jwt) rows.push(row('introspect: Latchkey, JWT access tokens', intro.jwt.figures));
  }
  if (verify) {
    rows.push(row('verify: empty koa handler', verify.empty_koa));
    for (const t of verify.targets) rows.push(row(`verify: Latchkey, ${t.counters} counters`, t.figures));
  }
  out.push(table(rows));
  out.push('');
  const bars: string[][] = [['bar', 'measured', 'target', 'verdict']];
  if (token) {
    bars.push(['token req/s, Latchkey / bare', `${token.ratio_rps.toFixed(3)}x (rounds ${token.ratio_rounds.map((r) => r.toFixed(2)).join(', ')})`, '>= 0.8x', verdict(token.pass)]);
    const cpu = (f: Figures) => f.server_cpu_us_per_req ?? '-';
    // On one machine the database's work per token shares the cores with both servers under test.
    bars.push(['token CPU per token (the median round)', `Latchkey ${cpu(token.latchkey)} µs + all postgres processes ${token.latchkey.database_cpu_us_per_req ?? '-'} µs; bare ${cpu(token.bare)} µs`, 'info', 'n/a']);
    // DESIGN §4: a node stays under 300 MiB resident, whatever it serves.
    if (token.latchkey_rss_mib !== null) bars.push(['Latchkey RSS after the token run', `${token.latchkey_rss_mib} MiB`, '< 300 MiB', verdict(token.latchkey_rss_mib < 300)]);
    const a = token.audit;
    bars.push(['token.issued events vs 200s (by jti)', `${a.token_issued_rows} rows / ${a.responses_200} 200s, ${a.jtis_without_event} missing, +${a.extra_rows} in flight`, 'none missing', verdict(a.pass)]);
  }
  if (intro) {
    for (const s of intro.scales) {
      const rounds = s.ratio_rounds.map((r) => r.toFixed(2)).join(', ');
      bars.push([`introspect req/s at ${s.stored_keys.toLocaleString('en')} keys / empty koa`, `${s.ratio_vs_empty_koa.toFixed(3)}x (rounds ${rounds})`, '>= 0.5x', verdict(s.ratio_vs_empty_koa >= intro.bar_ratio)]);
    }
    if (intro.jwt) {
      const j = intro.jwt;
      bars.push(['introspect req/s, JWT access tokens / empty koa', `${j.ratio_vs_empty_koa.toFixed(3)}x (rounds ${j.ratio_rounds.map((r) => r.toFixed(2)).join(', ')})`, `>= ${j.bar_ratio}x`, verdict(j.pass)]);
    }
    if (intro.p50_change !== null) {
      const [a, b] = [intro.scales[0]!, intro.scales.at(-1)!];
      const change = `${intro.p50_change >= 0 ? '+' : ''}${(intro.p50_change * 100).toFixed(1)}%`;
      bars.push([`introspect p50 ${b.stored_keys.toLocaleString('en')} vs ${a.stored_keys.toLocaleString('en')} keys`, `${ms(b.figures.p50_ms)} vs ${ms(a.figures.p50_ms)} ms (median of rounds ${change})`, '<= +10%', verdict(intro.p50_pass)]);
    }
    const large = intro.scales.at(-1);
    if (large) bars.push([`Latchkey RSS after ${large.stored_keys.toLocaleString('en')}-key run`, `${large.rss_mib_after} MiB`, '< 300 MiB', verdict(intro.rss_pass)]);
  }
  if (verify) {
    for (const t of verify.targets) {
      const rounds = t.ratio_rounds.map((r) => r.toFixed(2)).join(', ');
      bars.push([`verify req/s (${t.counters} counters) / empty koa, p99`, `${t.ratio_vs_empty_koa.toFixed(3)}x (rounds ${rounds}), p99 ${ms(t.figures.p99_ms)} ms`, `>= ${verify.bar_ratio}x, p99 < ${verify.bar_p99_ms} ms`, verdict(t.pass)]);
    }
  }
  if (portal) {
    const k = portal.key_list;
    const one = portal.key_list_one_connection;
    bars.push([`portal key list (${portal.keys_in_team.toLocaleString('en')} keys), p95`, `${ms(k.p95_ms)} ms (p50 ${ms(k.p50_ms)}, p99 ${ms(k.p99_ms)}, ${k.rps} req/s)`, `< ${portal.key_list_p95_bar_ms} ms`, verdict(portal.key_list_pass)]);
    bars.push(['portal key list, 1 connection, p95', `${ms(one.p95_ms)} ms (p50 ${ms(one.p50_ms)}, ${one.rps} req/s, ${one.server_cpu_us_per_req ?? '-'} µs CPU/req)`, 'info', 'n/a']);
    bars.push(['portal sign-in, median of 20 / argon2id verify', `${portal.sign_in_ms} ms / ${portal.argon2_verify_ms} ms`, 'argon2 dominates', 'n/a']);
  }
  if (audit) {
    for (const q of audit.queries) {
      bars.push([`audit viewer at ${audit.events.toLocaleString('en')} events: ${q.name}`, `${ms(q.median_ms)} ms (p95 ${ms(q.p95_ms)}, ${q.rows} rows)`, `< ${audit.bar_ms} ms`, verdict(q.pass)]);
    }
    for (const e of audit.export) bars.push([`audit export ${e.format}`, `${e.events_per_s.toLocaleString('en')} events/s (${e.events.toLocaleString('en')} in ${e.seconds} s)`, 'info', 'n/a']);
  }
  out.push(table(bars));
  if (audit) {
    out.push('');
    out.push(`audit seeding: ${audit.events.toLocaleString('en')} events in ${audit.seed_s} s + indexes ${audit.index_s} s → table ${audit.table_mib} MiB, indexes ${audit.indexes_mib} MiB`);
  }
  if (intro) {
    out.push('');
    out.push(
      `Latchkey RSS after each run: ${[...(token ? [`token ${token.latchkey_rss_mib} MiB`] : []), ...intro.scales.map((s) => `${s.stored_keys.toLocaleString('en')} keys ${s.rss_mib_after} MiB`)].join(', ')}`,
    );
    out.push(
      `seeding: ${intro.scales.map((s) => `${s.seed_rows.toLocaleString('en')} rows in ${s.seed_s} s → api_key ${s.table_mib} MiB (${s.stored_keys.toLocaleString('en')} keys)`).join('; ')}; ${intro.real_keys_in_rotation} real keys introspected in rotation`,
    );
  }
  return out.join('\n');
}

// Other work on the box skews every figure (ratios less so): say how busy it was.
// BENCH_ONLY=portal (or token, introspection, verify, audit, comma-separated) runs a subset.
const ONLY = new Set((process.env.BENCH_ONLY ?? 'token,introspection,verify,portal,audit').split(','));
const loadBefore = loadavg()[0]!;
let token: TokenResults | null = null;
let intro: IntrospectionResults | null = null;
let portal: PortalResults | null = null;
let verify: VerifyResults | null = null;
let audit: AuditResults | null = null;
const failures: string[] = [];
try {
  if (ONLY.has('token')) try {
    token = await runTokenBench();
  } catch (error) {
    failures.push(`token bench failed: ${(error as Error).stack ?? error}`);
  }
  if (ONLY.has('introspection')) try {
    intro = await runIntrospectionBench();
  } catch (error) {
    failures.push(`introspection bench failed: ${(error as Error).stack ?? error}`);
  }
  if (ONLY.has('verify')) try {
    verify = await runVerifyBench();
  } catch (error) {
    failures.push(`verify bench failed: ${(error as Error).stack ?? error}`);
  }
  if (ONLY.has('portal')) try {
    portal = await runPortalBench();
  } catch (error) {
    failures.push(`portal bench failed: ${(error as Error).stack ?? error}`);
  }
  if (ONLY.has('audit')) try {
    audit = await runAuditBench();
  } catch (error) {
    failures.push(`audit bench failed: ${(error as Error).stack ?? error}`);
  }
} finally {
  await cleanupAll();
}

const loadAfter = loadavg()[0]!;
const report = `${summary(token, intro, portal, verify, audit)}\n\nload average (1 min) before/after: ${loadBefore.toFixed(2)} / ${loadAfter.toFixed(2)} — the box has ${availableParallelism()} cores; the bench itself keeps ~2 busy`;
console.log(`\n${report}`);
for (const failure of failures) console.error(`\n${failure}`);
const results = {
  at: new Date().toISOString(),
  machine: { node: process.version, cores: availableParallelism(), cpu: cpus()[0]?.model.trim(), memory_mib: Math.round(totalmem() / 2 ** 20) },
  settings: { connections: CONNECTIONS, warmup_s: WARMUP_S, duration_s: DURATION_S, rounds: ROUNDS },
  load_average_1m: { before: loadBefore, after: loadAfter },
  token,
  introspection: intro,
  portal,
  verify,
  audit,
  failures,
};
writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
console.log('\nwritten: bench/results.json');
process.exitCode = failures.length > 0 ? 1 : 0;
