import { LRUCache } from 'lru-cache';
import type { Prisma, Tx } from '../db/database.ts';
import type { InvalidationBus } from './invalidation-bus.ts';

export type Invalidate = (...keys: string[]) => Promise<void>;

/**
 * Runs a change to credentials in one transaction. `invalidate(key)` tells every node to drop
 * its cached copy, through the cache's bus (invalidation-bus.ts: announced inside the
 * transaction, and again after the commit where the bus is not transactional). This node
 * drops its own copies as soon as the commit returns, so a caller that changed something
 * never reads the old state back, even before the announcement arrives.
 */
export async function changeCredentials<T>(
  deps: { prisma: Prisma; cache: CredentialCache },
  change: (tx: Tx, invalidate: Invalidate) => Promise<T>,
): Promise<T> {
  const keys: string[] = [];
  const result = await deps.prisma.$transaction((tx) =>
    change(tx, async (...changed) => {
      keys.push(...changed);
      await deps.cache.bus.announceInTransaction(tx, changed);
    }),
  );
  for (const key of keys) deps.cache.delete(key);
  if (keys.length > 0) await deps.cache.bus.announceCommitted(keys);
  return result;
}

type Entry = { value: object | null; group: string | null };

/**
 * A node-local, bounded cache of credential lookups (negative results too). Entries are
 * dropped when the bus announces a change; while the listener is down nothing is cached, so no node serves a stale
 * answer for longer than the reconnect takes. The TTL is a last line of defence, not the
 * mechanism.
 * During a database outage (issue 9 §1.9) the same rule decides: on the Postgres bus the
 * listener is on the database, so the cache is emptied within a second and every check is a
 * 503; on the Redis bus the listener still hears every change, and none can commit while the
 * database is away, so the cache stays as fresh as it ever is and goes on answering.
 */
export class CredentialCache {
  #entries: LRUCache<string, Entry>;
  #listening = false;
  // Bumped by every invalidation: a load that raced one must not be cached.
  #epoch = 0;
  #stop: (() => Promise<void>) | null = null;
  #subscribers: ((key: string | null) => void)[] = [];
  /**
   * Entries that depend on another key (a group), by that key: a key's record carries its
   * team's suspension, so invalidating `team:<id>` drops every cached credential of the team.
   * One message per team instead of one per credential (a team may hold 10k keys), and no
   * list of the team's credentials to read inside the suspending transaction. Membership is
   * removed when an entry leaves the cache for any reason, so groups stay bounded by `max`.
   */
  #groups = new Map<string, Set<string>>();
  /**
   * Loads under way, by key, with the epoch each began in: lookups of that key arriving
   * meanwhile share the load, where an entry ending (its TTL) under load would otherwise send
   * every concurrent request to the database. Only within one epoch: a lookup that arrives after
   * an invalidation never gets a value loaded before it.
   */
  #loading = new Map<string, { epoch: number; value: Promise<object | null> }>();
  /** Lookups answered from the cache and lookups that had to load (read by /metrics when scraped). */
  hits = 0;
  misses = 0;

  constructor(
    readonly bus: InvalidationBus,
    max = 100_000,
    ttlMs = 60_000,
  ) {
    this.#entries = new LRUCache({
      max,
      ttl: ttlMs,
      dispose: (entry, key) => {
        if (entry.group) this.#leaveGroup(entry.group, key);
      },
    });
  }

  async start(): Promise<void> {
    this.#stop = await this.bus.listen(
      (key) => {
        this.delete(key);
        for (const subscriber of this.#subscribers) subscriber(key);
      },
      (up) => {
        this.#listening = up;
        this.#epoch++;
        this.#entries.clear();
        // Back after a gap: anything may have changed meanwhile.
        if (up) for (const subscriber of this.#subscribers) subscriber(null);
      },
    );
  }

  /** Stops listening and closes the bus (the CLI, which only announces, calls it too). */
  async stop(): Promise<void> {
    this.#listening = false;
    this.#entries.clear();
    await this.#stop?.();
    this.#stop = null;
    await this.bus.close();
  }

  /**
   * Also hear every invalidated key (one listener per node serves all of them), and `null`
   * whenever the listener is back after a gap in which messages may have been missed.
   */
  subscribe(subscriber: (key: string | null) => void): void {
    this.#subscribers.push(subscriber);
  }

  /** Cached value (possibly a cached miss), or undefined when the caller must load. */
  peek<T extends object>(key: string): T | null | undefined {
    const entry = this.#entries.get(key);
    // A miss here falls back to get(), which counts it.
    if (entry) this.hits++;
    return entry?.value as T | null | undefined;
  }

  /** `groupOf` names the key whose invalidation must drop this entry too (see #groups). */
  async get<T extends object>(key: string, load: () => Promise<T | null>, groupOf?: (value: T) => string | null): Promise<T | null> {
    const hit = this.#entries.get(key);
    if (hit) {
      this.hits++;
      return hit.value as T | null;
    }
    this.misses++;
    const epoch = this.#epoch;
    const under = this.#loading.get(key);
    if (under?.epoch === epoch) return under.value as Promise<T | null>;
    const value = this.#load(key, epoch, load, groupOf);
    this.#loading.set(key, { epoch, value });
    try {
      return await value;
    } finally {
      if (this.#loading.get(key)?.value === value) this.#loading.delete(key);
    }
  }

  async #load<T extends object>(key: string, epoch: number, load: () => Promise<T | null>, groupOf?: (value: T) => string | null): Promise<T | null> {
    const value = await load();
    if (this.#listening && epoch === this.#epoch) {
      const group = value && groupOf ? groupOf(value) : null;
      this.#entries.set(key, { value, group });
      if (group) {
        let members = this.#groups.get(group);
        if (!members) this.#groups.set(group, (members = new Set()));
        members.add(key);
      }
    }
    return value;
  }

  /** Drops a key, and every entry in the group it names. */
  delete(key: string): void {
    this.#epoch++;
    this.#entries.delete(key);
    const members = this.#groups.get(key);
    if (members) {
      this.#groups.delete(key);
      for (const member of members) this.#entries.delete(member);
    }
  }

  #leaveGroup(group: string, key: string): void {
    const members = this.#groups.get(group);
    if (!members) return;
    members.delete(key);
    if (members.size === 0) this.#groups.delete(group);
  }
}
