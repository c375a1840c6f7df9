import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CredentialCache } from '../../src/lib/invalidation.ts';
import type { InvalidationBus } from '../../src/lib/invalidation-bus.ts';

/** A bus that is always up and that the test announces on. */
function testBus() {
  let deliver: (key: string) => void = () => {};
  const bus: InvalidationBus = {
    announceInTransaction: async () => {},
    announceCommitted: async () => {},
    async listen(onMessage, onState) {
      deliver = onMessage;
      onState(true);
      return async () => {};
    },
    close: async () => {},
  };
  return { bus, announce: (key: string) => deliver(key) };
}

/** A load the test finishes when it likes, counting how often it was started. */
function gatedLoad() {
  let loads = 0;
  const gates: ((value: { v: number }) => void)[] = [];
  const load = () => {
    loads++;
    return new Promise<{ v: number }>((resolve) => gates.push(resolve));
  };
  return { load, loads: () => loads, finish: (i: number, v: number) => gates[i]!({ v }) };
}

describe('CredentialCache loads', () => {
  it('shares one load among concurrent lookups of a key that is not cached', async () => {
    const { bus } = testBus();
    const cache = new CredentialCache(bus);
    await cache.start();
    const gate = gatedLoad();
    const lookups = Array.from({ length: 20 }, () => cache.get('key:a', gate.load));
    assert.equal(gate.loads(), 1, 'one query to the database, not twenty');
    gate.finish(0, 1);
    assert.deepEqual(await Promise.all(lookups), Array(20).fill({ v: 1 }));
    assert.deepEqual(await cache.get('key:a', gate.load), { v: 1 }, 'then cached');
    assert.equal(gate.loads(), 1);
    // Another key loads on its own.
    const other = cache.get('key:b', gate.load);
    assert.equal(gate.loads(), 2);
    gate.finish(1, 2);
    assert.deepEqual(await other, { v: 2 });
    await cache.stop();
  });

  it('never hands a lookup that arrives after an invalidation a value loaded before it', async () => {
    const { bus, announce } = testBus();
    const cache = new CredentialCache(bus);
    await cache.start();
    const gate = gatedLoad();
    const before = cache.get('key:a', gate.load);
    announce('key:a'); // e.g. revoked on another node while the first load was under way
    const after = cache.get('key:a', gate.load);
    assert.equal(gate.loads(), 2, 'the later lookup loads afresh');
    gate.finish(0, 1);
    gate.finish(1, 2);
    assert.deepEqual(await before, { v: 1 });
    assert.deepEqual(await after, { v: 2 });
    assert.deepEqual(cache.peek('key:a'), { v: 2 }, 'only the load begun after the invalidation is cached');
    await cache.stop();
  });

  it('gives a failed load to every lookup that shared it, and loads again next time', async () => {
    const { bus } = testBus();
    const cache = new CredentialCache(bus);
    await cache.start();
    let calls = 0;
    const failing = async () => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 5));
      throw new Error('database unreachable');
    };
    const results = await Promise.allSettled([cache.get('key:a', failing), cache.get('key:a', failing)]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    assert.equal(calls, 1);
    assert.deepEqual(await cache.get('key:a', async () => ({ v: 3 })), { v: 3 });
    await cache.stop();
  });
});
