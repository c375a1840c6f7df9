import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createThrottle, THROTTLE_RULES, type Throttle } from '../../src/limits/throttle.ts';
import { redisSkip, TEST_REDIS_URL } from '../helpers/redis.ts';

const IP = '203.0.113.7';
const OTHER_IP = '198.51.100.9';

async function failTimes(throttle: Throttle, times: number, ...args: Parameters<Throttle['fail']>) {
  for (let i = 0; i < times; i++) await throttle.fail(...args);
}

function assertRefused(verdict: Awaited<ReturnType<Throttle['check']>>, maxSeconds: number) {
  assert.equal(verdict.allowed, false, 'expected a refusal');
  if (verdict.allowed) return;
  assert.ok(verdict.retryAfterSeconds > 0 && verdict.retryAfterSeconds <= maxSeconds, `retryAfterSeconds ${verdict.retryAfterSeconds}`);
}

describe('throttle in memory', () => {
  it('blocks a pair after 5 failures for at most 15 minutes', async () => {
    const throttle = createThrottle();
    await failTimes(throttle, 4, 'sign_in', 'alice@example.com', IP);
    assert.deepEqual(await throttle.check('sign_in', 'alice@example.com', IP), { allowed: true });
    await throttle.fail('sign_in', 'alice@example.com', IP);
    assertRefused(await throttle.check('sign_in', 'alice@example.com', IP), 900);
    // The subject is an email: case and spaces do not make a new counter.
    assertRefused(await throttle.check('sign_in', '  Alice@Example.COM ', IP), 900);
  });

  it('lets another IP try the same account until the per-account limit', async () => {
    const throttle = createThrottle();
    await failTimes(throttle, 5, 'sign_in', 'alice@example.com', IP);
    assert.deepEqual(await throttle.check('sign_in', 'alice@example.com', OTHER_IP), { allowed: true });
    // 20 failures in the hour from many addresses: the account is slowed, briefly.
    for (let i = 0; i < 15; i++) {
      assert.deepEqual(await throttle.check('sign_in', 'alice@example.com', `192.0.2.${i}`), { allowed: true }, `try ${i}`);
      await throttle.fail('sign_in', 'alice@example.com', `192.0.2.${i}`);
    }
    assertRefused(await throttle.check('sign_in', 'alice@example.com', OTHER_IP), 5 * 60);
    // Someone else's account from those addresses is unaffected.
    assert.deepEqual(await throttle.check('sign_in', 'bob@example.com', OTHER_IP), { allowed: true });
  });

  it('clears the pair counter on success', async () => {
    const throttle = createThrottle();
    await failTimes(throttle, 4, 'sign_in', 'alice@example.com', IP);
    await throttle.succeed('sign_in', 'alice@example.com', IP);
    await failTimes(throttle, 4, 'sign_in', 'alice@example.com', IP);
    assert.deepEqual(await throttle.check('sign_in', 'alice@example.com', IP), { allowed: true });
    await throttle.fail('sign_in', 'alice@example.com', IP);
    assertRefused(await throttle.check('sign_in', 'alice@example.com', IP), 900);
  });

  it('blocks an IP that fails across 50 accounts for at most an hour', async () => {
    const throttle = createThrottle();
    for (let i = 0; i < 49; i++) await throttle.fail('sign_in', `user${i}@example.com`, IP);
    assert.deepEqual(await throttle.check('sign_in', 'new@example.com', IP), { allowed: true });
    await throttle.fail('sign_in', 'user49@example.com', IP);
    assertRefused(await throttle.check('sign_in', 'new@example.com', IP), 3600);
    assert.deepEqual(await throttle.check('sign_in', 'new@example.com', OTHER_IP), { allowed: true });
  });

  it('keeps kinds apart', async () => {
    const throttle = createThrottle();
    await failTimes(throttle, 5, 'mfa', 'alice@example.com', IP);
    assertRefused(await throttle.check('mfa', 'alice@example.com', IP), 900);
    assert.deepEqual(await throttle.check('sign_in', 'alice@example.com', IP), { allowed: true });
  });

  it('limits reset mails per email and per IP', async () => {
    const throttle = createThrottle();
    await failTimes(throttle, 5, 'reset', 'alice@example.com', IP);
    assertRefused(await throttle.check('reset', 'alice@example.com', OTHER_IP), 3600);
    for (let i = 0; i < 15; i++) await throttle.fail('reset', `user${i}@example.com`, OTHER_IP);
    assert.deepEqual(await throttle.check('reset', 'bob@example.com', OTHER_IP), { allowed: true });
    assert.equal((await throttle.check('reset', 'bob@example.com', IP)).allowed, true);
    await failTimes(throttle, 1, 'reset', 'carol@example.com', IP); // IP: 6 of 20
    for (let i = 0; i < 5; i++) await throttle.fail('reset', `dave${i}@example.com`, OTHER_IP); // OTHER_IP: 20 of 20
    assertRefused(await throttle.check('reset', 'bob@example.com', OTHER_IP), 3600);
  });

  it('documents one table of limits', () => {
    assert.deepEqual(
      THROTTLE_RULES.sign_in.map(({ scope, limit, windowSeconds, blockSeconds }) => [scope, limit, windowSeconds, blockSeconds]),
      [['pair', 5, 900, 900], ['ip', 50, 3600, 3600], ['subject', 20, 3600, 300]],
    );
  });
});

