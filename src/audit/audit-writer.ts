import type { Database } from '../db/database.ts';
import { appendAuditEventsNow, type AuditEventInput } from './audit-log.ts';

interface Pending {
  event: AuditEventInput;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for hot paths (token issuance): events that arrive while a batch is being
 * committed go into the next batch. `record` resolves only once its event is committed, so a
 * response that waits for it never outruns its audit trail. One batch at a time measured
 * faster than two in flight (bench/token.ts): bigger batches, fewer commits on one chain lock.
 */
export class AuditWriter {
  #queue: Pending[] = [];
  #flushing = false;
  #idle: (() => void)[] = [];
  /** Told each committed batch's size and commit time (the server points it at /metrics). */
  onBatch: (size: number, seconds: number) => void = () => {};

  constructor(
    private readonly db: Pick<Database, 'query'>,
    /** deps.now(): a batch's events carry the time it is committed. */
    private readonly now: () => Date,
    private readonly maxBatch = 500,
  ) {}

  record(event: AuditEventInput): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ event, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        // Let the current tick's events join the first batch.
        setImmediate(() => void this.#drain());
      }
    });
  }

  /** Resolves when everything queued so far is committed (used at shutdown). */
  idle(): Promise<void> {
    if (!this.#flushing) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.maxBatch);
      try {
        const started = process.hrtime.bigint();
        await appendAuditEventsNow(this.db, batch.map((pending) => pending.event), this.now());
        this.onBatch(batch.length, Number(process.hrtime.bigint() - started) / 1e9);
        for (const pending of batch) pending.resolve();
      } catch (error) {
        // Events queued behind a batch that timed out waiting on the database (a silent
        // partition) would wait the whole timeout again for the same answer: they fail with it.
        // A quick failure (one stale connection reset) fails its own batch only.
        const failed = timedOut(error) ? [...batch, ...this.#queue.splice(0)] : batch;
        for (const pending of failed) pending.reject(error);
      }
    }
    this.#flushing = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}

// node-pg's timeouts (lib/client.js, pg-pool): "Query read timeout", "timeout exceeded when
// trying to connect", "Connection terminated due to connection timeout".
const timedOut = (error: unknown) => error instanceof Error && /timeout/i.test(error.message);
