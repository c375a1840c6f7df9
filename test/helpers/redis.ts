import { Redis } from 'ioredis';

/**
 * The Redis the tests use (the machine's own by default). A deployment's channel follows its
 * LATCHKEY_SECRET: a test file that must not hear others' messages uses a secret of its own.
 */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A skip reason when no Redis answers, for a developer's machine without one. In CI a missing
 * Redis is a failure, not a skip: .ci/run starts one.
 */
export async function redisSkip(): Promise<string | false> {
  if (process.env.CI === 'true') return false;
  const probe = new Redis(TEST_REDIS_URL, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.ping();
    return false;
  } catch {
    return `no Redis at ${TEST_REDIS_URL} (set TEST_REDIS_URL)`;
  } finally {
    probe.disconnect();
  }
}

/** Runs fn with a plain connection to the test Redis. */
export async function withRedis<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}
