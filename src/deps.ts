import { Redis } from 'ioredis';
import pino, { type DestinationStream, type Logger } from 'pino';
import { AuditWriter } from './audit/audit-writer.ts';
import { AuditSummariser } from './audit/summariser.ts';
import type { Config } from './config.ts';
import type { Deps } from './context.ts';
import { Usage } from './credentials/usage.ts';
import { openDatabase } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import { errorForLog } from './lib/errors.ts';
import { databaseReachable } from './lib/failure-log.ts';
import { CredentialCache } from './lib/invalidation.ts';
import { postgresBus, redisBus } from './lib/invalidation-bus.ts';
import { createKeyring, resolveMasterSecret } from './lib/keyring.ts';
import { Alerts } from './limits/alerts.ts';
import { EndpointGuard } from './limits/endpoint-guard.ts';
import { Limiter } from './limits/limiter.ts';
import { createThrottle } from './limits/throttle.ts';
import { createMailer } from './mail/mailer.ts';

/**
 * JSON lines on stdout, buffered: at the default level every request logs a line, and a
 * write(2) per line cost API-key introspection a third of its throughput (bench/introspection.ts).
 * Lines go out in writes of 4 KiB or more, and whatever is pending at least every 250 ms, so a
 * quiet node's lines still appear at once to a person watching; pino flushes what is pending
 * when the process exits.
 */
function stdoutLog(): DestinationStream {
  const stream = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => {
    try {
      stream.flush();
    } catch {
      // Destroyed at exit: nothing left to flush.
    }
  }, 250).unref();
  return stream;
}

