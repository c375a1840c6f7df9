// A signed-in portal page under load — the key list of a team with 1,000 keys (DESIGN §4:
// p95 < 50 ms) — and the cost of a sign-in next to the argon2id verification inside it.
import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import { createAccount } from '../src/accounts/accounts.ts';
import { hashPassword } from '../src/accounts/passwords.ts';
import { startSession } from '../src/accounts/sessions.ts';
import { loadConfig } from '../src/config.ts';
import { closeDeps, createLogger, openDeps } from '../src/deps.ts';
import { cookieNames } from '../src/web/pages.ts';
import { BENCH_SECRET, createDatabase, freePort, log, measure, median, rssMiB, SERVER_MALLOC_ARENA_MAX, startChild, type Figures } from './lib.ts';

const KEYS = Number(process.env.BENCH_PORTAL_KEYS ?? 1000);
const PASSWORD = 'bench passphrase for the portal sign-in';

export interface PortalResults {
  keys_in_team: number;
  key_list: Figures;
  key_list_one_connection: Figures;
  key_list_p95_bar_ms: number;
  key_list_pass: boolean;
  /** Median of 20 sign-ins in a row (POST /portal/sign-in → 303). */
  sign_in_ms: number;
  argon2_verify_ms: number;
  rss_mib_after: number | null;
}

/** Same account, team and session layout as the portal makes, seeded with Latchkey's own code. */
async function seed(env: Record<string, string>): Promise<{ cookie: string }> {
  const deps = await openDeps(loadConfig(env), createLogger({ LOG_LEVEL: 'warn' }));
  try {
    const now = deps.now();
    const passwordHash = await hashPassword(PASSWORD);
    const { account, team } = await deps.prisma.$transaction((tx) => createAccount(tx, { email: 'bench@example.test', passwordHash, emailVerifiedAt: now, now }));
    await deps.prisma.scope.create({ data: { name: 'orders.read', description: 'Read orders' } });
    await deps.prisma.apiKey.createMany({
      data: Array.from({ length: KEYS }, (_, i) => ({
        id: randomBytes(6).toString('hex'),
        name: `key ${i}`,
        teamId: team.id,
        scopes: ['orders.read'],
        audiences: [env.LATCHKEY_ISSUER!],
        digest: randomBytes(32),
        createdAt: new Date(now.getTime() - i * 60_000),
        expiresAt: i % 3 === 0 ? null : new Date(now.getTime() + 30 * 86_400_000),
      })),
    });
    const { cookie } = await startSession(deps, { accountId: account.id, stage: 'full', teamId: team.id });
    return { cookie };
  } finally {
    await closeDeps(deps);
  }
}

/** The sign-in form's CSRF pair (anonymous cookie + token), read as a browser would. */
async function signInForm(url: string): Promise<{ cookie: string; token: string }> {
  const response = await fetch(`${url}/portal/sign-in`);
  const cookie = response.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
  const token = (await response.text()).match(/name="_csrf" value="([^"]+)"/)?.[1];
  if (!token) throw new Error('no CSRF token on the sign-in page');
  return { cookie, token };
}

export async function runPortalBench(): Promise<PortalResults> {
  const db = await createDatabase('latchkey_bench_portal');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { DATABASE_URL: db.url, LATCHKEY_SECRET: BENCH_SECRET, LATCHKEY_ISSUER: url, PORT: String(port), HOST: '127.0.0.1', MALLOC_ARENA_MAX: SERVER_MALLOC_ARENA_MAX };
  log(`portal: seeding a team with ${KEYS} keys`);
  const { cookie } = await seed(env);
  const child = await startChild(['bin/latchkey.mjs', 'serve'], env, port, '/healthz');
  try {
    const session = `${cookieNames(false).session}=${cookie}`;
    const check = await fetch(`${url}/portal/keys`, { headers: { cookie: session } });
    if (check.status !== 200) throw new Error(`the key list answered ${check.status}`);
    log('portal: key list');
    const request = [{ method: 'GET' as const, path: '/portal/keys', headers: { cookie: session } }];
    const keyList = await measure('portal key list', url, request, { pid: child.pid });
    // One person at a time: what a page view costs when the server is not saturated.
    const keyListAlone = await measure('portal key list, 1 connection', url, request, { pid: child.pid, connections: 1 });
    log('portal: sign-in');
    const form = await signInForm(url);
    const body = new URLSearchParams({ _csrf: form.token, email: 'bench@example.test', password: PASSWORD }).toString();
    // One at a time, as a person signs in: each starts a session row, and argon2id (19 MiB,
    // t=3) should dominate by design.
    const signIns: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const answer = await fetch(`${url}/portal/sign-in`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: form.cookie, origin: url, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      await answer.arrayBuffer();
      if (answer.status !== 303) throw new Error(`sign-in answered ${answer.status}`);
      signIns.push(performance.now() - started);
    }
    const hash = await hashPassword(PASSWORD);
    const times: number[] = [];
    for (let i = 0; i < 15; i++) {
      const started = performance.now();
      await argon2.verify(hash, PASSWORD);
      times.push(performance.now() - started);
    }
    return {
      keys_in_team: KEYS,
      key_list: keyList,
      key_list_one_connection: keyListAlone,
      key_list_p95_bar_ms: 50,
      key_list_pass: keyList.p95_ms < 50,
      sign_in_ms: Math.round(median(signIns) * 10) / 10,
      argon2_verify_ms: Math.round(median(times) * 10) / 10,
      rss_mib_after: rssMiB(child.pid),
    };
  } finally {
    await child.stop();
    await db.drop();
  }
}
