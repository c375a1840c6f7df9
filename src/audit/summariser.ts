import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '../lib/errors.ts';
import { databaseUnreachable } from '../lib/failure-log.ts';
import { peerKey } from '../limits/networks.ts';
import type { AuditWriter } from './audit-writer.ts';
import type { AuditEventInput } from './audit-log.ts';

/**
 * Junk (unknown client ids, unknown keys, failed client authentication, throttled requests)
 * must not cost one audit row each, or anyone could flood the log (issue 9 §1.3). It is counted
 * here and written as one event per source per window, `data.count` saying how many, with
 * the window's bounds; the event's type is the one a single failure would have had.
 * A source is the event's type, address, actor and data (its error code): never the caller's
 * free text beyond that, so a spray of random client ids from one address is one event. An
 * IPv6 address counts by its /64 (limits/networks.ts peerKey), so one spraying from many
 * addresses of its /64 is one event too: it keeps the first address, and names the /64 in
 * `data.network` once another address joined it.
 */
export interface JunkEvent {
  type: string;
  actorType: AuditEventInput['actorType'];
  actorId?: string | null;
  subjectType?: string | null;
  /** Only an object that exists (an application guessed at), never free text from the caller. */
  subjectId?: string | null;
  ip?: string | null;
  /** Low-cardinality facts only (error code, endpoint, method). */
  data?: Record<string, string>;
}

interface Tally {
  event: JunkEvent;
  count: number;
  first: Date;
  last: Date;
  requestId: string | null;
  /** The peer counted (an IPv6 /64), once a second address of it joined. */
  network?: string;
}

/** Past this many sources in one window, further ones are folded into one per type. */
const MAX_SOURCES = 10_000;

export class AuditSummariser {
  #tallies = new Map<string, Tally>();
  #timer?: NodeJS.Timeout;
  #flushing: Promise<void> = Promise.resolve();
  /** Called for every junk request (metrics). */
  onJunk: (type: string) => void = () => {};

  constructor(
    private readonly audit: Pick<AuditWriter, 'record'>,
    private readonly now: () => Date,
    private readonly windowMs: number,
    private readonly log: Logger,
  ) {}

  /** Counts one junk request; costs a map update, never a write. */
  count(event: JunkEvent, requestId?: string): void {
    this.onJunk(event.type);
    const peer = event.ip ? peerKey(event.ip) : '';
    let key = `${event.type}\u0000${peer}\u0000${event.actorId ?? ''}\u0000${event.subjectType ?? ''}\u0000${event.subjectId ?? ''}\u0000${JSON.stringify(event.data ?? {})}`;
    if (!this.#tallies.has(key) && this.#tallies.size >= MAX_SOURCES) {
      key = `${event.type}\u0000*`;
      event = { type: event.type, actorType: 'anonymous', data: { sources: 'many' } };
    }
    const now = this.now();
    const tally = this.#tallies.get(key);
    if (tally) {
      tally.count++;
      tally.last = now;
      if (event.ip !== tally.event.ip) tally.network = peer;
    } else {
      this.#tallies.set(key, { event, count: 1, first: now, last: now, requestId: requestId ?? null });
    }
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), this.windowMs);
    this.#timer.unref();
  }

  /** Stops the timer and writes what was counted (at shutdown, before the audit writer drains). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }

  /** Writes one event per source counted since the last flush. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#write());
    return this.#flushing;
  }

  async #write(): Promise<void> {
    if (this.#tallies.size === 0) return;
    const tallies = [...this.#tallies.values()];
    this.#tallies = new Map();
    const events = tallies.map(({ event, count, first, last, requestId, network }): AuditEventInput => ({
      type: event.type,
      actorType: event.actorType,
      actorId: event.actorId ?? null,
      subjectType: event.subjectType ?? null,
      subjectId: event.subjectId ?? null,
      // The first request of the window: a thread to pull in the access log.
      requestId,
      ip: event.ip ?? null,
      data: { ...event.data, ...(network ? { network } : {}), count, first: first.toISOString(), last: last.toISOString() },
    }));
    try {
      await Promise.all(events.map((event) => this.audit.record(event)));
    } catch (err) {
      // During a database outage, said once for the whole outage (lib/failure-log.ts).
      if (isDatabaseUnavailable(err)) databaseUnreachable(this.log, err);
      else this.log.error({ err, events: events.length }, 'could not write the junk-request summary to the audit log');
    }
  }
}
