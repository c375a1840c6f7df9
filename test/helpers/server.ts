import { createServer } from 'node:net';
import { main } from '../../src/cli/main.ts';
import { loadConfig } from '../../src/config.ts';
import type { Deps } from '../../src/context.ts';
import { createLogger } from '../../src/deps.ts';
import { startServer } from '../../src/server.ts';
import { testDatabase, type TestDatabase } from './database.ts';

/** Fixed, so that a restart on the same database can decrypt its signing keys. */
export const TEST_SECRET = 'test-master-secret-0123456789-abcdefghijklmnop';

// Every log line written by every server this process started, in order: the "secrets never
// reach logs" checks read this, so nothing a test file did can escape them.
const processLog: string[] = [];
export const allLogs = (): string => processLog.join('');

// Every secret a test minted or received (client secrets, access tokens, passwords).
const minted = new Set<string>();
export const rememberSecret = (secret: string | undefined): void => {
  if (secret) minted.add(secret);
};
export const mintedSecrets = (): string[] => [...minted];

/** Throws if `logs` hold any secret this process minted, whole or its random part. */
export function assertNoSecretsIn(logs: string): void {
  for (const secret of minted) {
    if (logs.includes(secret)) throw new Error(`a log line contains ${secret.slice(0, 12)}…`);
    // Nor in parts: the random half of a client secret or API key, or a JWT's signature.
    const tail = secret.startsWith('lks_') ? secret.slice(4) : secret.startsWith('lk_') ? secret.slice(16) : secret.split('.').at(-1)!;
    if (tail.length >= 20 && logs.includes(tail)) throw new Error('a log line contains part of a secret');
  }
}

export interface TestServer {
  url: string;
  issuer: string;
  port: number;
  deps: Deps;
  database: TestDatabase;
  /** This server's log output (pino NDJSON). */
  logs(): string;
  /** The first-start admin and its set-password link, when this start created it. */
  firstAdmin?: { email: string; link: string; expiresAt: Date };
  close(): Promise<void>;
}

export interface TestServerOptions {
  /** Reuse a database (restart tests); the caller then drops it. Otherwise one is made and dropped at close. */
  database?: TestDatabase;
  /** Listen on this port (restart on the same issuer); default: a free one. */
  port?: number;
  env?: NodeJS.ProcessEnv;
}

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const database = options.database ?? (await testDatabase());
  const owned = options.database === undefined;
  const port = options.port ?? (await freePort());
  const issuer = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    PORT: String(port),
    HOST: '127.0.0.1',
    LATCHKEY_ISSUER: issuer,
    LATCHKEY_DATA_DIR: database.dataDir,
    LATCHKEY_SECRET: TEST_SECRET,
    LOG_LEVEL: 'info',
    NODE_ENV: 'test',
    ...(database.url ? { DATABASE_URL: database.url } : {}),
    ...options.env,
  };
  const lines: string[] = [];
  const destination = {
    write(line: string) {
      lines.push(line);
      processLog.push(line);
    },
  };
  const log = createLogger(loadConfig(env), destination);
  let running;
  let firstAdmin: TestServer['firstAdmin'];
  try {
    running = await startServer({
      env,
      log,
      commands: main,
      onFirstAdmin: (admin) => {
        rememberSecret(admin.link);
        firstAdmin = admin;
      },
    });
  } catch (error) {
    if (owned) await database.drop();
    throw error;
  }
  const { deps } = running;
  let closed: Promise<void> | undefined;
  return {
    url: running.url,
    issuer,
    port,
    deps,
    database,
    logs: () => lines.join(''),
    firstAdmin,
    close: () =>
      (closed ??= (async () => {
        await running.close();
        if (owned) await database.drop();
        // Every test file, whatever it exercised: nothing it minted reached this server's log.
        assertNoSecretsIn(lines.join(''));
      })()),
  };
}

export interface Discovery {
  issuer: string;
  token_endpoint: string;
  introspection_endpoint: string;
  revocation_endpoint: string;
  jwks_uri: string;
  [key: string]: unknown;
}

export async function discover(server: Pick<TestServer, 'url'>): Promise<Discovery> {
  const response = await fetch(`${server.url}/.well-known/oauth-authorization-server`);
  if (response.status !== 200) throw new Error(`discovery answered ${response.status}`);
  return (await response.json()) as Discovery;
}

/**
 * Repeats `request` until `done(answer)`, and returns that answer; fails with `message` once
 * `withinMs` have passed. The one polling loop of the tests (propagation, cache, listeners).
 */
export async function eventually<T>(request: () => Promise<T>, done: (answer: T) => boolean, withinMs: number, message: string): Promise<T> {
  const started = Date.now();
  for (;;) {
    const answer = await request();
    if (done(answer)) return answer;
    if (Date.now() - started >= withinMs) throw new Error(`${message} (after ${withinMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Repeats `request` until the server holds `cacheKey` in its cache, and returns the last
 * answer. A node caches nothing while its listener is down, and on a busy machine a heartbeat
 * may just have taken it down: caching resumes within moments, and this waits for that.
 */
export const untilCached = <T>(server: Pick<TestServer, 'deps'>, cacheKey: string, request: () => Promise<T>, message: string): Promise<T> =>
  eventually(request, () => server.deps.cache.peek(cacheKey) !== undefined, 10_000, `not cached: ${message}`);
