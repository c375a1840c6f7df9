import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Limiter, type LimitVerdict } from '../../src/limits/limiter.ts';
import type { Limits } from '../../src/limits/plans.ts';
import { redisSkip, TEST_REDIS_URL } from '../helpers/redis.ts';

// Plan limits shared through Redis, decided locally between batches (limits/limiter.ts):
// two Limiters on their own connections to one Redis stand for two nodes.
describe('plan limits shared through Redis, counted locally in batches', { skip: await redisSkip() }, () => {
  const prefix = `test:batching:${randomBytes(6).toString('hex')}`;
  const connections: Redis[] = [];
  const log = { warn: () => {}, info: () => {} };
  // Five seconds into a minute, so a 60 s window's Redis key lives under a minute.
  const now = Date.parse('2027-03-10T12:00:05Z');

  const node = async () => {
    const redis = new Redis(TEST_REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2_000 });
    connections.push(redis);
    const limiter = new Limiter({ redis, keyPrefix: prefix, log });
    await limiter.connected(5_000);
    return limiter;
  };

  before(async () => {
    // A first connection proves Redis answers before any limiter counts.
    const probe = new Redis(TEST_REDIS_URL);
    connections.push(probe);
    await probe.ping();
  });
  after(async () => {
    const probe = connections[0]!;
    const keys = await probe.keys(`${prefix}:*`);
    if (keys.length > 0) await probe.del(...keys);
    for (const redis of connections) redis.disconnect();
  });

  /** Checks in rounds: `perRound` at once on each node, without waiting in between, as concurrent requests do. */
  async function hammer(nodes: Limiter[], subject: string, limits: Limits, total: number, perRound: number) {
    const verdicts: LimitVerdict[] = [];
    let local = 0;
    while (verdicts.length < total) {
      const round: (LimitVerdict | Promise<LimitVerdict>)[] = [];
      for (let i = 0; i < perRound * nodes.length && verdicts.length + round.length < total; i++) {
        const answer = nodes[i % nodes.length]!.check('verify', subject, limits, 1, now, 'closed');
        if (!(answer instanceof Promise)) local += 1;
        round.push(answer);
      }
      verdicts.push(...(await Promise.all(round)));
    }
    return { verdicts, local };
  }

  it('two nodes under concurrent checks accept the rate limit within 5%, most checks answered without Redis', async () => {
    const [a, b] = [await node(), await node()];
    const limit = 20_000;
    const limits = { rate: { limit, windowSeconds: 60 }, quota: null };
    const { verdicts, local } = await hammer([a, b], 'k:rate', limits, limit * 1.5, 50);
    const accepted = verdicts.filter((v) => v.refused === null).length;
    assert.ok(Math.abs(accepted - limit) <= limit * 0.05, `accepted ${accepted} of ${verdicts.length}`);
    assert.ok(accepted <= limit + 2 * limit * (1 / 200), `over-accepted by more than two batches: ${accepted}`);
    assert.deepEqual(new Set(verdicts.filter((v) => v.refused !== null).map((v) => v.refused)), new Set(['RATE_LIMITED']));
    assert.ok(local > verdicts.length / 2, `only ${local} of ${verdicts.length} checks were answered locally`);
    // Every use reached Redis once both nodes sent their last batch: a third node reads the total.
    await Promise.all([a.flush(), b.flush()]);
    const third = await (await node()).check('verify', 'k:rate', limits, 1, now, 'closed');
    assert.equal(third.refused, 'RATE_LIMITED');
  });

  it('two nodes under concurrent checks accept the quota within 5%, refused QUOTA_EXCEEDED', async () => {
    const [a, b] = [await node(), await node()];
    const limit = 5_000;
    const limits = { rate: { limit: 1_000_000, windowSeconds: 60 }, quota: { limit, period: 'day' as const } };
    const { verdicts } = await hammer([a, b], 'k:quota', limits, limit * 1.5, 50);
    const accepted = verdicts.filter((v) => v.refused === null).length;
    assert.ok(Math.abs(accepted - limit) <= limit * 0.05, `accepted ${accepted} of ${verdicts.length}`);
    assert.deepEqual(new Set(verdicts.filter((v) => v.refused !== null).map((v) => v.refused)), new Set(['QUOTA_EXCEEDED']));
  });

  it('uses counted locally reach Redis within a batch interval, without a flush', async () => {
    const [a, b] = [await node(), await node()];
    const limits = { rate: { limit: 1_000_000, windowSeconds: 60 }, quota: null };
    const first = a.check('verify', 'k:timer', limits, 1, now, 'closed');
    assert.ok(first instanceof Promise, "a window's first check asks Redis");
    await first;
    for (let i = 0; i < 10; i++) assert.ok(!(a.check('verify', 'k:timer', limits, 1, now, 'closed') instanceof Promise), 'far from the limit: answered locally');
    // The window's key in Redis (Limiter keyPrefix, then rate window 60 s, index by the clock).
    const redisKey = `${prefix}:limits:r:k:timer:60:${Math.floor(now / 60_000)}`;
    const deadline = Date.now() + 5_000;
    while ((await connections[0]!.get(redisKey)) !== '11' && Date.now() < deadline) await sleep(20);
    assert.equal(await connections[0]!.get(redisKey), '11', 'the batch was sent by the timer');
    const seen = await b.check('verify', 'k:timer', limits, 1, now, 'closed');
    assert.equal(seen.ratelimit?.remaining, 1_000_000 - 12);
  });

  it('near the limit every check asks Redis, so one node stops at exactly the limit; a stale node over-accepts at most its batch', async () => {
    const [a, b] = [await node(), await node()];
    const limit = 2_000; // batch 10, the last 200 asked of Redis
    const limits = { rate: { limit, windowSeconds: 60 }, quota: null };
    const asked: boolean[] = [];
    const refused: (string | null)[] = [];
    for (let i = 0; i < 1_500; i++) {
      const answer = a.check('verify', 'k:near', limits, 1, now, 'closed');
      asked.push(answer instanceof Promise);
      refused.push((await answer).refused);
    }
    assert.ok(asked.slice(0, 1_500).filter(Boolean).length < 1_500 / 2, 'far from the limit, most checks are local');
    // b's first check asks Redis, and sees a's uses (sent with a's last ask at the latest).
    await a.flush();
    const first = await b.check('verify', 'k:near', limits, 1, now, 'closed');
    assert.equal(first.ratelimit?.remaining, limit - 1_501);
    // a knows nothing of b's uses: b now takes the window to its limit.
    let bAccepted = 1;
    for (let i = 0; i < 600; i++) {
      const answer = b.check('verify', 'k:near', limits, 1, now, 'closed');
      const verdict = await answer;
      if (i >= 300) assert.ok(answer instanceof Promise || verdict.refused !== null, `check ${i} on b was accepted without asking Redis near the limit`);
      if (verdict.refused === null) bAccepted += 1;
    }
    assert.equal(bAccepted, limit - 1_500, 'alone near the limit, b stops at exactly the limit');
    // a's estimate is 1,500: it accepts no more than its batch before Redis tells it the truth.
    let aAccepted = 0;
    for (let i = 0; i < 50; i++) if ((await a.check('verify', 'k:near', limits, 1, now, 'closed')).refused === null) aAccepted += 1;
    assert.ok(aAccepted <= limit / 200, `a over-accepted ${aAccepted}`);
    // Over the limit, both refuse without asking Redis.
    for (const limiter of [a, b]) {
      const answer = limiter.check('verify', 'k:near', limits, 1, now, 'closed');
      assert.ok(!(answer instanceof Promise), 'an estimate over the limit refuses locally');
      assert.equal(answer.refused, 'RATE_LIMITED');
      assert.equal(answer.ratelimit?.remaining, 0);
    }
  });
});
