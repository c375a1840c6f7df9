import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { Redis } from 'ioredis';
import { suspendAccount, suspendTeam, unsuspendAccount, unsuspendTeam } from '../../src/accounts/suspension.ts';
import type { Actor } from '../../src/actor.ts';
import { loadConfig } from '../../src/config.ts';
import type { Deps } from '../../src/context.ts';
import { createApiKey } from '../../src/credentials/api-keys.ts';
import { createClient, revokeClientTokens } from '../../src/credentials/clients.ts';
import { createScope } from '../../src/credentials/scopes.ts';
import { createAdmin } from '../../src/accounts/admins.ts';
import { closeDeps, createLogger, openDeps } from '../../src/deps.ts';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';
import { authAs, postForm } from '../helpers/oauth.ts';
import { runCli, spawnServer, type ServerProcess } from '../helpers/processes.ts';
import { redisSkip, TEST_REDIS_URL } from '../helpers/redis.ts';
import { eventually, rememberSecret, TEST_SECRET } from '../helpers/server.ts';

const API = 'https://api.example.test';
const ADMIN: Actor = { type: 'cli' };
const INVALIDATION_CHANNEL = 'latchkey_invalidate';
// Two processes share one database only on Postgres (the embedded database has one owner).
const needsPostgres = process.env.DATABASE_URL ? false : 'needs DATABASE_URL (two processes on one Postgres)';

const transports = [
  { name: 'Postgres LISTEN/NOTIFY', env: {} as NodeJS.ProcessEnv, skip: needsPostgres },
  // A secret of its own: its Redis channel is then its own too.
  { name: 'Redis pub/sub (REDIS_URL)', env: { REDIS_URL: TEST_REDIS_URL, LATCHKEY_SECRET: `suspension-${randomBytes(12).toString('hex')}` } as NodeJS.ProcessEnv, skip: needsPostgres || (await redisSkip()) },
];

