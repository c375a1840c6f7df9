import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { createApiKey } from '../../src/credentials/api-keys.ts';
import { closeDeps, createLogger, openDeps } from '../../src/deps.ts';
import { cliJson } from '../helpers/cli.ts';
import { testDatabase } from '../helpers/database.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { introspectAs } from '../helpers/oauth.ts';
import { cuttableProxy, type CuttableProxy } from '../helpers/proxy.ts';
import { redisSkip, TEST_REDIS_URL, withRedis } from '../helpers/redis.ts';
import { eventually, freePort, rememberSecret, startTestServer, untilCached, type TestServer } from '../helpers/server.ts';

const API = 'https://api.example.test';
const skip = await redisSkip();
// Its own deployment (the Redis channel follows the secret): other test files' messages stay out.
const SECRET = `redis-invalidation-${randomBytes(12).toString('hex')}`;

let server: TestServer;
let caller: CreatedClient;
let scope: string;

const introspect = (token: string) => introspectAs(`${server.url}/introspect`, caller, token);

async function newKey() {
  const key = await cliJson<{ id: string; key: string }>(server, ['key', 'create', '--name', 'k', '--scopes', scope, '--audience', API]);
  rememberSecret(key.key);
  return key;
}

/** Another node's revocation: the row change, then its announcement on the deployment's channel. */
async function revokeElsewhere(keyId: string) {
  await server.deps.prisma.apiKey.update({ where: { id: keyId }, data: { revokedAt: new Date() } });
  await withRedis((redis) => redis.publish(`latchkey_invalidate:${server.deps.keyring.deploymentId}`, `key:${keyId}`));
}

/** A new key, introspected once so that this node has it cached. */
async function cachedActiveKey(when: string) {
  const key = await newKey();
  assert.equal((await untilCached(server, `key:${key.id}`, () => introspect(key.key), when)).body.active, true);
  return key;
}

const expectInactiveWithin = (ms: number, token: string, message: string) => eventually(() => introspect(token), (answer) => answer.body.active === false, ms, message);

// A restart of Redis is a cut proxy; a network partition a frozen one.
const redisProxy = () => cuttableProxy(TEST_REDIS_URL, 6379);

describe('cache invalidation over Redis pub/sub (REDIS_URL)', { skip }, () => {
  let redis: CuttableProxy;
  before(async () => {
    redis = await redisProxy();
    server = await startTestServer({ env: { REDIS_URL: redis.url, LATCHKEY_SECRET: SECRET } });
    scope = await createScope(server);
    caller = await createClient(server, { scopes: [scope], audiences: [API] });
  });
  after(async () => {
    await server?.close();
    await redis?.close();
  });

  it('caches lookups, and drops one when another node announces a change', async () => {
    const key = await cachedActiveKey('while subscribed');
    await revokeElsewhere(key.id);
    await expectInactiveWithin(1_000, key.key, 'still active 1 s after another node revoked the key');
  });

  it('survives losing Redis: nothing stale while it is gone, caching resumes after', async () => {
    const key = await cachedActiveKey('before Redis is lost');
    redis.cut();
    try {
      // Announced while this node cannot hear it, and cannot reconnect either.
      await revokeElsewhere(key.id);
      await expectInactiveWithin(1_000, key.key, 'still active 1 s after a revocation this node could not hear');
      assert.equal(server.deps.cache.peek(`key:${key.id}`), undefined, 'nothing is cached while unsubscribed');
    } finally {
      redis.restore();
    }

    // Caching resumes once the node hears Redis again.
    const second = await cachedActiveKey('after Redis came back');
    await revokeElsewhere(second.id);
    await expectInactiveWithin(1_000, second.key, 'the resubscribed node missed a revocation');
  });

  it('notices a connection that went silent (half-open), and stops trusting its cache', async () => {
    const key = await cachedActiveKey('before the partition');
    redis.freeze();
    try {
      await revokeElsewhere(key.id);
      // Heard by nobody here: only the heartbeat can end the cached answer.
      // Noticed within ~1 s (a ping every 500 ms, 500 ms to answer); 2 s leaves room for a busy box.
      await expectInactiveWithin(2_000, key.key, 'still active 2 s into a silent partition');
    } finally {
      redis.restore();
    }
  });

  it('makes a change even when Redis cannot hear of it, and logs that it could not announce it', async () => {
    const database = await testDatabase();
    const env = { LATCHKEY_SECRET: SECRET, LATCHKEY_DATA_DIR: database.dataDir, NODE_ENV: 'test', REDIS_URL: `redis://127.0.0.1:${await freePort()}`, ...(database.url ? { DATABASE_URL: database.url } : {}) };
    const lines: string[] = [];
    const deps = await openDeps(loadConfig(env), createLogger({ LOG_LEVEL: 'warn' }, { write: (line: string) => void lines.push(line) }));
    try {
      await deps.prisma.scope.create({ data: { name: 'read', description: 'read' } });
      const key = await createApiKey(deps, { name: 'k', scopes: ['read'] }, { type: 'cli' });
      rememberSecret(key.key);
      assert.equal(await deps.prisma.apiKey.count({ where: { id: key.id } }), 1, 'the key was created');
      const log = lines.join('');
      assert.match(log, /could not announce a credential change on Redis before its commit/);
      assert.match(log, /could not announce a committed credential change on Redis/);
      assert.ok(!log.includes(key.key.slice(16)), 'no secret in the log');
    } finally {
      await closeDeps(deps);
      await database.drop();
    }
  });
});
