import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.ts';
import { closeDeps, createLogger, openDeps } from '../../src/deps.ts';
import { Limiter } from '../../src/limits/limiter.ts';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';
import { cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { authAs, introspectAs, postForm } from '../helpers/oauth.ts';
import { spawnServer, type ServerProcess } from '../helpers/processes.ts';
import { redisSkip, TEST_REDIS_URL } from '../helpers/redis.ts';
import { discover, eventually, freePort, rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';
import { verifyAs } from '../helpers/verify.ts';

const API = 'https://api.example.test';

/** A Redis of the test's own, on its own port, without persistence: stopping it loses everything, as an outage would. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await eventually(() => probe.connect().then(() => probe.ping(), () => 'down'), (answer) => answer === 'PONG', 10_000, `redis-server on port ${port} did not start`);
  } finally {
    probe.disconnect();
  }
  return child;
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

// Two nodes on one database need Postgres (the embedded database has one owner).
const sharedSkip = process.env.DATABASE_URL ? await redisSkip() : 'needs DATABASE_URL (two nodes on one Postgres)';

describe('two server processes sharing Redis enforce one limit together', { skip: sharedSkip }, () => {
  let database: TestDatabase;
  const nodes: ServerProcess[] = [];
  // A deployment of its own: counters' Redis keys follow the secret.
  const env = { REDIS_URL: TEST_REDIS_URL, LATCHKEY_SECRET: `shared-limits-${randomBytes(12).toString('hex')}` };
  let gateway: { client_id: string; client_secret: string };
  let key: string;
  const LIMIT = 200;

  before(async () => {
    database = await testDatabase();
    // The operator's commands, run in this process on the deployment's database.
    const deps = await openDeps(loadConfig({ ...env, DATABASE_URL: database.url, NODE_ENV: 'test' }), createLogger({ LOG_LEVEL: 'warn' }));
    try {
      const latchkey = <T>(argv: string[]) => cliJson<T>({ deps }, argv);
      await latchkey(['scope', 'create', 'read', '--description', 'read']);
      // A 30-day window: a run never straddles two windows in practice.
      await latchkey(['plan', 'create', 'shared', '--rate', `${LIMIT}/30d`]);
      gateway = await latchkey(['client', 'create', '--name', 'gateway', '--scopes', 'read', '--audience', API]);
      rememberSecret(gateway.client_secret);
      key = (await latchkey<{ key: string }>(['key', 'create', '--name', 'k', '--scopes', 'read', '--audience', API, '--plan', 'shared'])).key;
      rememberSecret(key);
    } finally {
      await closeDeps(deps);
    }
    nodes.push(await spawnServer(database.url!, undefined, env));
    nodes.push(await spawnServer(database.url!, undefined, env));
  });
  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await database?.drop();
  });

  it(`${LIMIT * 2} checks spread over both nodes: ${LIMIT} accepted (within 5%)`, async () => {
    for (const node of nodes) assert.equal(node.child.exitCode, null, `a node exited: ${node.output()}`);
    const codes: string[] = [];
    // 20 at a time, alternating nodes, so both count concurrently.
    for (let batch = 0; batch < (LIMIT * 2) / 20; batch++) {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => verifyAs(nodes[i % 2]!.url, gateway, { key })));
      for (const answer of answers) {
        assert.equal(answer.status, 200, answer.text);
        codes.push(answer.body.code);
      }
    }
    const accepted = codes.filter((code) => code === 'VALID').length;
    assert.ok(Math.abs(accepted - LIMIT) <= LIMIT * 0.05, `accepted ${accepted} of ${codes.length}`);
    assert.equal(codes.filter((code) => code === 'RATE_LIMITED').length, codes.length - accepted);
    // Either node now refuses, and both report the same window.
    const [a, b] = await Promise.all(nodes.map((node) => verifyAs(node.url, gateway, { key })));
    assert.equal(a!.body.code, 'RATE_LIMITED');
    assert.equal(b!.body.code, 'RATE_LIMITED');
    assert.equal(a!.body.ratelimit.reset, b!.body.ratelimit.reset);
  });
});

describe('a Redis outage: verify fails closed, token issuance open, and /readyz, metrics and logs say so', { skip: await redisSkip() }, () => {
  let redisPort: number;
  let redis: ChildProcess;
  let server: TestServer;
  let gateway: CreatedClient;
  let app: CreatedClient;
  let key: string;

  before(async () => {
    redisPort = await freePort();
    redis = await startRedis(redisPort);
    server = await startTestServer({ env: { REDIS_URL: `redis://127.0.0.1:${redisPort}`, LATCHKEY_SECRET: `redis-outage-${randomBytes(12).toString('hex')}` } });
    const scope = await createScope(server);
    await cliJson(server, ['plan', 'create', 'outage', '--rate', '1000/30d']);
    gateway = await createClient(server, { scopes: [scope], audiences: [API] });
    app = await createClient(server, { scopes: [scope], audiences: [API], plan: 'outage' });
    key = (await cliJson<{ key: string }>(server, ['key', 'create', '--name', 'k', '--scopes', scope, '--audience', API, '--plan', 'outage'])).key;
    rememberSecret(key);
  });
  after(async () => {
    await server?.close();
    if (redis) await stopRedis(redis);
  });

  const readyz = async () => {
    const response = await fetch(`${server.url}/readyz`);
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };
  const redisUp = async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return Number(/^latchkey_redis_up (-?\d+)$/m.exec(text)?.[1]);
  };
  const token = async () => postForm((await discover(server)).token_endpoint, { grant_type: 'client_credentials' }, authAs(app));

  it('with Redis up: counted in Redis, /readyz says redis ok', async () => {
    const answer = await verifyAs(server.url, gateway, { key });
    assert.equal(answer.body.code, 'VALID');
    assert.equal(answer.body.ratelimit.remaining, 999);
    assert.deepEqual(await readyz(), { status: 200, body: { status: 'ok', database: 'ok', redis: 'ok' } });
    assert.equal(await redisUp(), 1);
    assert.equal((await token()).status, 200);
  });

  it('with Redis stopped: RATE_LIMITED (closed), tokens still issued (open), ready but redis unreachable, one log line', async () => {
    await stopRedis(redis);
    await eventually(readyz, (r) => r.body.redis === 'unreachable', 10_000, '/readyz never reported Redis unreachable');
    const started = Date.now();
    for (let i = 0; i < 5; i++) {
      const answer = await verifyAs(server.url, gateway, { key });
      assert.equal(answer.status, 200);
      assert.equal(answer.body.code, 'RATE_LIMITED');
      assert.equal(answer.body.valid, false);
      assert.equal(answer.body.ratelimit.remaining, 0);
      assert.ok(answer.body.ratelimit.reset > started && answer.body.ratelimit.reset <= Date.now() + 1_000);
    }
    assert.ok(Date.now() - started < 2_000, 'no check waited for Redis');
    const issued = await token();
    assert.equal(issued.status, 200, issued.text);
    const ready = await readyz();
    assert.equal(ready.status, 200, 'Redis is optional: the node stays ready');
    assert.equal(ready.body.redis, 'unreachable');
    assert.equal(await redisUp(), 0);
    const lines = server.logs().split('\n').filter((line) => line.includes('Redis unreachable for plan limits'));
    assert.equal(lines.length, 1, 'logged once per transition');
  });

  it('when Redis is back, verification recovers by itself', async () => {
    redis = await startRedis(redisPort);
    await eventually(() => verifyAs(server.url, gateway, { key }), (answer) => answer.body.code === 'VALID', 15_000, 'verify did not recover');
    assert.equal((await readyz()).body.redis, 'ok');
    assert.match(server.logs(), /Redis reachable again: plan limits are shared/);
  });
});

describe('introspection counting toward plans (LATCHKEY_INTROSPECTION_LIMITS=true) with Redis counters', { skip: await redisSkip() }, () => {
  let server: TestServer;
  let gateway: CreatedClient;
  let key: string;
  const LIMIT = 300;

  before(async () => {
    server = await startTestServer({ env: { REDIS_URL: TEST_REDIS_URL, LATCHKEY_INTROSPECTION_LIMITS: 'true', LATCHKEY_SECRET: `introspection-limits-${randomBytes(12).toString('hex')}` } });
    const scope = await createScope(server);
    await cliJson(server, ['plan', 'create', 'introspected', '--rate', `${LIMIT}/30d`]);
    gateway = await createClient(server, { scopes: [scope], audiences: [API] });
    key = (await cliJson<{ key: string }>(server, ['key', 'create', '--name', 'k', '--scopes', scope, '--audience', API, '--plan', 'introspected'])).key;
    rememberSecret(key);
  });
  after(async () => {
    await server?.close();
  });

  it(`the key is active for exactly its ${LIMIT} uses, then inactive, and verification counts on the same window`, async () => {
    const { introspection_endpoint } = await discover(server);
    const active: boolean[] = [];
    for (let i = 0; i < LIMIT + 5; i++) active.push((await introspectAs(introspection_endpoint, gateway, key)).body.active);
    assert.equal(active.filter(Boolean).length, LIMIT);
    assert.deepEqual(active.slice(LIMIT), [false, false, false, false, false]);
    const answer = await verifyAs(server.url, gateway, { key });
    assert.equal(answer.body.code, 'RATE_LIMITED');
    assert.equal(answer.body.ratelimit.remaining, 0);
  });
});

describe('the other failure policies, against a stopped Redis', { skip: await redisSkip() }, () => {
  let redis: Redis;
  before(async () => {
    const port = await freePort();
    const child = await startRedis(port);
    await stopRedis(child);
    redis = new Redis(port, '127.0.0.1', { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 500 });
    redis.on('error', () => {});
  });
  after(() => redis.disconnect());

  const log = { warn: () => {}, info: () => {} };
  const limits = { rate: { limit: 2, windowSeconds: 60 }, quota: null };
  const now = Date.parse('2027-01-01T00:00:30Z');

  it('open lets every check through, uncounted', async () => {
    const limiter = new Limiter({ redis, keyPrefix: 'test', log, redisState: () => 'unreachable' });
    for (let i = 0; i < 5; i++) assert.deepEqual(await limiter.check('verify', 'k:x', limits, 1, now, 'open'), { refused: null, retryAfterMs: 0 });
  });

  it("memory counts in this node's memory", async () => {
    const limiter = new Limiter({ redis, keyPrefix: 'test', log, redisState: () => 'unreachable' });
    const refused = [];
    for (let i = 0; i < 3; i++) refused.push((await limiter.check('verify', 'k:x', limits, 1, now, 'memory')).refused);
    assert.deepEqual(refused, [null, null, 'RATE_LIMITED']);
    assert.equal(limiter.rejections.verify, 1);
  });
});

describe('shared counters in Redis', { skip: await redisSkip() }, () => {
  let redis: Redis;
  before(async () => {
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    // The limiter never waits for a connection: have one first.
    await redis.ping();
  });
  after(() => redis.disconnect());

  it('a request the rate refuses gives its quota back; windows and periods follow the given clock', async () => {
    const limiter = new Limiter({ redis, keyPrefix: `test:${randomBytes(6).toString('hex')}`, log: { warn: () => {}, info: () => {} } });
    const limits = { rate: { limit: 1, windowSeconds: 60 }, quota: { limit: 5, period: 'day' as const } };
    const now = Date.parse('2027-06-30T23:58:30Z');
    const first = await limiter.check('verify', 'k:a', limits, 1, now, 'closed');
    assert.deepEqual(first, {
      refused: null,
      ratelimit: { limit: 1, remaining: 0, reset: Date.parse('2027-06-30T23:59:00Z') },
      quota: { limit: 5, remaining: 4, reset: Date.parse('2027-07-01T00:00:00Z') },
      retryAfterMs: 0,
    });
    for (let i = 0; i < 2; i++) {
      const refused = await limiter.check('verify', 'k:a', limits, 1, now + 1_000, 'closed');
      assert.equal(refused.refused, 'RATE_LIMITED');
      assert.equal(refused.retryAfterMs, 29_000);
      assert.equal(refused.quota, undefined);
    }
    const nextWindow = await limiter.check('verify', 'k:a', limits, 1, now + 30_000, 'closed');
    assert.equal(nextWindow.refused, null);
    assert.equal(nextWindow.quota?.remaining, 3, 'the two refused requests took no quota');
  });
});
