import type { Prisma } from '../db/database.ts';
import { appendAuditEvents, type AuditEventInput } from './audit-log.ts';

interface Pending {
  event: AuditEventInput;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for hot paths (token issuance): events queued while one batch commits go into
 * the next one. `record` resolves only once its event is committed, so a response that waits
 * for it never outruns its audit trail.
 */
export class AuditWriter {
  #queue: Pending[] = [];
  #flushing: Promise<void> | null = null;

  constructor(
    private readonly prisma: Prisma,
    private readonly maxBatch = 500,
  ) {}

  record(event: AuditEventInput): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ event, resolve, reject });
      this.#flushing ??= this.#drain();
    });
  }

  /** Resolves when everything queued so far is committed (used at shutdown). */
  async idle(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #drain(): Promise<void> {
    // Let the current tick's events join the first batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.maxBatch);
      try {
        await this.prisma.$transaction((tx) => appendAuditEvents(tx, batch.map((p) => p.event)));
        for (const pending of batch) pending.resolve();
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    this.#flushing = null;
  }
}
