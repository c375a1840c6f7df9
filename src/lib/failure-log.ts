import type { Logger } from 'pino';
import { isDatabaseUnavailable, TemporarilyUnavailable, type LatchkeyError } from './errors.ts';

// While the database is down every request that needs it fails the same way: one line when
// the outage is first met, then one reminder a minute with the count, then one on recovery.
const REMINDER_MS = 60_000;

interface OutageState {
  /** When the outage was first met (ms), or null while the database answers. */
  since: number | null;
  /** Requests (and background jobs) refused since the last line. */
  refused: number;
  lastLine: number;
}

// One state per node, keyed by its logger: every surface's error mapping is handed the node's
// logger already (http/oauth-errors.ts, api/problem.ts, web/pages.ts), so they share one
// state without a second parameter threaded through each of them.
const states = new WeakMap<Logger, OutageState>();

function stateOf(log: Logger): OutageState {
  let state = states.get(log);
  if (!state) states.set(log, (state = { since: null, refused: 0, lastLine: 0 }));
  return state;
}

/**
 * Something needed the database and could not reach it (the caller answers 503). Logged once
 * per transition, not per request: no log flood while the database is down (issue 9 §1.8).
 */
export function databaseUnreachable(log: Logger, error: unknown, now = Date.now()): void {
  const state = stateOf(log);
  state.refused++;
  if (state.since === null) {
    state.since = state.lastLine = now;
    state.refused = 0;
    log.error({ err: error }, 'database unreachable: credential endpoints and pages answer 503 until it is back');
  } else if (now - state.lastLine >= REMINDER_MS) {
    log.warn({ err: error, refused: state.refused, downForMs: now - state.since }, 'database still unreachable');
    state.lastLine = now;
    state.refused = 0;
  }
}

/** The database answered again (a new pool connection, a readiness check): logged once, if it was down. */
export function databaseReachable(log: Logger, now = Date.now()): void {
  const state = states.get(log);
  if (!state || state.since === null) return;
  // At warn, like the outage's own lines: a log kept at warn shows both ends of it.
  log.warn({ downForMs: now - state.since, refused: state.refused }, 'database reachable again');
  state.since = null;
  state.refused = 0;
}

/** Whether this node last found the database out of reach (for /readyz detail and tests). */
export function databaseDown(log: Logger): boolean {
  return states.get(log)?.since != null;
}

/**
 * The log side of mapping an error to an answer (`mapped` = toLatchkeyError(thrown)), shared
 * by every surface: an unexpected failure at error level; the database out of reach once per
 * outage (above); a refusal with a private detail at info. A server_error raised on purpose
 * was logged by its raiser.
 */
export function logFailure(log: Logger, thrown: unknown, mapped: LatchkeyError, requestId: string | undefined): void {
  if (mapped !== thrown && mapped instanceof TemporarilyUnavailable) databaseUnreachable(log, thrown);
  else if (mapped !== thrown && mapped.code === 'server_error') log.error({ err: thrown, requestId }, 'request failed');
  else if (mapped.detail) log.info({ code: mapped.code, detail: mapped.detail, requestId }, 'request rejected');
}

/**
 * A background job (sweeps, checkpoints, key schedule, usage roll-up) failed: a warning,
 * unless the database is out of reach, which the outage lines above already say once.
 */
export function warnUnlessOutage(log: Logger, error: unknown, message: string): void {
  if (isDatabaseUnavailable(error)) databaseUnreachable(log, error);
  else log.warn({ err: error }, message);
}
