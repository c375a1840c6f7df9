import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, test } from 'node:test';
import { EndpointGuard } from '../../src/limits/endpoint-guard.ts';
import { redisSkip, TEST_REDIS_URL } from '../helpers/redis.ts';

const MINUTE = 60_000;

function guardAt(options: { failures?: number; requests?: number; redis?: Redis; keyPrefix?: string } = {}) {
  let now = 1_000_000;
  const guard = new EndpointGuard({
    requests: { limit: options.requests ?? 1000, windowMs: 1000 },
    failures: { limit: options.failures ?? 3, windowMs: MINUTE },
    maxBlockMs: 15 * MINUTE,
    redis: options.redis,
    keyPrefix: options.keyPrefix,
    now: () => now,
  });
  return { guard, advance: (ms: number) => (now += ms) };
}

describe('EndpointGuard', () => {
  test('failures past the limit block the peer, and each block doubles, up to the maximum', () => {
    const { guard, advance } = guardAt();
    for (let i = 0; i < 3; i++) assert.equal(guard.failed('10.0.0.1'), 0);
    assert.equal(guard.failed('10.0.0.1'), 60, 'the 4th failure: blocked for the window');
    assert.equal(guard.admitPeer('10.0.0.1'), 60, 'every request of a blocked peer is refused');
    assert.equal(guard.admitPeer('10.0.0.2'), 0, 'another peer is not');
    advance(MINUTE);
    assert.equal(guard.admitPeer('10.0.0.1'), 0, 'the block ends');
    for (let i = 0; i < 3; i++) guard.failed('10.0.0.1');
    assert.equal(guard.failed('10.0.0.1'), 120, 'a second block lasts twice as long');
    for (let strike = 3; strike <= 6; strike++) {
      advance(15 * MINUTE);
      for (let i = 0; i < 3; i++) guard.failed('10.0.0.1');
      assert.equal(guard.failed('10.0.0.1'), Math.min(60 * 2 ** (strike - 1), 900));
    }
  });

  test('a quiet spell as long as the longest block forgives earlier blocks', () => {
    const { guard, advance } = guardAt();
    for (let i = 0; i < 4; i++) guard.failed('10.0.0.1');
    advance(MINUTE + 15 * MINUTE);
    for (let i = 0; i < 3; i++) guard.failed('10.0.0.1');
    assert.equal(guard.failed('10.0.0.1'), 60);
  });

  test('failures in a client\'s name from many addresses block failures for that id, never its successful requests', () => {
    const { guard } = guardAt();
    for (let i = 0; i < 3; i++) assert.equal(guard.failed(`10.0.1.${i}`, 'lkc_victim'), 0);
    assert.equal(guard.failed('10.0.1.9', 'lkc_victim'), 60);
    assert.equal(guard.admitClient('lkc_victim'), 0, 'the client itself still gets in');
    assert.equal(guard.admitPeer('10.0.1.9'), 0, 'one failure does not block the address');
  });

  test('requests per peer and per client are limited per window', () => {
    const { guard, advance } = guardAt({ requests: 5 });
    for (let i = 0; i < 5; i++) assert.equal(guard.admitPeer('10.0.0.1'), 0);
    assert.equal(guard.admitPeer('10.0.0.1'), 1);
    for (let i = 0; i < 5; i++) assert.equal(guard.admitClient('lkc_a'), 0);
    assert.equal(guard.admitClient('lkc_a'), 1);
    advance(1000);
    assert.equal(guard.admitPeer('10.0.0.1'), 0);
    assert.equal(guard.admitClient('lkc_a'), 0);
  });

  test('an IPv6 peer is its /64: two addresses in one /64 share one budget, another /64 has its own', () => {
    const { guard } = guardAt({ requests: 4, failures: 3 });
    for (let i = 0; i < 2; i++) assert.equal(guard.admitPeer('2001:db8:1:2::1'), 0);
    for (let i = 0; i < 2; i++) assert.equal(guard.admitPeer('2001:DB8:1:2:ffff:ffff:ffff:ffff'), 0);
    assert.equal(guard.admitPeer('2001:db8:1:2:aaaa::5'), 1, 'the 5th request from the /64 is refused');
    assert.equal(guard.admitPeer('2001:db8:1:3::1'), 0, 'the next /64 is another peer');
    // Failures too: three addresses of one /64 fail once each, the fourth is blocked.
    for (let i = 0; i < 3; i++) assert.equal(guard.failed(`2001:db8:9:9::${i + 1}`), 0);
    assert.equal(guard.failed('2001:db8:9:9::99'), 60);
    assert.equal(guard.admitPeer('2001:db8:9:9:1:2:3:4'), 60, 'every address of the /64 waits');
    assert.equal(guard.admitPeer('2001:db8:9:a::1'), 0);
    // An IPv4-mapped address is its IPv4 peer.
    for (let i = 0; i < 4; i++) assert.equal(guard.admitPeer(i % 2 ? '198.51.100.7' : '::ffff:198.51.100.7'), 0);
    assert.equal(guard.admitPeer('::ffff:198.51.100.7'), 1);
  });

  test('a credential that keeps failing is past its limit (its failures are then summarised, never refused)', () => {
    const { guard } = guardAt();
    for (let i = 0; i < 3; i++) assert.equal(guard.failedCheck('api_key:abc'), false);
    assert.equal(guard.failedCheck('api_key:abc'), true);
    assert.equal(guard.failedCheck('api_key:other'), false);
  });
});

describe('EndpointGuard across nodes (Redis)', async () => {
  const skip = await redisSkip();
  test('failures on two nodes add up to one limit', { skip }, async () => {
    const prefix = `latchkey:test:guard:${randomBytes(6).toString('hex')}`;
    const [redisA, redisB] = [new Redis(TEST_REDIS_URL), new Redis(TEST_REDIS_URL)];
    try {
      await Promise.all([redisA.ping(), redisB.ping()]);
      const a = guardAt({ failures: 10, redis: redisA, keyPrefix: prefix }).guard;
      const b = guardAt({ failures: 10, redis: redisB, keyPrefix: prefix }).guard;
      for (let i = 0; i < 6; i++) {
        assert.equal(a.failed('10.9.9.9'), 0);
        assert.equal(b.failed('10.9.9.9'), 0);
      }
      // Each node alone is under the limit; together (12) they are over it.
      assert.equal(a.admitPeer('10.9.9.9'), 0);
      await a.share();
      await b.share();
      assert.ok(b.admitPeer('10.9.9.9') > 0, 'the node that shared last sees the total');
      // The first node learns it on its next failure from that peer.
      a.failed('10.9.9.9');
      await a.share();
      assert.ok(a.admitPeer('10.9.9.9') > 0);
    } finally {
      redisA.disconnect();
      redisB.disconnect();
    }
  });
});