for (const transport of transports) {
  describe(`suspension reaches every node within one second, over ${transport.name}`, { skip: transport.skip }, () => {
    let db: TestDatabase;
    let nodeA: ServerProcess;
    let nodeB: ServerProcess;
    // A third party that changes things (as the CLI or an admin page on another node would),
    // in this process so that it can mint many keys quickly.
    let operator: Deps;
    let rs: { client_id: string; client_secret?: string };

    const introspectOn = (node: ServerProcess, token: string) => postForm(`${node.url}/introspect`, { token }, authAs(rs));
    const isActive = async (node: ServerProcess, token: string) => (await introspectOn(node, token)).body.active as boolean;
    const within1s = (node: ServerProcess, credential: string, active: boolean) =>
      eventually(() => isActive(node, credential), (answer) => answer === active, 1_000, `${node.url} still answers active=${!active} after 1 s`);
    const tokenOn = (node: ServerProcess, app: { client_id: string; client_secret?: string }) => postForm(`${node.url}/token`, { grant_type: 'client_credentials' }, authAs(app));

    /** Every invalidation message announced while `change` runs (and shortly after). */
    async function announced(change: () => Promise<unknown>): Promise<string[]> {
      const heard: string[] = [];
      let stop: () => Promise<void>;
      if (transport.env.REDIS_URL) {
        const redis = new Redis(TEST_REDIS_URL);
        redis.on('message', (_channel: string, message: string) => heard.push(message));
        await redis.subscribe(`${INVALIDATION_CHANNEL}:${operator.keyring.deploymentId}`);
        stop = async () => void redis.disconnect();
      } else {
        const client = new pg.Client({ connectionString: db.url! });
        await client.connect();
        client.on('notification', (message) => heard.push(message.payload ?? ''));
        await client.query(`LISTEN ${INVALIDATION_CHANNEL}`);
        stop = () => client.end();
      }
      try {
        await change();
        await new Promise((resolve) => setTimeout(resolve, 300));
      } finally {
        await stop();
      }
      return heard;
    }

    before(async () => {
      db = await testDatabase();
      const env = { DATABASE_URL: db.url!, LATCHKEY_SECRET: TEST_SECRET, NODE_ENV: 'test', LOG_LEVEL: 'warn', ...transport.env };
      // Migrates the database, as the first node would.
      operator = await openDeps(loadConfig(env), createLogger(loadConfig(env)));
      await operator.cache.start();
      // Both nodes answer for one issuer, as behind a load balancer.
      [nodeA, nodeB] = await Promise.all([spawnServer(db.url!, 'https://auth.example.test', transport.env), spawnServer(db.url!, 'https://auth.example.test', transport.env)]);
      await createScope(operator, { name: 'read', description: 'read' }, ADMIN);
      rs = await createClient(operator, { name: 'rs', scopes: ['read'], audiences: [API] }, ADMIN);
      rememberSecret(rs.client_secret);
    });
    after(async () => {
      const codes = await Promise.all([nodeA?.stop(), nodeB?.stop()]);
      if (operator) await closeDeps(operator);
      await db?.drop();
      assert.deepEqual(codes, [0, 0], 'both nodes exit cleanly on SIGTERM');
    });

    it("a team's keys and applications: inactive on both nodes within 1 s by one message, restored exactly", async () => {
      const owner = await createAdmin(operator, { email: 'owner@example.test', password: 'a long enough password 1' }, ADMIN);
      const teamId = (await operator.prisma.team.findFirstOrThrow({ where: { personalAccountId: owner.id } })).id;
      // Many keys: all of them must go with one invalidation message, not one each.
      const keys = [];
      for (let i = 0; i < 100; i++) keys.push(await createApiKey(operator, { name: `k${i}`, scopes: ['read'], audiences: [API], teamId }, ADMIN));
      for (const key of keys) rememberSecret(key.key);
      const [kept, revokedMeanwhile] = keys;
      const app = await createClient(operator, { name: 'app', scopes: ['read'], audiences: [API], teamId }, ADMIN);
      rememberSecret(app.client_secret);
      const token = (await tokenOn(nodeA, app)).body.access_token as string;
      // Warm both nodes' caches with "active": every key on node B, the sample ones on both.
      for (const key of keys) assert.equal(await isActive(nodeB, key.key), true);
      for (const node of [nodeA, nodeB]) {
        assert.equal(await isActive(node, kept!.key), true);
        assert.equal(await isActive(node, token), true);
        assert.equal((await postForm(`${node.url}/introspect`, { token: kept!.key }, authAs(app))).status, 200, 'the application authenticates as a caller');
      }

      const messages = await announced(() => suspendTeam(operator, ADMIN, teamId, 'propagation test'));
      assert.deepEqual([...new Set(messages)], [`team:${teamId}`], 'one cache group, not one message per credential');
      for (const node of [nodeA, nodeB]) {
        await within1s(node, kept!.key, false);
        await within1s(node, token, false);
      }
      // The one message dropped every key of the team on node B.
      for (const key of keys) assert.equal((await introspectOn(nodeB, key.key)).text, '{"active":false}');
      for (const node of [nodeA, nodeB]) {
        const refused = await tokenOn(node, app);
        assert.equal(refused.status, 401, 'token endpoint: invalid_client');
        assert.equal(refused.body.error, 'invalid_client');
        assert.equal((await postForm(`${node.url}/introspect`, { token: kept!.key }, authAs(app))).status, 401, 'client authentication at /introspect refused');
        assert.equal((await postForm(`${node.url}/revoke`, { token }, authAs(app))).status, 401, 'client authentication at /revoke refused');
      }

      // Revoked during the suspension, through the CLI (another process): stays revoked after.
      const revoked = await runCli(db.url!, ['key', 'revoke', revokedMeanwhile!.id, '--reason', 'leaked', '--json'], transport.env);
      assert.equal(revoked.code, 0, revoked.stderr);

      const unsuspended = await runCli(db.url!, ['team', 'unsuspend', teamId, '--reason', 'cleared', '--json'], transport.env);
      assert.equal(unsuspended.code, 0, unsuspended.stderr);
      assert.deepEqual(JSON.parse(unsuspended.stdout), { team_id: teamId, status: 'active' });
      for (const node of [nodeA, nodeB]) {
        await within1s(node, kept!.key, true);
        await within1s(node, token, true);
        assert.equal(await isActive(node, revokedMeanwhile!.key), false);
        assert.equal((await tokenOn(node, app)).status, 200, 'the application gets tokens again');
      }
      for (const key of keys.slice(2)) assert.equal(await isActive(nodeB, key.key), true);

      // A developer's suspension holds back their personal team's credentials the same way.
      await suspendAccount(operator, ADMIN, owner.id, 'person suspended');
      await within1s(nodeB, kept!.key, false);
      assert.equal((await tokenOn(nodeB, app)).status, 401);
      await unsuspendAccount(operator, ADMIN, owner.id, 'person cleared');
      await within1s(nodeB, kept!.key, true);
      assert.equal((await tokenOn(nodeB, app)).status, 200);

      // Repeats: refused, one event per real change.
      const repeat = await runCli(db.url!, ['team', 'unsuspend', teamId, '--reason', 'again', '--json'], transport.env);
      assert.notEqual(repeat.code, 0);
      assert.match(repeat.stderr, /team is not suspended/);
      await assert.rejects(unsuspendTeam(operator, ADMIN, teamId, 'again'));
      assert.equal(await operator.prisma.auditEvent.count({ where: { type: { in: ['team.suspended', 'team.unsuspended'] }, subjectId: teamId } }), 2);
    });

    it("revoking an application's tokens: earlier tokens inactive on both nodes within 1 s, the next one active", async () => {
      const app = await createClient(operator, { name: 'tokens', scopes: ['read'], audiences: [API] }, ADMIN);
      rememberSecret(app.client_secret);
      const older = (await tokenOn(nodeA, app)).body.access_token as string;
      for (const node of [nodeA, nodeB]) assert.equal(await isActive(node, older), true);
      const out = await runCli(db.url!, ['client', 'revoke-tokens', app.client_id, '--reason', 'incident', '--json'], transport.env);
      assert.equal(out.code, 0, out.stderr);
      for (const node of [nodeA, nodeB]) await within1s(node, older, false);
      const next = (await tokenOn(nodeB, app)).body.access_token as string;
      for (const node of [nodeA, nodeB]) assert.equal(await isActive(node, next), true);
      // Any other token of the client, cached or not, went too.
      await revokeClientTokens(operator, ADMIN, app.client_id, 'again, later');
      for (const node of [nodeA, nodeB]) await within1s(node, next, false);
      assert.equal(await operator.prisma.auditEvent.count({ where: { type: 'client.tokens_revoked', subjectId: app.client_id } }), 2);
    });
  });
}
