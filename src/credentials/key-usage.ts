import type { Deps } from '../context.ts';

const FLUSH_CHUNK = 10_000;

/**
 * Records "last used" for API keys without a write per request: ids are collected and
 * written in one statement every few seconds (a crash loses at most that much of a
 * convenience timestamp, never a credential change).
 */
export class KeyUsage {
  #pending = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: Pick<Deps, 'prisma' | 'now' | 'log'>) {}

  touch(keyId: string): void {
    this.#pending.add(keyId);
  }

  start(intervalMs = 5_000): void {
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  async flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const ids = [...this.#pending];
    this.#pending.clear();
    const now = this.deps.now();
    // In chunks: one bind parameter per id, and Postgres takes at most 65,535 per statement.
    for (let start = 0; start < ids.length; start += FLUSH_CHUNK) {
      await this.deps.prisma.apiKey
        .updateMany({ where: { id: { in: ids.slice(start, start + FLUSH_CHUNK) } }, data: { lastUsedAt: now } })
        .catch((err) => this.deps.log.warn({ err }, 'could not record key usage'));
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
