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
import { startSigningKeySchedule, type SigningKeySchedule } from './signing/key-schedule.ts';
import { ensureSigningKey, loadSigningKeys } from './signing/signing-keys.ts';
import { warnUnlessOutage } from './lib/failure-log.ts';

export interface RunningServer {
  url: string;
  deps: Deps;
  server: Server;
  close(): Promise<void>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Called once, when the first admin is created, with its single-use set-password link (print it; never log it). */
  onFirstAdmin?: (admin: { email: string; link: string; expiresAt: Date }) => void;
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
  const deps = await openDeps(config, log, { holder: 'server', serving: true });
  let oauth: OAuthProvider;
  let metrics: Metrics;
  let common: Middleware;
  let signing: SigningKeySchedule | undefined;
  try {
    await deps.cache.start();
    await deps.limits.connected(2_000);
    await ensureSigningKey(deps);
    const admin = await ensureFirstAdmin(deps);
    if (admin) options.onFirstAdmin?.(admin);
    metrics = createMetrics({ limits: deps.limits, cache: deps.cache, db: deps.db, usage: deps.usage, log });
    deps.metrics = metrics;
    deps.audit.onBatch = (size, seconds) => metrics.auditBatch(size, seconds);
    common = commonMiddleware(deps, metrics);
    const keys = await loadSigningKeys(deps);
    oauth = createOAuthProvider(deps, keys, await listScopeNames(deps), common);
    // Rotation without a restart: the provider and the verifier switch when the keys change.
    signing = startSigningKeySchedule(deps, keys, (changed) => oauth.useKeys(changed));
  } catch (error) {
    await signing?.stop();
    await closeDeps(deps);
    throw error;
  }
  deps.usage.start();
  deps.alerts.onRaised = (kind) => metrics.alert(kind);
  deps.alerts.start();
  deps.junk.onJunk = (type) => metrics.junk(type);
  deps.junk.start();
  deps.guard.onRefused = (reason) => metrics.refused(reason);
  let guardRedisDown = false;
  deps.guard.onSharedError = (err) => {
    if (!guardRedisDown) log.warn({ err }, 'Redis unreachable for endpoint limits; counting failures in this node only');
    guardRedisDown = true;
  };
  deps.guard.onSharedOk = () => {
    if (guardRedisDown) log.info('Redis reachable again for endpoint limits');
    guardRedisDown = false;
  };
  deps.guard.start();
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
    if (key === 'scopes' || key === null) refreshScopes().catch((err) => warnUnlessOutage(log, err, 'could not refresh the scope catalog'));
  });
  const { commands } = options;
  const stopControl = deps.db.kind === 'pglite' && commands ? await startControlSocket(deps, commands) : async () => {};
  const server = createServer(createApp(deps, oauth, metrics, common));
  server.keepAliveTimeout = 65_000;
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(config.PORT, config.HOST, resolve));
  } catch (error) {
    await signing.stop();
    await Promise.all([stopControl(), deps.usage.stop(), deps.alerts.stop(), deps.junk.stop(), deps.guard.stop()]);
    await closeDeps(deps);
    throw error;
  }
  const sweep = () =>
    Promise.all([sweepExpired(deps), recordExpirations(deps)]).catch((err) => warnUnlessOutage(log, err, 'expiry sweep failed'));
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
      await signing.stop();
      stopCheckpoints();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await stopControl();
      await deps.usage.stop();
      await deps.alerts.stop();
      await deps.guard.stop();
      // The last window's junk summary, before the audit writer drains.
      await deps.junk.stop();
      await deps.audit.idle();
      await closeDeps(deps);
    })());
  return { url, deps, server, close };
}
