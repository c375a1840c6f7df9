import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createThrottle, THROTTLE_RULES, type Throttle, type ThrottleKind, type ThrottleVerdict } from '../../src/limits/throttle.ts';
import { redisSkip, TEST_REDIS_URL } from '../helpers/redis.ts';

const IP = '203.0.113.7';
const OTHER_IP = '198.51.100.9';

/** `times` tries that fail (each keeps its point); every one must have been allowed. */
async function failTimes(throttle: Throttle, times: number, kind: ThrottleKind, subject: string, ip: string) {
  for (let i = 0; i < times; i++) assert.deepEqual(await throttle.attempt(kind, subject, ip), { allowed: true }, `try ${i + 1}`);
}

function assertRefused(verdict: ThrottleVerdict, maxSeconds: number) {
  assert.equal(verdict.allowed, false, 'expected a refusal');
  if (verdict.allowed) return;
  assert.ok(verdict.retryAfterSeconds > 0 && verdict.retryAfterSeconds <= maxSeconds, `retryAfterSeconds ${verdict.retryAfterSeconds}`);
}

const allowedOf = (verdicts: ThrottleVerdict[]) => verdicts.filter((v) => v.allowed).length;

describe('throttle in memory', () => {
  it('of 40 concurrent tries for one pair, exactly 5 are allowed (consumed before the check)', async () => {
    const throttle = createThrottle();
    const verdicts = await Promise.all(Array.from({ length: 40 }, () => throttle.attempt('sign_in', 'alice@example.com', IP)));
    assert.equal(allowedOf(verdicts), 5);
    for (const verdict of verdicts.filter((v) => !v.allowed)) assertRefused(verdict, 900);
    // 60 concurrent second-factor codes: 5 evaluated.
    const codes = await Promise.all(Array.from({ length: 60 }, () => throttle.attempt('mfa', 'account-1', IP)));
    assert.equal(allowedOf(codes), 5);
  });

  it('refuses a pair after 5 tries for at most 15 minutes', async () => {
    const throttle = createThrottle();
    await failTimes(throttle, 5, 'sign_in', 'alice@example.com', IP);
    assertRefused(await throttle.attempt('sign_in', 'alice@example.com', IP), 900);
    // The subject is an email: case and spaces do not make a new counter.
    assertRefused(await throttle.attempt('sign_in', '  Alice@Example.COM ', IP), 900);
  });

  it('lets another IP try the same account until the per-account limit, which is short', async () => {
    const throttle = createThrottle();
    await failTimes(throttle, 5, 'sign_in', 'alice@example.com', IP);
    // Refused tries are not counted: hammering the closed pair does not use up the account's 20.
    for (let i = 0; i < 30; i++) assert.equal((await throttle.attempt('sign_in', 'alice@example.com', IP)).allowed, false);
    await failTimes(throttle, 1, 'sign_in', 'alice@example.com', OTHER_IP);
    for (let i = 0; i < 14; i++) await failTimes(throttle, 1, 'sign_in', 'alice@example.com', `192.0.2.${i}`);
    // 20 in the hour from many addresses: the account is slowed, briefly.
    assertRefused(await throttle.attempt('sign_in', 'alice@example.com', '192.0.2.200'), 5 * 60);
    // Someone else's account from those addresses is unaffected.
    assert.deepEqual(await throttle.attempt('sign_in', 'bob@example.com', OTHER_IP), { allowed: true });
  });

  it('a success clears the pair and gives the other points back', async () => {
    const throttle = createThrottle();
    await failTimes(throttle, 4, 'sign_in', 'alice@example.com', IP);
    assert.deepEqual(await throttle.attempt('sign_in', 'alice@example.com', IP), { allowed: true });
    await throttle.succeed('sign_in', 'alice@example.com', IP);
    await failTimes(throttle, 5, 'sign_in', 'alice@example.com', IP);
    assertRefused(await throttle.attempt('sign_in', 'alice@example.com', IP), 900);
    // 60 successful sign-ins from one address (an office): none counts against its 50.
    for (let i = 0; i < 60; i++) {
      assert.deepEqual(await throttle.attempt('sign_in', `user${i}@example.com`, OTHER_IP), { allowed: true }, `sign-in ${i}`);
      await throttle.succeed('sign_in', `user${i}@example.com`, OTHER_IP);
    }
  });

  it('refuses an IP that tries 50 accounts for at most an hour', async () => {
    const throttle = createThrottle();
    for (let i = 0; i < 50; i++) await failTimes(throttle, 1, 'sign_in', `user${i}@example.com`, IP);
    assertRefused(await throttle.attempt('sign_in', 'new@example.com', IP), 3600);
    assert.deepEqual(await throttle.attempt('sign_in', 'new@example.com', OTHER_IP), { allowed: true });
  });

  it('counts an IPv6 address by its /64: one guesser cannot walk its addresses for fresh tries', async () => {
    const throttle = createThrottle();
    for (let i = 0; i < 5; i++) await failTimes(throttle, 1, 'sign_in', 'alice@example.com', `2001:db8:1:2::${i + 1}`);
    assertRefused(await throttle.attempt('sign_in', 'alice@example.com', '2001:db8:1:2:ffff::1'), 900);
    for (let i = 5; i < 50; i++) await failTimes(throttle, 1, 'sign_in', `user${i}@example.com`, `2001:db8:1:2::${i.toString(16)}`);
    assertRefused(await throttle.attempt('sign_in', 'new@example.com', '2001:db8:1:2:abcd::1'), 3600);
    assert.deepEqual(await throttle.attempt('sign_in', 'new@example.com', '2001:db8:1:3::1'), { allowed: true }, 'another /64 is another address');
  });

  it('keeps kinds apart', async () => {
    const throttle = createThrottle();
    await failTimes(throttle, 5, 'mfa', 'alice@example.com', IP);
    assertRefused(await throttle.attempt('mfa', 'alice@example.com', IP), 900);
    assert.deepEqual(await throttle.attempt('sign_in', 'alice@example.com', IP), { allowed: true });
  });

  it('limits reset mails per email and per IP', async () => {
    const throttle = createThrottle();
    await failTimes(throttle, 5, 'reset', 'alice@example.com', IP);
    assertRefused(await throttle.attempt('reset', 'alice@example.com', OTHER_IP), 3600);
    for (let i = 0; i < 15; i++) await failTimes(throttle, 1, 'reset', `user${i}@example.com`, OTHER_IP);
    await failTimes(throttle, 5, 'reset', `bob@example.com`, OTHER_IP); // OTHER_IP: 20 of 20
    assertRefused(await throttle.attempt('reset', 'carol@example.com', OTHER_IP), 3600);
    assert.deepEqual(await throttle.attempt('reset', 'carol@example.com', IP), { allowed: true });
  });

  it('documents one table of limits', () => {
    const table = (kind: ThrottleKind) => THROTTLE_RULES[kind].map(({ scope, limit, windowSeconds, blockSeconds }) => [scope, limit, windowSeconds, blockSeconds]);
    assert.deepEqual(table('sign_in'), [['pair', 5, 900, 900], ['ip', 50, 3600, 3600], ['subject', 20, 3600, 300]]);
    assert.deepEqual(table('sign_up'), [['subject', 5, 3600, 3600], ['ip', 20, 3600, 3600]]);
    assert.deepEqual(table('exists_mail'), [['subject', 1, 3600, 3600]]);
    assert.deepEqual(table('invite'), [['subject', 20, 3600, 3600]]);
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

  it('of 40 concurrent tries for one pair on two nodes, exactly 5 are allowed', async () => {
    const nodeA = createThrottle({ redis: redisA, keyPrefix });
    const nodeB = createThrottle({ redis: redisB, keyPrefix });
    const verdicts = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? nodeA : nodeB).attempt('sign_in', 'dave@example.com', IP)));
    assert.equal(allowedOf(verdicts), 5);
  });

  it('shares tries between nodes and stores no email in clear', async () => {
    const nodeA = createThrottle({ redis: redisA, keyPrefix });
    const nodeB = createThrottle({ redis: redisB, keyPrefix });
    await failTimes(nodeA, 3, 'sign_in', 'alice@example.com', IP);
    await failTimes(nodeB, 2, 'sign_in', 'ALICE@example.com', IP);
    assertRefused(await nodeB.attempt('sign_in', 'alice@example.com', IP), 900);
    assertRefused(await nodeA.attempt('sign_in', 'alice@example.com', IP), 900);
    assert.deepEqual(await nodeA.attempt('sign_in', 'alice@example.com', OTHER_IP), { allowed: true });

    const keys = await redisA.keys(`${keyPrefix}*`);
    assert.ok(keys.length > 0);
    for (const key of keys) assert.doesNotMatch(key, /alice|example/i);
  });

  it('clears the shared pair counter on success', async () => {
    const nodeA = createThrottle({ redis: redisA, keyPrefix });
    const nodeB = createThrottle({ redis: redisB, keyPrefix });
    await failTimes(nodeA, 4, 'sign_in', 'bob@example.com', IP);
    await nodeB.succeed('sign_in', 'bob@example.com', IP);
    await failTimes(nodeA, 5, 'sign_in', 'bob@example.com', IP);
    assertRefused(await nodeB.attempt('sign_in', 'bob@example.com', IP), 900);
  });

  it('falls back to memory, still counting, when Redis is down', async () => {
    const down = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    down.on('error', () => {});
    const throttle = createThrottle({ redis: down, keyPrefix });
    const verdicts = await Promise.all(Array.from({ length: 20 }, () => throttle.attempt('sign_in', 'carol@example.com', IP)));
    assert.equal(allowedOf(verdicts), 5);
    assertRefused(await throttle.attempt('sign_in', 'carol@example.com', IP), 900);
    down.disconnect();
  });
});