describe('throttle in Redis', { skip: await redisSkip() }, () => {
  const keyPrefix = `test:throttle:${randomBytes(6).toString('hex')}`;
  let redisA: Redis;
  let redisB: Redis;

  before(async () => {
    redisA = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    redisB = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    // Until a client is ready the throttle counts in memory, which is not what is tested here.
    await Promise.all([redisA.ping(), redisB.ping()]);
  });
  after(async () => {
    const keys = await redisA.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redisA.del(...keys);
    redisA.disconnect();
    redisB.disconnect();
  });

  it('shares failures between nodes and stores no email in clear', async () => {
    const nodeA = createThrottle({ redis: redisA, keyPrefix });
    const nodeB = createThrottle({ redis: redisB, keyPrefix });
    await failTimes(nodeA, 3, 'sign_in', 'alice@example.com', IP);
    await failTimes(nodeB, 2, 'sign_in', 'ALICE@example.com', IP);
    assertRefused(await nodeB.check('sign_in', 'alice@example.com', IP), 900);
    assertRefused(await nodeA.check('sign_in', 'alice@example.com', IP), 900);
    assert.deepEqual(await nodeA.check('sign_in', 'alice@example.com', OTHER_IP), { allowed: true });

    const keys = await redisA.keys(`${keyPrefix}*`);
    assert.ok(keys.length > 0);
    for (const key of keys) assert.doesNotMatch(key, /alice|example/i);
  });

  it('clears the shared pair counter on success', async () => {
    const nodeA = createThrottle({ redis: redisA, keyPrefix });
    const nodeB = createThrottle({ redis: redisB, keyPrefix });
    await failTimes(nodeA, 4, 'sign_in', 'bob@example.com', IP);
    await nodeB.succeed('sign_in', 'bob@example.com', IP);
    await nodeA.fail('sign_in', 'bob@example.com', IP);
    assert.deepEqual(await nodeA.check('sign_in', 'bob@example.com', IP), { allowed: true });
  });

  it('falls back to memory, still counting, when Redis is down', async () => {
    const down = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    down.on('error', () => {});
    const throttle = createThrottle({ redis: down, keyPrefix });
    await failTimes(throttle, 5, 'sign_in', 'carol@example.com', IP);
    assertRefused(await throttle.check('sign_in', 'carol@example.com', IP), 900);
    down.disconnect();
  });
});
