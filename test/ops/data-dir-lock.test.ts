import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { controlSocketPath } from '../../src/cli/control-socket.ts';
import { acquireDataDirLock, DataDirInUse, lockFilePath, readLockHolder } from '../../src/db/data-dir-lock.ts';
import { runCli, spawnServer, type ServerProcess } from '../helpers/processes.ts';
import { freePort, TEST_SECRET } from '../helpers/server.ts';

const BIN = fileURLToPath(new URL('../../bin/latchkey.mjs', import.meta.url));

const temporaryDirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'latchkey-lock-'));
  temporaryDirs.push(dir);
  return dir;
};
after(async () => {
  for (const dir of temporaryDirs) await rm(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited (and so cannot hold anything). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('data directory lock (no database needed)', () => {
  test('a second acquire is refused, naming the holder; release frees it', async () => {
    const dir = await tempDir();
    const lock = await acquireDataDirLock(dir, 'server');
    await lock.update({ url: 'http://127.0.0.1:8080' });
    const written = JSON.parse(await readFile(lockFilePath(dir), 'utf8'));
    assert.equal(written.pid, process.pid);
    assert.equal(written.command, 'server');
    assert.equal(written.url, 'http://127.0.0.1:8080');
    assert.ok(!Number.isNaN(Date.parse(written.started_at)));

    await assert.rejects(acquireDataDirLock(dir, 'key create'), (error: unknown) => {
      assert.ok(error instanceof DataDirInUse);
      assert.equal(error.holder.pid, process.pid);
      assert.match(error.message, new RegExp(`the data directory ${dir} is in use by a latchkey server \\(pid ${process.pid}, listening on http://127\\.0\\.0\\.1:8080\\)`));
      return true;
    });
    assert.deepEqual(await readLockHolder(dir), written);

    await lock.release();
    assert.equal(existsSync(lockFilePath(dir)), false);
    assert.equal(await readLockHolder(dir), null);
    // Nothing left behind but what was there (no temporary or guard files).
    assert.deepEqual(await readdir(dir), []);
    const again = await acquireDataDirLock(dir, 'migrate');
    await again.release();
  });

  test("a lock left by a process that is gone is taken over", async () => {
    const dir = await tempDir();
    const stale = { pid: await deadPid(), started_at: new Date(0).toISOString(), command: 'server', url: 'http://127.0.0.1:1' };
    await writeFile(lockFilePath(dir), JSON.stringify(stale));
    assert.equal(await readLockHolder(dir), null);
    const lock = await acquireDataDirLock(dir, 'server');
    assert.equal(JSON.parse(await readFile(lockFilePath(dir), 'utf8')).pid, process.pid);
    await lock.release();
    assert.equal(existsSync(lockFilePath(dir)), false);
  });

  test('a lock naming our own pid that this process does not hold is stale (a container restarted as pid 1)', async () => {
    const dir = await tempDir();
    await writeFile(lockFilePath(dir), JSON.stringify({ pid: process.pid, started_at: new Date(0).toISOString(), command: 'server' }));
    const lock = await acquireDataDirLock(dir, 'server');
    await lock.release();
  });

  test('a lock held by another live process is refused', async () => {
    const dir = await tempDir();
    const holder = { pid: process.ppid, started_at: new Date().toISOString(), command: 'key create' };
    await writeFile(lockFilePath(dir), JSON.stringify(holder));
    await assert.rejects(acquireDataDirLock(dir), new RegExp(`in use by "latchkey key create" \\(pid ${process.ppid}\\)`));
    // Refusing leaves the holder's lock alone.
    assert.deepEqual(JSON.parse(await readFile(lockFilePath(dir), 'utf8')), holder);
  });

  test('of several processes racing for a stale lock, exactly one wins', async () => {
    const dir = await tempDir();
    await writeFile(lockFilePath(dir), JSON.stringify({ pid: await deadPid(), started_at: new Date(0).toISOString(), command: 'server' }));
    const script = `import { acquireDataDirLock } from ${JSON.stringify(new URL('../../src/db/data-dir-lock.ts', import.meta.url).href)};
      try { await acquireDataDirLock(process.argv[1], 'server'); console.log('won'); setTimeout(() => {}, 1500); }
      catch (error) { console.log(error.code === 'conflict' ? 'refused' : String(error)); }`;
    const outputs = await Promise.all(
      Array.from({ length: 4 }, () => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (chunk) => void (out += chunk));
        return new Promise<string>((resolve) => child.once('exit', () => resolve(out.trim())));
      }),
    );
    assert.deepEqual(outputs.sort(), ['refused', 'refused', 'refused', 'won'], outputs.join(', '));
  });
});

describe('CLI outside a data directory (no database needed)', () => {
  test('a command other than serve or migrate refuses a missing data directory and creates nothing', async () => {
    const cwd = await tempDir();
    const result = spawnSync(process.execPath, [BIN, 'key', 'create', '--name', 'x', '--scopes', 'a', '--json'], {
      cwd,
      // The default ./.latchkey, relative to a folder that has none.
      env: { PATH: process.env.PATH, LATCHKEY_SECRET: TEST_SECRET, NODE_ENV: 'test' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.status, 1, result.stderr);
    assert.equal(result.stdout, '');
    const dataDir = path.join(cwd, '.latchkey');
    assert.equal(
      result.stderr,
      `latchkey: no data directory at ${dataDir}: run latchkey from the project folder, set LATCHKEY_DATA_DIR (or DATABASE_URL), or create it with "latchkey migrate"\n`,
    );
    assert.deepEqual(await readdir(cwd), [], 'nothing created');
  });

  test('a data directory without a database is refused too, and left as it was', async () => {
    const dataDir = path.join(await tempDir(), 'data');
    await mkdir(dataDir);
    const result = spawnSync(process.execPath, [BIN, 'audit', 'verify'], {
      env: { PATH: process.env.PATH, LATCHKEY_DATA_DIR: dataDir, NODE_ENV: 'test' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`^latchkey: no database in ${dataDir}: .*"latchkey migrate"\n$`));
    assert.deepEqual(await readdir(dataDir), [], 'no secret, no lock, no database');
  });

  test('a live holder that does not answer on the control socket: the CLI says so and opens nothing', async () => {
    const dataDir = path.join(await tempDir(), 'data');
    await mkdir(path.join(dataDir, 'pgdata'), { recursive: true });
    await writeFile(path.join(dataDir, 'pgdata', 'PG_VERSION'), '18\n');
    // This test process plays a server that holds the directory but has no socket (yet).
    const lock = await acquireDataDirLock(dataDir, 'server');
    await lock.update({ url: 'http://127.0.0.1:8080' });
    try {
      const result = await runCli('', ['scope', 'create', 'x', '--description', 'd', '--json'], { DATABASE_URL: undefined, LATCHKEY_DATA_DIR: dataDir });
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stdout, '');
      assert.equal(
        result.stderr,
        `latchkey: a latchkey server (pid ${process.pid}, listening on http://127.0.0.1:8080) holds ${dataDir} but does not answer on ${controlSocketPath(dataDir)}: if it is still starting, try again in a moment; otherwise stop it\n`,
      );
      assert.deepEqual((await readdir(path.join(dataDir, 'pgdata'))).sort(), ['PG_VERSION'], 'the database was not opened');
    } finally {
      await lock.release();
    }
  });
});

// Real servers on the embedded database: CI runs the suite on Postgres, where these are skipped
// (the lock logic itself is covered above).
const embedded = process.env.DATABASE_URL ? 'runs on the embedded database only' : false;

describe('one server per embedded data directory', { skip: embedded }, () => {
  let dataDir: string;
  let first: ServerProcess;

  before(async () => {
    dataDir = path.join(await tempDir(), 'data');
    first = await spawnServer('', undefined, { DATABASE_URL: undefined, LATCHKEY_DATA_DIR: dataDir });
  });
  after(async () => {
    await first?.stop();
  });

  test('a second server is refused with one line naming the first, and the first keeps its socket', async () => {
    const holder = JSON.parse(await readFile(lockFilePath(dataDir), 'utf8'));
    assert.equal(holder.pid, first.child.pid);
    const port = await freePort();
    const second = spawnSync(process.execPath, [BIN, 'serve'], {
      env: { PATH: process.env.PATH, LATCHKEY_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LATCHKEY_SECRET: TEST_SECRET, NODE_ENV: 'test' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(second.status, 1, second.stderr);
    assert.equal(
      second.stderr,
      `latchkey: the data directory ${dataDir} is in use by a latchkey server (pid ${first.child.pid}, listening on http://127.0.0.1:${new URL(first.url).port}): stop it first, or give this process its own LATCHKEY_DATA_DIR\n`,
    );
    assert.ok(existsSync(controlSocketPath(dataDir)), 'the first server still has its control socket');
    assert.deepEqual(JSON.parse(await readFile(lockFilePath(dataDir), 'utf8')), holder);
    assert.equal(await fetch(`http://127.0.0.1:${port}/healthz`).then(() => 'answered', () => 'refused'), 'refused');

    // The first server still serves the CLI through its socket.
    const scope = await runCli('', ['scope', 'create', 'after.second', '--description', 'd', '--json'], { DATABASE_URL: undefined, LATCHKEY_DATA_DIR: dataDir });
    assert.equal(scope.code, 0, scope.stderr);
    assert.equal(JSON.parse(scope.stdout).name, 'after.second');
  });

  test('the lock goes with the server, and a server killed without a goodbye leaves a lock that is taken over', async () => {
    assert.equal(await first.stop(), 0);
    assert.equal(existsSync(lockFilePath(dataDir)), false, 'released at close');

    const crashed = await spawnServer('', undefined, { DATABASE_URL: undefined, LATCHKEY_DATA_DIR: dataDir });
    crashed.child.kill('SIGKILL');
    await crashed.stop();
    assert.equal(JSON.parse(await readFile(lockFilePath(dataDir), 'utf8')).pid, crashed.child.pid, 'left behind');

    first = await spawnServer('', undefined, { DATABASE_URL: undefined, LATCHKEY_DATA_DIR: dataDir });
    assert.equal(JSON.parse(await readFile(lockFilePath(dataDir), 'utf8')).pid, first.child.pid);
  });
});
