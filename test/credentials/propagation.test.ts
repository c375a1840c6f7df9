import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';
import { authAs, postForm } from '../helpers/oauth.ts';
import { runCli, spawnServer, type ServerProcess } from '../helpers/processes.ts';
import { redisSkip, TEST_REDIS_URL } from '../helpers/redis.ts';
import { eventually } from '../helpers/server.ts';

const API = 'https://api.example.test';
// Two processes share one database only on Postgres (the embedded database has one owner).
const needsPostgres = process.env.DATABASE_URL ? false : 'needs DATABASE_URL (two processes on one Postgres)';

const transports = [
  { name: 'Postgres LISTEN/NOTIFY', env: {}, skip: needsPostgres },
  // A secret of its own: its Redis channel is then its own too.
  { name: 'Redis pub/sub (REDIS_URL)', env: { REDIS_URL: TEST_REDIS_URL, LATCHKEY_SECRET: `propagation-${randomBytes(12).toString('hex')}` }, skip: needsPostgres || (await redisSkip()) },
];

for (const transport of transports) {
  describe(`revocation reaches every node within one second, over ${transport.name}`, { skip: transport.skip }, () => {
    let db: TestDatabase;
    let nodeA: ServerProcess;
    let nodeB: ServerProcess;

    // The CLI is a third process, on the same transport.
    async function cliJson(argv: string[]) {
      const result = await runCli(db.url!, [...argv, '--json'], transport.env);
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout);
    }

    before(async () => {
      db = await testDatabase();
      // Both nodes answer for one issuer, as behind a load balancer.
      nodeA = await spawnServer(db.url!, 'https://auth.example.test', transport.env);
      nodeB = await spawnServer(db.url!, 'https://auth.example.test', transport.env);
    });
    after(async () => {
      const codes = await Promise.all([nodeA?.stop(), nodeB?.stop()]);
      await db?.drop();
      assert.deepEqual(codes, [0, 0], 'both nodes exit cleanly on SIGTERM');
    });

    it('API keys, client secrets and JWTs: revoked through node A, dead on node B', async () => {
      await cliJson(['scope', 'create', 'read', '--description', 'read']);
      const rs = await cliJson(['client', 'create', '--name', 'rs', '--scopes', 'read', '--audience', API]);
      const app = await cliJson(['client', 'create', '--name', 'app', '--scopes', 'read', '--audience', API]);
      const key = await cliJson(['key', 'create', '--name', 'k', '--scopes', 'read', '--audience', API]);
      const rsAuth = authAs(rs);
      const appAuth = authAs(app);
      const introspectOn = (node: ServerProcess, token: string) => postForm(`${node.url}/introspect`, { token }, rsAuth);

      const token = (await postForm(`${nodeA.url}/token`, { grant_type: 'client_credentials' }, appAuth)).body.access_token as string;
      // Warm both nodes' caches with "active".
      for (const node of [nodeA, nodeB]) {
        assert.equal((await introspectOn(node, key.key)).body.active, true);
        assert.equal((await introspectOn(node, token)).body.active, true);
      }

      const waitInactiveOnB = (credential: string) =>
        eventually(() => introspectOn(nodeB, credential), (answer) => answer.body.active === false, 1_000, 'node B still answers active after 1 s');

      // API key: revoked by the CLI (a third process), seen by node B.
      await cliJson(['key', 'revoke', key.id, '--reason', 'propagation test']);
      await waitInactiveOnB(key.key);

      // JWT: revoked through node A's /revoke.
      assert.equal((await postForm(`${nodeA.url}/revoke`, { token }, appAuth)).status, 200);
      await waitInactiveOnB(token);

      // Client: revoked, its secret stops working on node B.
      const fresh = (await postForm(`${nodeB.url}/token`, { grant_type: 'client_credentials' }, appAuth)).body.access_token as string;
      assert.equal((await introspectOn(nodeB, fresh)).body.active, true);
      await cliJson(['client', 'revoke', app.client_id]);
      await waitInactiveOnB(fresh);
      const refused = await postForm(`${nodeB.url}/token`, { grant_type: 'client_credentials' }, appAuth);
      assert.equal(refused.status, 401);

      // And it stays dead: no node answers active for a few seconds of polling.
      const until = Date.now() + 3_000;
      while (Date.now() < until) {
        for (const node of [nodeA, nodeB]) {
          for (const credential of [key.key, token, fresh]) assert.equal((await introspectOn(node, credential)).text, '{"active":false}');
        }
      }
    });
  });
}
