// Every 500 ms, with 500 ms to answer: a listener that went silent is noticed within a
// second, the time in which every node must honour a revocation.
const INTERVAL_MS = 500;
const TIMEOUT_MS = 500;

/**
 * A silently dead connection (half-open TCP) emits nothing, so a listener on one would never
 * hear another revocation: `ping` runs on it regularly (while `alive()` says it is worth
 * asking), and `dead()` is called when one fails or goes unanswered. Returns the stop function.
 */
export function heartbeat(ping: () => Promise<unknown>, alive: () => boolean, dead: () => void): () => void {
  const timer = setInterval(() => {
    if (!alive()) return;
    let settled = false;
    const settle = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      if (!ok) dead();
    };
    ping().then(() => settle(true), () => settle(false));
    // After a stalled event loop the answer may be waiting, unread, when the timer fires:
    // setImmediate runs after this turn's I/O has been read, so only real silence counts.
    const timeout = setTimeout(() => setImmediate(() => settle(false)), TIMEOUT_MS).unref();
  }, INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
