import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { heartbeat } from '../lib/heartbeat.ts';
import { LatchkeyError } from '../lib/errors.ts';
import { acquireDataDirLock, type DataDirLock } from './data-dir-lock.ts';
import { PrismaClient } from './generated/client.ts';

export type Prisma = PrismaClient;

/** The listening connection's application_name, for pg_stat_activity (operators, tests). */
export const LISTENER_NAME = 'latchkey:listener';


/** Raw SQL access below Prisma: migrations (multi-statement scripts) and LISTEN. */
export interface SqlSession {
  exec(script: string): Promise<void>;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface Database {
  kind: 'postgres' | 'pglite';
  prisma: PrismaClient;
  /** One statement on any pooled connection, below Prisma (for the few hot paths). */
  query(sql: string | { name: string; text: string; values: unknown[] }, params?: unknown[]): Promise<unknown[]>;
  /** Runs `fn` on one dedicated session (own connection on Postgres). */
  withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>;
  /**
   * Subscribes to a NOTIFY channel. `onState(false)` means messages may have been missed (the
   * listener reconnects by itself and then reports `onState(true)`).
   */
  listen(channel: string, onMessage: (payload: string) => void, onState?: (up: boolean) => void): Promise<() => Promise<void>>;
  /**
   * Postgres only: the connection pool, for its use (metrics read the counts when scraped) and
   * its `connect` event (a new connection after an outage means the database is back).
   */
  pool?: Pick<pg.Pool, 'totalCount' | 'idleCount' | 'waitingCount' | 'on'>;
  /** The embedded database's data-directory lock, held until close(). */
  lock?: DataDirLock;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string;
  dataDir: string;
  /** Pool size for Postgres. */
  poolSize?: number;
  /** Postgres: the longest wait for a connection (a new one, or a free one from the pool); unset: no limit. */
  connectTimeoutMs?: number;
  /**
   * Postgres: the longest wait for the answer to a query on the pool; unset: no limit. A query
   * past it fails as the database being unreachable, and its connection is closed.
   */
  queryTimeoutMs?: number;
  /**
   * Embedded only: whether a missing data directory or database may be created (true by
   * default). Only `serve` and `migrate` create one; other CLI commands must find it.
   */
  create?: boolean;
  /** Embedded only: who holds the data directory, as its lock file names it (`server`, a CLI command). */
  holder?: string;
}

/** The embedded database is not where the process looked for it. */
export class DataDirMissing extends LatchkeyError {
  constructor(dataDir: string, what: 'directory' | 'database') {
    const where = path.resolve(dataDir);
    super(
      'not_found',
      `${what === 'directory' ? 'no data directory at' : 'no database in'} ${where}: run latchkey from the project folder, set LATCHKEY_DATA_DIR (or DATABASE_URL), or create it with "latchkey migrate"`,
    );
  }
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options) : openPGlite(options.dataDir, options.create ?? true, options.holder);
}

// TCP keepalive probes a connection after this long without traffic: a peer that is gone (not
// just slow) then fails even a query that no timeout bounds, such as a migration. Node 22's
// libuv probes every second after it; older ones leave the interval to the OS.
const KEEPALIVE_DELAY_MS = 5_000;
// node-pg's message for query_timeout (lib/client.js).
const QUERY_TIMEOUT_MESSAGE = 'Query read timeout';

const clientQuery = pg.Client.prototype.query as (this: pg.Client, ...args: unknown[]) => unknown;

/**
 * node-pg's query_timeout fails a query but leaves it on its connection, where it holds up every
 * later query (across a partition, for good): Prisma's transactions would then wait as long
 * again for their ROLLBACK and hand the client back to the pool without the error. So a client
 * whose query timed out is ended at once (with a query in flight, end() destroys the socket):
 * what waits behind it fails now, and the pool replaces it. (pool.query, which passes a
 * callback, hands the pool the error itself, and the pool ends the client.)
 */
class PooledClient extends pg.Client {
  override query(...args: unknown[]): any {
    const result = clientQuery.apply(this, args);
    if (result instanceof Promise) {
      result.catch((error: unknown) => {
        if ((error as Error | undefined)?.message === QUERY_TIMEOUT_MESSAGE) void this.end();
      });
    }
    return result;
  }
}

