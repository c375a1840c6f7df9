import { randomBytes } from 'node:crypto';
import { link, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LatchkeyError } from '../lib/errors.ts';

/**
 * The embedded database (PGlite) must be opened by one process at a time: two processes on
 * one data directory corrupt it. Whoever opens it (the server for its whole life, or a CLI
 * command while no server runs) first holds this lock file, which names the holder.
 */
export const lockFilePath = (dataDir: string) => path.resolve(dataDir, 'latchkey.lock');

export interface LockHolder {
  pid: number;
  started_at: string;
  /** `server`, or the CLI command that opened the database (`migrate`, `key create`…). */
  command?: string;
  /** Where a server listens, once it does. */
  url?: string;
}

export interface DataDirLock {
  readonly file: string;
  /** Records more about the holder (a server's address once it listens). */
  update(details: Pick<LockHolder, 'url'>): Promise<void>;
  release(): Promise<void>;
}

/** The data directory is held by another live process. */
export class DataDirInUse extends LatchkeyError {
  constructor(
    readonly dataDir: string,
    readonly holder: LockHolder,
  ) {
    super('conflict', `the data directory ${path.resolve(dataDir)} is in use by ${describeHolder(holder)}: stop it first, or give this process its own LATCHKEY_DATA_DIR`);
  }
}

export function describeHolder(holder: LockHolder): string {
  if (holder.command === undefined) return `a latchkey process (pid ${holder.pid})`;
  if (holder.command !== 'server') return `"latchkey ${holder.command}" (pid ${holder.pid})`;
  return `a latchkey server (pid ${holder.pid}${holder.url ? `, listening on ${holder.url}` : ', starting'})`;
}

// Lock files this process holds: a lock naming our own pid that is not in here was left by an
// earlier process that had the same pid (a container's pid 1 after a restart), so it is stale.
const held = new Set<string>();

function isAlive(file: string, holder: LockHolder): boolean {
  if (holder.pid === process.pid) return held.has(file);
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readRaw(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function parse(raw: string): LockHolder | null {
  try {
    const value = JSON.parse(raw) as LockHolder;
    return Number.isInteger(value.pid) && value.pid > 0 ? value : null;
  } catch {
    return null;
  }
}

/** The live holder of `dataDir`'s lock, or null when nobody (alive) holds it. */
export async function readLockHolder(dataDir: string): Promise<LockHolder | null> {
  const file = lockFilePath(dataDir);
  const raw = await readRaw(file);
  const holder = raw === null ? null : parse(raw);
  return holder && isAlive(file, holder) ? holder : null;
}

/** Writes `content` whole under a temporary name beside `file`, and returns that name. */
async function writeTemporary(file: string, content: string): Promise<string> {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(temporary, content, { mode: 0o600, flag: 'wx' });
  return temporary;
}

/**
 * Takes the lock on `dataDir` (which must exist), or throws DataDirInUse naming the live
 * holder. A lock left by a process that is gone is taken over.
 */
export async function acquireDataDirLock(dataDir: string, command?: string): Promise<DataDirLock> {
  const file = lockFilePath(dataDir);
  let mine: LockHolder = { pid: process.pid, started_at: new Date().toISOString(), command };
  for (let attempt = 0; ; attempt++) {
    // Linked into place whole: O_EXCL semantics, and a reader never sees a partial file.
    const temporary = await writeTemporary(file, `${JSON.stringify(mine)}\n`);
    try {
      await link(temporary, file);
      held.add(file);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      await unlink(temporary);
    }
    const raw = await readRaw(file);
    if (raw === null) continue;
    const holder = parse(raw);
    if (holder && isAlive(file, holder)) throw new DataDirInUse(dataDir, holder);
    if (attempt >= 20) throw new Error(`could not take over the stale lock ${file}; remove it if no latchkey process runs`);
    await removeStale(file, raw);
  }
  return {
    file,
    async update(details) {
      mine = { ...mine, ...details };
      // Replaced by rename: the lock file exists, whole, at every instant.
      await rename(await writeTemporary(file, `${JSON.stringify(mine)}\n`), file);
    },
    async release() {
      if (!held.delete(file)) return;
      const holder = parse((await readRaw(file)) ?? '');
      if (holder?.pid === mine.pid && holder.started_at === mine.started_at) await rm(file, { force: true });
    },
  };
}

/**
 * Removes a stale lock, unless it changed since it was read. Two processes taking over the
 * same stale lock take turns through a guard file, so that neither removes the other's new lock.
 */
async function removeStale(file: string, staleRaw: string): Promise<void> {
  const guard = `${file}.takeover`;
  try {
    await writeFile(guard, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Another process is taking over; a guard older than a few seconds was left by a crash.
    const age = await stat(guard).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > 5_000) await rm(guard, { force: true });
    else await new Promise((resolve) => setTimeout(resolve, 50));
    return;
  }
  try {
    if ((await readRaw(file)) === staleRaw) await rm(file, { force: true });
  } finally {
    await rm(guard, { force: true });
  }
}
