import type { Database } from '../db/database.ts';
import { appendAuditEventsNow, type AuditEventInput } from './audit-log.ts';

interface Pending {
  event: AuditEventInput;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for hot paths (token issuance): events that arrive while a batch is being
 * committed wait for the next batch. `record` resolves only once its event is committed, so
 * a response that waits for it never outruns its audit trail. One batch in flight measured
 * faster than two (bench/token.ts): bigger batches, fewer commits on the same chain lock.
 */
export class AuditWriter {
  #queue: Pending[] = [];
  #inFlight = 0;
  #scheduled = false;
  #idle: (() => void)[] = [];

  constructor(
    private readonly db: Pick<Database, 'query'>,
    private readonly maxBatch = 500,
    private readonly maxInFlight = 1,
  ) {}

  record(event: AuditEventInput): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ event, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves when everything queued so far is committed (used at shutdown). */
  idle(): Promise<void> {
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.maxInFlight) return;
    this.#scheduled = true;
    // Let the current tick's events join the batch.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.maxBatch);
    this.#inFlight++;
    try {
      await appendAuditEventsNow(this.db, batch.map((pending) => pending.event));
      for (const pending of batch) pending.resolve();
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      this.#inFlight--;
      if (this.#queue.length > 0) this.#schedule();
      else if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }
}
