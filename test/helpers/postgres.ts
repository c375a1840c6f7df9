import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './server.ts';

const run = promisify(execFile);

/** Debian's server binaries (initdb and pg_ctl are not on PATH there): the newest installed. */
function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const version = readdirSync(root).sort((a, b) => Number(b) - Number(a)).find((v) => existsSync(path.join(root, v, 'bin', 'initdb')));
  return version ? path.join(root, version, 'bin') : undefined;
}

const BIN = postgresBin();
// initdb refuses to run as root: as root (CI runs as the same user as a developer here), the
// cluster is made and run by the `postgres` account, which Debian's package creates.
const AS_ROOT = process.getuid?.() === 0;

/** A skip reason when no Postgres server binaries are installed. */
export const ownPostgresSkip: string | false = BIN ? false : 'needs the PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql';

export interface OwnPostgres {
  /** postgresql://postgres@127.0.0.1:PORT/postgres, trust authentication. */
  url: string;
  port: number;
  /** Starts the server (again), waiting until it accepts connections. */
  start(): Promise<void>;
  /** `pg_ctl stop -m immediate`: the process is gone at once, as in a crash (no checkpoint). */
  crash(): Promise<void>;
  /** Stops it and removes its files. */
  destroy(): Promise<void>;
}

async function asOwner(command: string, args: string[]): Promise<void> {
  const [file, argv] = AS_ROOT ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  await run(file, argv, { timeout: 60_000 });
}

/**
 * A Postgres of the test's own, in a temporary directory on a free port, which the test may
 * stop and start at will (issue 9 §2 Outage) without disturbing the machine's shared server.
 */
export async function ownPostgres(): Promise<OwnPostgres> {
  if (!BIN) throw new Error(String(ownPostgresSkip));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'latchkey-pg-'));
  if (AS_ROOT) await run('chown', ['postgres', dir]);
  const data = path.join(dir, 'data');
  const port = await freePort();
  await asOwner(path.join(BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  const pgCtl = path.join(BIN, 'pg_ctl');
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`;
  const start = () => asOwner(pgCtl, ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', '-t', '30', 'start']);
  const crash = () => asOwner(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']);
  await start();
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    crash,
    async destroy() {
      await asOwner(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
