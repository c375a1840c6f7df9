// Token issuance: Latchkey on Postgres vs a bare oidc-provider 9 (in-memory adapter), both in
// child processes, POST /token client_credentials with client_secret_basic, measured in one run.
// Afterwards, every 200 must have its `token.issued` audit event committed.
import { pathToFileURL } from 'node:url';
import {
  BENCH_SECRET,
  basic,
  cleanupAll,
  createDatabase,
  freePort,
  latchkeyCli,
  CONNECTIONS,
  log,
  measureRounds,
  medianRun,
  postgresPids,
  roundRatios,
  rssMiB,
  SERVER_MALLOC_ARENA_MAX,
  startChild,
  withPg,
  type Child,
  type Figures,
  type LoadRequest,
  type Measured,
} from './lib.ts';

export interface TokenResults {
  /** The median round (by req/s) of each, with every round's req/s. */
  latchkey: Figures & { rounds_rps: number[] };
  bare: Figures & { rounds_rps: number[] };
  /** Median of the per-round ratios. */
  ratio_rps: number;
  ratio_rounds: number[];
  bar_rps_ratio: number;
  pass: boolean;
  latchkey_rss_mib: number | null;
  audit: {
    token_issued_rows: number;
    responses_200: number;
    jtis_seen: number;
    jtis_without_event: number;
    jtis_with_several_events: number;
    extra_rows: number;
    extra_rows_explained: string;
    pass: boolean;
  };
}

const jtiOf = (body: string): string | null => {
  try {
    const token = (JSON.parse(body) as { access_token?: string }).access_token;
    const payload = token?.split('.')[1];
    return payload ? ((JSON.parse(Buffer.from(payload, 'base64url').toString()) as { jti?: string }).jti ?? null) : null;
  } catch {
    return null;
  }
};

export async function runTokenBench(): Promise<TokenResults> {
  const db = await createDatabase('latchkey_bench_token');
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const env = { DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', LATCHKEY_SECRET: BENCH_SECRET, LATCHKEY_ISSUER: issuer, MALLOC_ARENA_MAX: SERVER_MALLOC_ARENA_MAX };
  try {
    log(`token: database ${db.name}; creating scope and client with the CLI`);
    await latchkeyCli(env, 'scope', 'create', 's', '--description', 'bench scope');
    const client = (await latchkeyCli(env, 'client', 'create', '--name', 'bench', '--scopes', 's')) as { client_id: string; client_secret: string };

    const latchkey = await startChild(['bin/latchkey.mjs', 'serve'], env, port, '/healthz');
    const jtis = new Map<string, number>();
    const tokenRequest = (id: string, secret: string, collect: boolean): LoadRequest => ({
      method: 'POST',
      path: '/token',
      headers: { authorization: basic(id, secret), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=s',
      ...(collect
        ? {
            onResponse: (status: number, body: string) => {
              if (status !== 200) return;
              const jti = jtiOf(body);
              if (jti) jtis.set(jti, (jtis.get(jti) ?? 0) + 1);
            },
          }
        : {}),
    });
    // One request by hand first, so a broken setup fails loudly rather than as 100% non-2xx.
    const probe = await fetch(`${latchkey.url}/token`, { method: 'POST', headers: tokenRequest(client.client_id, client.client_secret, false).headers, body: 'grant_type=client_credentials&scope=s' });
    const probeBody = await probe.text();
    if (probe.status !== 200) throw new Error(`Latchkey /token answered ${probe.status}: ${probeBody}`);
    const probeJti = jtiOf(probeBody);
    if (probeJti) jtis.set(probeJti, 1);

    // ---- Bare oidc-provider, same client id and secret, running beside Latchkey so that
    // the two are measured in alternating rounds.
    const barePort = await freePort();
    let bare: Child | undefined;
    let latchkeyRuns: Measured[];
    let bareRuns: Measured[];
    let rss: number | null;
    try {
      bare = await startChild(['--import', 'tsx', 'bench/bare-provider.ts'], {
        PORT: String(barePort),
        ISSUER: `http://127.0.0.1:${barePort}`,
        BENCH_CLIENT_ID: client.client_id,
        BENCH_CLIENT_SECRET: client.client_secret,
        BENCH_TTL_S: '600',
      }, barePort, '/.well-known/openid-configuration');
      const check = await fetch(`${bare.url}/token`, { method: 'POST', headers: tokenRequest(client.client_id, client.client_secret, false).headers, body: 'grant_type=client_credentials&scope=s' });
      if (check.status !== 200) throw new Error(`bare provider /token answered ${check.status}: ${await check.text()}`);
      [latchkeyRuns, bareRuns] = (await measureRounds([
        { name: 'token/latchkey', url: latchkey.url, requests: [tokenRequest(client.client_id, client.client_secret, true)], pid: latchkey.pid, database: postgresPids },
        { name: 'token/bare-oidc-provider', url: bare.url, requests: [tokenRequest(client.client_id, client.client_secret, false)], pid: bare.pid },
      ])) as [Measured[], Measured[]];
      rss = rssMiB(latchkey.pid);
    } finally {
      await bare?.stop();
      // SIGTERM drains the audit writer before exit.
      await latchkey.stop();
    }

    // ---- Audit: one committed token.issued per 200 (matched by jti)
    const rows = await withPg(db.url, async (c) => {
      const result = await c.query<{ subject_id: string; n: string }>(`SELECT subject_id, count(*) AS n FROM audit_event WHERE type = 'token.issued' GROUP BY subject_id`);
      return new Map(result.rows.map((r) => [r.subject_id, Number(r.n)]));
    });
    const totalRows = [...rows.values()].reduce((a, b) => a + b, 0);
    const responses200 = 1 + latchkeyRuns.reduce((sum, run) => sum + run.ok + run.warmupOk, 0);
    let missing = 0;
    let several = 0;
    for (const jti of jtis.keys()) {
      const n = rows.get(jti) ?? 0;
      if (n === 0) missing++;
      if (n > 1) several++;
    }
    const extra = totalRows - jtis.size;
    const audit = {
      token_issued_rows: totalRows,
      responses_200: responses200,
      jtis_seen: jtis.size,
      jtis_without_event: missing,
      jtis_with_several_events: several,
      extra_rows: extra,
      extra_rows_explained: 'tokens issued for requests still in flight when a timed run stopped (at most one per connection per run)',
      pass: missing === 0 && several === 0 && jtis.size === responses200 && extra >= 0 && extra <= 2 * latchkeyRuns.length * CONNECTIONS,
    };
    log(`token: audit rows ${totalRows}, 200 responses ${responses200}, without event ${missing}, extra ${extra}`);

    const { ratio: r, rounds } = roundRatios(latchkeyRuns, bareRuns);
    return {
      latchkey: medianRun(latchkeyRuns),
      bare: medianRun(bareRuns),
      ratio_rps: r,
      ratio_rounds: rounds,
      bar_rps_ratio: 0.8,
      pass: r >= 0.8,
      latchkey_rss_mib: rss,
      audit,
    };
  } finally {
    await db.drop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log(JSON.stringify(await runTokenBench(), null, 2));
  } finally {
    await cleanupAll();
  }
}
