import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ensureFirstAdmin } from './accounts/admins.ts';
import { createApp } from './app.ts';
import { startAuditCheckpoints } from './audit/checkpoints.ts';
import { startControlSocket, type CommandRunner } from './cli/control-socket.ts';
import { configWarnings, loadConfig } from './config.ts';
import { closeDeps, createLogger, openDeps } from './deps.ts';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import type { Deps } from './context.ts';
import { recordExpirations } from './credentials/expiry-sweep.ts';
import { listScopeNames } from './credentials/scopes.ts';
import { commonMiddleware } from './http/common.ts';
import { createMetrics, type Metrics } from './http/metrics.ts';
import { sweepExpired } from './oauth/adapter.ts';
import { createOAuthProvider, type OAuthProvider } from './oauth/provider.ts';
import { ensureSigningKey, loadSigningJwks } from './signing/signing-keys.ts';

export interface RunningServer {
  url: string;
  deps: Deps;
  server: Server;
  close(): Promise<void>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Called once, when the first admin is created, with the generated password. */
  onFirstAdmin?: (admin: { email: string; password?: string }) => void;
  /**
   * The CLI's command runner (`main` from src/cli/main.ts), passed in so that the server does
   * not import the CLI. On the embedded database it is served on the data directory's control
   * socket; without it no control socket runs.
   */
  commands?: CommandRunner;
}

export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  const config = loadConfig(options.env ?? process.env);
  const log = options.log ?? createLogger(config);
  const deps = await openDeps(config, log, { holder: 'server' });
  let oauth: OAuthProvider;
  let metrics: Metrics;
  let common: Middleware;
  try {
    await deps.cache.start();
    await ensureSigningKey(deps);
    const admin = await ensureFirstAdmin(deps);
    if (admin) options.onFirstAdmin?.(admin);
    metrics = createMetrics();
    common = commonMiddleware(deps, metrics);
    oauth = createOAuthProvider(deps, await loadSigningJwks(deps), await listScopeNames(deps), common);
  } catch (error) {
    await closeDeps(deps);
    throw error;
  }
  deps.usage.start();
  // Scope catalog changes reach discovery on every node. Only the latest refresh may apply
  // its result (two can race), and one runs whenever the listener may have missed messages.
  let refreshes = 0;
  const refreshScopes = async () => {
    const refresh = ++refreshes;
    const names = await listScopeNames(deps);
    if (refresh !== refreshes) return;
    oauth.scopes.clear();
    for (const name of names) oauth.scopes.add(name);
  };
  deps.cache.subscribe((key) => {
    if (key === 'scopes' || key === null) refreshScopes().catch((err) => log.warn({ err }, 'could not refresh the scope catalog'));
  });
  const { commands } = options;
  const stopControl = deps.db.kind === 'pglite' && commands ? await startControlSocket(deps, commands) : async () => {};
  const server = createServer(createApp(deps, oauth, metrics, common));
  server.keepAliveTimeout = 65_000;
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(config.PORT, config.HOST, resolve));
  } catch (error) {
    await Promise.all([stopControl(), deps.usage.stop()]);
    await closeDeps(deps);
    throw error;
  }
  const sweep = () =>
    Promise.all([sweepExpired(deps), recordExpirations(deps)]).catch((err) => log.warn({ err }, 'expiry sweep failed'));
  const sweeper = setInterval(() => void sweep(), 60_000);
  sweeper.unref();
  const stopCheckpoints = startAuditCheckpoints(deps);

  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  // A second server or a CLI refused by the lock names where this one listens.
  const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;
  await deps.db.lock?.update({ url: `http://${host}:${port}` }).catch((err) => log.warn({ err }, 'could not record the address in the lock file'));
  log.info({ url, issuer: config.LATCHKEY_ISSUER, database: deps.db.kind }, 'latchkey listening');
  for (const warning of configWarnings(config)) log.warn(warning);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      clearInterval(sweeper);
      stopCheckpoints();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await stopControl();
      await deps.usage.stop();
      await deps.audit.idle();
      await closeDeps(deps);
    })());
  return { url, deps, server, close };
}
