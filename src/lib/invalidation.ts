import { LRUCache } from 'lru-cache';
import type { Database, Prisma, Tx } from '../db/database.ts';

const INVALIDATION_CHANNEL = 'latchkey_invalidate';

export type Invalidate = (...keys: string[]) => Promise<void>;

/**
 * Runs a change to credentials in one transaction. `invalidate(key)` tells every node to drop
 * its cached copy: NOTIFY is transactional, so nodes hear it only when the change commits and
 * never for a rolled-back one. This node drops its own copies as soon as the commit returns,
 * so a caller that changed something never reads the old state back, even before the
 * notification arrives.
 */
export async function changeCredentials<T>(
  deps: { prisma: Prisma; cache: CredentialCache },
  change: (tx: Tx, invalidate: Invalidate) => Promise<T>,
): Promise<T> {
  const keys: string[] = [];
  const result = await deps.prisma.$transaction((tx) =>
    change(tx, async (...changed) => {
      keys.push(...changed);
      for (const key of changed) await tx.$executeRaw`SELECT pg_notify(${INVALIDATION_CHANNEL}, ${key})`;
    }),
  );
  for (const key of keys) deps.cache.delete(key);
  return result;
}

type Entry = { value: object | null };

/**
 * A node-local, bounded cache of credential lookups (negative results too). Entries are
 * dropped on NOTIFY; while the listener is down nothing is cached, so no node serves a stale
 * answer for longer than the reconnect takes. The TTL is a last line of defence, not the
 * mechanism.
 */
export class CredentialCache {
  #entries: LRUCache<string, Entry>;
  #listening = false;
  // Bumped by every invalidation: a load that raced one must not be cached.
  #epoch = 0;
  #stop: (() => Promise<void>) | null = null;
  #subscribers: ((key: string) => void)[] = [];

  constructor(max = 100_000, ttlMs = 60_000) {
    this.#entries = new LRUCache({ max, ttl: ttlMs });
  }

  async start(db: Database): Promise<void> {
    this.#stop = await db.listen(
      INVALIDATION_CHANNEL,
      (key) => {
        this.delete(key);
        for (const subscriber of this.#subscribers) subscriber(key);
      },
      (up) => {
        this.#listening = up;
        this.#epoch++;
        this.#entries.clear();
      },
    );
  }

  async stop(): Promise<void> {
    this.#listening = false;
    this.#entries.clear();
    await this.#stop?.();
  }

  /** Also hear every invalidated key (one LISTEN connection per node serves all of them). */
  subscribe(subscriber: (key: string) => void): void {
    this.#subscribers.push(subscriber);
  }

  /** Cached value (possibly a cached miss), or undefined when the caller must load. */
  peek<T extends object>(key: string): T | null | undefined {
    return this.#entries.get(key)?.value as T | null | undefined;
  }

  async get<T extends object>(key: string, load: () => Promise<T | null>): Promise<T | null> {
    const hit = this.#entries.get(key);
    if (hit) return hit.value as T | null;
    const epoch = this.#epoch;
    const value = await load();
    if (this.#listening && epoch === this.#epoch) this.#entries.set(key, { value });
    return value;
  }

  delete(key: string): void {
    this.#epoch++;
    this.#entries.delete(key);
  }
}
