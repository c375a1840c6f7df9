import { createConnection, createServer, type Server } from 'node:net';
import { chmod, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Deps } from '../context.ts';

/**
 * The embedded database belongs to one process. While the server runs, CLI commands are
 * handed to it over a unix socket inside the data directory (owner-only, like the data).
 */
export const controlSocketPath = (dataDir: string) => path.resolve(dataDir, 'control.sock');

interface Reply {
  code: number;
  stdout: string;
  stderr: string;
}

/** What a command gets to print with, and the services it runs on. */
export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  deps?: Deps;
}

/** Runs one CLI command and returns its exit code: the CLI's `main`, passed in by whoever starts the server. */
export type CommandRunner = (argv: string[], io: CommandIo) => Promise<number>;

/** Serves `commands` on the data directory's socket; the caller holds the data directory's lock. */
export async function startControlSocket(deps: Deps, commands: CommandRunner): Promise<() => Promise<void>> {
  const file = controlSocketPath(deps.config.LATCHKEY_DATA_DIR);
  // Left by a process that is gone: whoever holds the lock owns the socket's name.
  await rm(file, { force: true });
  const server: Server = createServer((socket) => {
    let input = '';
    socket.setEncoding('utf8');
    socket.on('data', function onData(chunk: string) {
      input += chunk;
      if (input.length > 1_000_000) return void socket.destroy();
      if (!input.includes('\n')) return;
      // One request per connection: later bytes must never run the command again.
      socket.off('data', onData);
      const reply: Reply = { code: 1, stdout: '', stderr: '' };
      let argv: unknown;
      try {
        argv = JSON.parse(input.slice(0, input.indexOf('\n'))).argv;
      } catch {
        argv = null;
      }
      if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string') || argv[0] === 'serve') {
        socket.end(`${JSON.stringify({ ...reply, stderr: 'latchkey: bad control request\n' })}\n`);
        return;
      }
      void commands(argv, {
        env: {},
        deps,
        stdout: (text) => void (reply.stdout += text),
        stderr: (text) => void (reply.stderr += text),
      }).then((code) => socket.end(`${JSON.stringify({ ...reply, code })}\n`));
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(file, resolve));
  await chmod(file, 0o600);
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Sends argv to a running server; null when none is listening. */
export function forwardToServer(dataDir: string, argv: string[]): Promise<Reply | null> {
  return new Promise((resolve) => {
    const socket = createConnection(controlSocketPath(dataDir));
    let output = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ argv })}\n`));
    socket.on('data', (chunk) => void (output += chunk));
    socket.on('end', () => {
      try {
        resolve(JSON.parse(output) as Reply);
      } catch {
        resolve(null);
      }
    });
    socket.on('error', () => resolve(null));
  });
}
