import type { Deps } from '../context.ts';
import { advanceSigningKeys, loadSigningKeys, SIGNING_KEYS_CHANGED, type SigningKeySet } from './signing-keys.ts';
import { warnUnlessOutage } from '../lib/failure-log.ts';

/** The longest a node sleeps between looks at its keys: a missed announcement heals within this. */
const MAX_SLEEP_MS = 30_000;
const MIN_SLEEP_MS = 250;
const RETRY_MS = 5_000;

export interface SigningKeySchedule {
  /** Runs the schedule's step and reloads the keys now (also what a bus message triggers). */
  refresh(): Promise<void>;
  /** Stops waking, and waits for a step under way (it must not outlive the database). */
  stop(): Promise<void>;
}

/**
 * Keeps one node's signing keys up to date without a restart: wakes when the next
 * time-driven change is due (a `next` key's activation, a retired key's removal, the
 * scheduled rotation), makes it (advanceSigningKeys: one node does, under a lock), and hands
 * `onChange` the reloaded key set whenever it differs — whether this node, another node or
 * `latchkey signing rotate` changed it (heard on the invalidation bus).
 */
export function startSigningKeySchedule(deps: Deps, loaded: SigningKeySet, onChange: (keys: SigningKeySet) => void): SigningKeySchedule {
  let version = loaded.version;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;

  const sleep = (ms: number) => {
    clearTimeout(timer);
    if (stopped) return;
    timer = setTimeout(() => void refresh(), Math.min(MAX_SLEEP_MS, Math.max(MIN_SLEEP_MS, ms)));
    timer.unref();
  };

  const step = async () => {
    try {
      const { nextDueAt } = await advanceSigningKeys(deps);
      const keys = await loadSigningKeys(deps);
      if (keys.version !== version && !stopped) {
        // Recorded only once applied: a failed switch is tried again at the next step.
        onChange(keys);
        version = keys.version;
        deps.log.info({ kid: keys.current.kid, published: keys.published.map((key) => key.kid) }, 'signing keys reloaded');
      }
      sleep(nextDueAt ? nextDueAt.getTime() - deps.now().getTime() : MAX_SLEEP_MS);
    } catch (err) {
      warnUnlessOutage(deps.log, err, 'could not advance or reload the signing keys; retrying');
      sleep(RETRY_MS);
    }
  };

  // One step at a time; a request during a step runs one more after it (it may carry news).
  const refresh = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await step();
      } while (again && !stopped);
      running = null;
    })();
    return running;
  };

  deps.cache.subscribe((key) => {
    // null: the listener is back after a gap in which an announcement may have been missed.
    if (!stopped && (key === SIGNING_KEYS_CHANGED || key === null)) void refresh();
  });
  sleep(0);
  return {
    refresh,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
