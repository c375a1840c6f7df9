import { setFlagsFromString } from 'node:v8';
import type { CommandRunner } from './cli/control-socket.ts';
import { ConfigError, loadConfig } from './config.ts';
import { DataDirInUse, readLockHolder } from './db/data-dir-lock.ts';
import { describeFailure } from './lib/errors.ts';

/**
 * A node stays under 300 MiB resident (DESIGN §4). V8 chooses how far the old generation may
 * grow before its next full collection, up to several times what the last one left: under
 * token load a ~80 MiB live heap grew to 200 MiB of mostly garbage, and the node to 330–410 MiB
 * resident. Collecting once it is half again the live size kept the node at ~260 MiB, with no
 * measurable cost in token throughput (bench/token.ts). Unlike a heap limit, this never turns
 * a larger live set into an out-of-memory crash: such a node only collects more often. V8 reads
 * the factor at every collection, so setting it here covers `npm start`, the image and the
 * bench alike.
 */
function keepHeapSmall(): void {
  setFlagsFromString('--heap-growing-percent=50');
}

/**
 * `latchkey serve`: start, and stop gracefully on SIGTERM/SIGINT. `commands` (the CLI's runner)
 * serves CLI commands from other processes on the embedded database's control socket.
 */
export async function serve(options: { commands?: CommandRunner } = {}): Promise<void> {
  keepHeapSmall();
  let running;
  let databaseUrl: string | undefined;
  try {
    // Validate before loading the protocol engine, so a bad variable is the only line printed.
    const config = loadConfig();
    databaseUrl = config.DATABASE_URL;
    // Refused before the protocol engine loads too (the lock itself is taken when the database opens).
    const holder = config.DATABASE_URL ? null : await readLockHolder(config.LATCHKEY_DATA_DIR);
    if (holder) throw new DataDirInUse(config.LATCHKEY_DATA_DIR, holder);
    const { startServer } = await import('./server.ts');
    running = await startServer({
      commands: options.commands,
      onFirstAdmin: ({ email, link, expiresAt }) => {
        // Shown once on the console, deliberately not through the logger; a single-use link
        // that expires, not a password that lives on in every log collector.
        process.stdout.write(
          `\nFirst start: admin account ${email} created.\nSet its password with this single-use link (valid until ${expiresAt.toISOString()}):\n${link}\n\n`,
        );
      },
    });
  } catch (error) {
    process.stderr.write(`latchkey: ${error instanceof ConfigError ? error.message : describeFailure(error, databaseUrl)}\n`);
    process.exit(1);
  }
  const { close, deps } = running;
  const shutdown = (signal: string) => {
    deps.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    close().then(
      () => process.exit(0),
      (error) => {
        deps.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