export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, destination: DestinationStream = stdoutLog()): Logger {
  return pino(
    {
      level: config.LOG_LEVEL,
      base: { service: 'latchkey' },
      serializers: { err: errorForLog },
      // Belt and braces: no code path logs these, and if one ever does they are masked.
      redact: {
        paths: ['*.authorization', '*.client_secret', '*.password', '*.token', '*.key', 'req.headers.authorization', 'req.headers.cookie'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

export interface OpenOptions {
  /** Whether a missing embedded database may be created (default true): see DatabaseOptions. */
  create?: boolean;
  /** Who holds the embedded data directory, as its lock names it: `server` or a CLI command. */
  holder?: string;
  /**
   * A server's: every query waits DATABASE_TIMEOUT at most, so that a request on a silent
   * database fails with 503 instead of hanging. The CLI's are not bounded (`audit export`).
   */
  serving?: boolean;
}

/** Opens storage and builds the services: shared by the server and the CLI. */
export async function openDeps(config: Config, log: Logger, options: OpenOptions = {}): Promise<Deps> {
  // The database first: it refuses a data directory that is missing or held by another
  // process before anything (the generated secret) is written into it.
  const db = await openDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.LATCHKEY_DATA_DIR,
    connectTimeoutMs: config.DATABASE_TIMEOUT,
    queryTimeoutMs: options.serving ? config.DATABASE_TIMEOUT : undefined,
    create: options.create,
    holder: options.holder,
  });
  let secret: string;
  try {
    secret = await resolveMasterSecret(config.LATCHKEY_SECRET, config.LATCHKEY_DATA_DIR);
    // With a least-privilege DATABASE_URL, the owner applies migrations over a connection of its own.
    if (config.DATABASE_MIGRATION_URL) await migrateAsOwner(config.DATABASE_MIGRATION_URL, config.LATCHKEY_DATA_DIR, config.DATABASE_TIMEOUT);
    else await migrate(db);
  } catch (error) {
    await db.close();
    throw error;
  }
  // A node recovers by itself: the pool opens new connections once the database is back (and
  // the listener reconnects, lib/invalidation.ts); the first one ends the outage in the log.
  db.pool?.on('connect', () => databaseReachable(log));
  const keyring = createKeyring(secret);
  const counters = config.REDIS_URL ? countersConnection(config.REDIS_URL, log) : undefined;
  const deps: Deps = {
    config,
    db,
    prisma: db.prisma,
    keyring,
    audit: new AuditWriter(db, () => deps.now()),
    cache: new CredentialCache(config.REDIS_URL ? redisBus(config.REDIS_URL, keyring.deploymentId, log) : postgresBus(db)),
    log,
    mailer: createMailer({ config, log, now: () => deps.now() }),
    // Per deployment (as the invalidation channel), so deployments sharing one Redis count apart.
    throttle: createThrottle({ redis: counters?.redis, keyPrefix: `latchkey:throttle:${keyring.deploymentId}` }),
    limits: new Limiter({ redis: counters?.redis, redisState: counters?.state, keyPrefix: `latchkey:${keyring.deploymentId}`, log }),
    guard: new EndpointGuard({
      requests: config.LATCHKEY_LIMIT_REQUESTS,
      failures: config.LATCHKEY_LIMIT_FAILURES,
      maxBlockMs: config.LATCHKEY_LIMIT_MAX_BLOCK,
      redis: counters?.redis,
      keyPrefix: `latchkey:guard:${keyring.deploymentId}`,
    }),
    now: () => new Date(),
  } as Omit<Deps, 'usage' | 'junk' | 'alerts'> as Deps;
  deps.junk = new AuditSummariser(deps.audit, () => deps.now(), config.LATCHKEY_AUDIT_SUMMARY_WINDOW, log);
  deps.usage = new Usage(deps);
  deps.alerts = new Alerts(deps);
  deps.usage.burst = { failed: config.LATCHKEY_ALERT_BURST.limit, windowMs: config.LATCHKEY_ALERT_BURST.windowMs };
  deps.usage.onFindings = (findings) => deps.alerts.observe(findings);
  if (counters) throttleConnections.set(deps, counters.redis);
  return deps;
}

async function migrateAsOwner(url: string, dataDir: string, connectTimeoutMs: number): Promise<void> {
  const owner = await openDatabase({ databaseUrl: url, dataDir, poolSize: 1, connectTimeoutMs });
  try {
    await migrate(owner);
  } finally {
    await owner.close();
  }
}

const throttleConnections = new WeakMap<Deps, Redis>();

/**
 * The Redis connection of the shared counters: sign-in throttles and plan limits. A command
 * never waits for Redis: without a connection (offline queue off) or past the command timeout
 * it fails at once, and the throttle's insurance memory limiter answers (limits/throttle.ts)
 * or the plan limit's failure policy (limits/limiter.ts), so a Redis outage neither crashes
 * nor hangs a request; ioredis keeps reconnecting in the background. `state` feeds /readyz
 * and the metrics; the log says so once per transition.
 */
function countersConnection(url: string, log: Logger): { redis: Redis; state: () => 'ok' | 'unreachable' } {
  const redis = new Redis(url, {
    connectionName: `latchkey:${process.pid}:throttle`,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // A silent (partitioned) Redis: a check makes a few sequential calls, each gives up fast.
    commandTimeout: 500,
  });
  let down = false;
  redis.on('error', (err) => {
    if (down) return;
    down = true;
    log.warn({ err }, 'Redis unreachable for shared limits; sign-in limits count in this node\'s memory until it is back');
  });
  redis.on('ready', () => {
    if (down) log.info('Redis reachable again for shared limits');
    down = false;
  });
  return { redis, state: () => (redis.status === 'ready' ? 'ok' : 'unreachable') };
}

/** Closes what openDeps opened (after the server or the CLI is done with it). */
export async function closeDeps(deps: Deps): Promise<void> {
  await deps.mailer.close();
  await deps.cache.stop();
  // Uses counted locally and not yet sent would be lost to the other nodes.
  await deps.limits.flush();
  // A CLI process opens deps too: its throttle connection must not keep it alive.
  throttleConnections.get(deps)?.disconnect();
  await deps.db.close();
}