async function openPostgres(connectionString: string, options: DatabaseOptions): Promise<Database> {
  const connection = { connectionString, connectionTimeoutMillis: options.connectTimeoutMs, keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS };
  const limit = options.queryTimeoutMs && 2 * options.queryTimeoutMs;
  const pool = new pg.Pool({
    ...connection,
    max: options.poolSize ?? 10,
    query_timeout: options.queryTimeoutMs,
    Client: PooledClient,
    // The query timeout only stops this node waiting. Across a partition, Postgres would keep
    // running what was sent, then hold an open transaction's locks (the audit chain's among
    // them: every node's token issuance) until its own keepalive gives up, hours later. So the
    // server ends those too, after twice the client's patience: set per session before the
    // pool lends a connection out (a failure ends it), not as startup parameters, which a
    // transaction-pooling PgBouncer refuses.
    ...(limit ? { onConnect: (client: pg.ClientBase) => client.query(`SET statement_timeout = ${limit}; SET idle_in_transaction_session_timeout = ${limit}`) } : {}),
  });
  // An idle client's error must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const listeners = new Set<pg.Client>();
  return {
    kind: 'postgres',
    prisma,
    pool,
    // A named statement is parsed once per connection.
    query: async (sql, params) => (typeof sql === 'string' ? await pool.query(sql, params) : await pool.query(sql)).rows,
    async withSession(fn) {
      // A connection of its own, outside the pool's query timeout: a migration may wait for
      // another node's lock, or build an index for minutes.
      const client = new pg.Client(connection);
      await client.connect();
      try {
        return await fn({
          exec: async (script) => void (await client.query(script)),
          query: async (sql, params) => (await client.query(sql, params)).rows,
        });
      } finally {
        await client.end();
      }
    },
    async listen(channel, onMessage, onState = () => {}) {
      let client: pg.Client | undefined;
      let closed = false;
      let reconnecting = false;
      // Pinged on the listening connection itself: that is the one that must be alive.
      let pinged: pg.Client | undefined;
      const stopHeartbeat = heartbeat(
        () => (pinged = client!).query('SELECT 1'),
        () => client !== undefined && !reconnecting,
        () => pinged && lost(pinged),
      );
      const lost = (dead: pg.Client) => {
        if (dead !== client || reconnecting) return;
        // Notifications may have been missed: tell the subscriber, then reconnect (once).
        client = undefined;
        reconnecting = true;
        onState(false);
        listeners.delete(dead);
        dead.end().catch(() => {});
        if (!closed) retry();
      };
      const connect = async (): Promise<void> => {
        // LISTEN is part of connecting, bounded alike: a reconnect must not wait on a silent database.
        const next = new pg.Client({ ...connection, query_timeout: options.connectTimeoutMs, application_name: LISTENER_NAME });
        next.on('notification', (message) => {
          if (message.channel === channel) onMessage(message.payload ?? '');
        });
        next.on('error', () => lost(next));
        next.on('end', () => lost(next));
        try {
          await next.connect();
          await next.query(`LISTEN "${channel}"`);
        } catch (error) {
          next.end().catch(() => {});
          throw error;
        }
        if (closed) return void next.end().catch(() => {});
        listeners.add(next);
        client = next;
        reconnecting = false;
        onState(true);
      };
      const retry = () => setTimeout(() => void connect().catch(retry), 250).unref();
      await connect();
      return async () => {
        closed = true;
        stopHeartbeat();
        const current = client;
        client = undefined;
        if (current) {
          listeners.delete(current);
          await current.end().catch(() => {});
        }
      };
    },
    async close() {
      for (const client of listeners) await client.end().catch(() => {});
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openPGlite(dataDir: string, create: boolean, holder: string | undefined): Promise<Database> {
  const dir = path.resolve(dataDir, 'pgdata');
  if (create) {
    // The data (and the CLI's control socket beside it) is the owner's alone.
    await mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
  } else if (!existsSync(path.dirname(dir))) {
    throw new DataDirMissing(dataDir, 'directory');
  }
  // Before PGlite touches the files: one process at a time, or the database is corrupted.
  const lock = await acquireDataDirLock(path.dirname(dir), holder);
  let db: PGlite;
  try {
    // PG_VERSION is the first thing initdb writes: without it there is no database here.
    if (!create && !existsSync(path.join(dir, 'PG_VERSION'))) throw new DataDirMissing(dataDir, 'database');
    db = await PGlite.create(dir);
  } catch (error) {
    await lock.release();
    throw error;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(db) });
  return {
    kind: 'pglite',
    prisma,
    lock,
    query: async (sql, params) => (typeof sql === 'string' ? await db.query(sql, params) : await db.query(sql.text, sql.values)).rows,
    withSession: (fn) =>
      fn({
        exec: async (script) => void (await db.exec(script)),
        query: async <T>(sql: string, params?: unknown[]) => (await db.query<T>(sql, params)).rows,
      }),
    async listen(channel, onMessage, onState = () => {}) {
      // One process owns the embedded database: the listener cannot lose messages.
      const unsubscribe = await db.listen(channel, (payload) => onMessage(payload));
      onState(true);
      return unsubscribe;
    },
    async close() {
      try {
        await prisma.$disconnect();
        await db.close();
      } finally {
        await lock.release();
      }
    },
  };
}

export type { OAuthClient, ApiKey, Account, Team, Membership, Session, CredentialRequest, AuditEvent } from './generated/client.ts';
/** A Prisma client or an interactive transaction: services accept either. */
export type Tx = import('./generated/client.ts').Prisma.TransactionClient;
