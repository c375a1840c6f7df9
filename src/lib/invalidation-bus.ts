import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Database, Tx } from '../db/database.ts';
import { heartbeat } from './heartbeat.ts';

const CHANNEL = 'latchkey_invalidate';
const CONNECT_TIMEOUT_MS = 5_000;
const PUBLISH_ATTEMPTS = 3;

/**
 * How nodes tell each other that a cached credential changed. Messages are cache keys;
 * `listen` reports `onState(false)` whenever messages may have been missed, and `true` once
 * it hears again (the cache trusts nothing in between).
 */
export interface InvalidationBus {
  /** Inside the change's transaction (a failure there undoes the change). */
  announceInTransaction(tx: Tx, keys: string[]): Promise<void>;
  /** After the change has committed; never throws (the change stands). */
  announceCommitted(keys: string[]): Promise<void>;
  listen(onMessage: (key: string) => void, onState: (up: boolean) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * Postgres LISTEN/NOTIFY, the default: NOTIFY is transactional, so nodes hear a change only
 * once it commits, and never a rolled-back one.
 */
export function postgresBus(db: Database): InvalidationBus {
  return {
    async announceInTransaction(tx, keys) {
      for (const key of keys) await tx.$executeRaw`SELECT pg_notify(${CHANNEL}, ${key})`;
    },
    async announceCommitted() {},
    listen: (onMessage, onState) => db.listen(CHANNEL, onMessage, onState),
    async close() {},
  };
}

/**
 * Redis pub/sub (REDIS_URL), for deployments where LISTEN cannot work, such as Postgres
 * behind a transaction-pooling PgBouncer. Publishing is not transactional, so a change is
 * announced twice: inside its transaction (other nodes drop the old state at once) and after
 * the commit (a node that re-read the old state in between drops it again), with retries.
 * A change is made even when Redis cannot be reached: revoking must never wait on an optional
 * transport, and nodes that cannot hear Redis cache nothing meanwhile. What is left is a node
 * that hears Redis but missed both announcements (this node lost Redis alone, or crashed
 * between commit and announcement): it may serve the old state for at most the cache's TTL.
 * Both are logged. The channel is per deployment (Keyring.deploymentId), so deployments
 * sharing one Redis do not hear each other.
 */
export function redisBus(url: string, deploymentId: string, log: Logger): InvalidationBus {
  const channel = `${CHANNEL}:${deploymentId}`;
  let publisher: Redis | undefined;
  const connectPublisher = () => {
    // A change waits for its announcement at most a second, never for Redis to come back.
    const connection = new Redis(url, { connectionName: `latchkey:${process.pid}:publisher`, maxRetriesPerRequest: 1, commandTimeout: 1_000 });
    connection.on('error', () => {});
    return connection;
  };
  const publish = async (keys: string[]) => {
    const connection = (publisher ??= connectPublisher());
    await Promise.all(keys.map((key) => connection.publish(channel, key)));
  };
  const subscribers = new Set<Redis>();
  return {
    async announceInTransaction(_tx, keys) {
      await publish(keys).catch((err) => log.warn({ err }, 'could not announce a credential change on Redis before its commit'));
    },
    async announceCommitted(keys) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await publish(keys);
        } catch (err) {
          if (attempt === PUBLISH_ATTEMPTS) return log.error({ err, keys }, 'could not announce a committed credential change on Redis; other nodes may serve the old state until their cache entries expire');
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    },
    async listen(onMessage, onState) {
      // Named, so that an operator (or a test) can tell the connections apart in CLIENT LIST.
      const subscriber = new Redis(url, { connectionName: `latchkey:${process.pid}:subscriber`, autoResubscribe: false, maxRetriesPerRequest: null, keepAlive: 10_000, retryStrategy: () => 250 });
      subscribers.add(subscriber);
      let up = false;
      const down = () => {
        if (!up) return;
        up = false;
        onState(false);
      };
      let ready: (error?: Error) => void = () => {};
      const firstReady = new Promise<void>((resolve, reject) => {
        ready = (error) => (error ? reject(error) : resolve());
      });
      subscriber.on('message', (from: string, key: string) => {
        if (from === channel) onMessage(key);
      });
      subscriber.on('error', () => {});
      subscriber.on('close', down);
      // Subscribed again after every (re)connection; only then are messages heard again.
      subscriber.on('ready', () => {
        subscriber.subscribe(channel).then(
          () => {
            up = true;
            onState(true);
            ready();
          },
          () => subscriber.disconnect(true),
        );
      });
      const stopHeartbeat = heartbeat(
        () => subscriber.ping(),
        () => up,
        () => {
          down();
          subscriber.disconnect(true);
        },
      );
      const stop = async () => {
        stopHeartbeat();
        subscribers.delete(subscriber);
        subscriber.disconnect(false);
      };
      const timer = setTimeout(() => ready(new Error(`REDIS_URL: no subscription after ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
      try {
        await firstReady;
      } catch (error) {
        await stop();
        throw error;
      } finally {
        clearTimeout(timer);
      }
      return stop;
    },
    async close() {
      for (const subscriber of subscribers) subscriber.disconnect(false);
      subscribers.clear();
      await publisher?.quit().catch(() => publisher?.disconnect());
      publisher = undefined;
    },
  };
}
