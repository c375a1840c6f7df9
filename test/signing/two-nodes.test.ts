import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';
import { authAs, postForm } from '../helpers/oauth.ts';
import { runCli, spawnServer, type ServerProcess } from '../helpers/processes.ts';
import { redisSkip, TEST_REDIS_URL } from '../helpers/redis.ts';
import { eventually } from '../helpers/server.ts';

const API = 'https://api.example.test';
// Two processes share one database only on Postgres (the embedded database has one owner).
const needsPostgres = process.env.DATABASE_URL ? false : 'needs DATABASE_URL (two processes on one Postgres)';
const WINDOW = { LATCHKEY_JWKS_CACHE_TTL: '1s' };

// Nodes hear of new keys the way they hear of credential changes, on either transport.
const transports = [
  { name: 'Postgres LISTEN/NOTIFY', env: WINDOW, skip: needsPostgres },
  // A secret of its own: its Redis channel is then its own too.
  { name: 'Redis pub/sub (REDIS_URL)', env: { ...WINDOW, REDIS_URL: TEST_REDIS_URL, LATCHKEY_SECRET: `signing-${randomBytes(12).toString('hex')}` }, skip: needsPostgres || (await redisSkip()) },
];

for (const { name, env: ENV, skip } of transports) {
  describe(`two nodes agree on the signing keys after \`latchkey signing rotate\`, over ${name}`, { skip }, () => {
    let db: TestDatabase;
    let nodeA: ServerProcess;
    let nodeB: ServerProcess;

    async function cliJson(argv: string[]) {
      const result = await runCli(db.url!, [...argv, '--json'], ENV);
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout);
    }
    const jwksKids = async (node: ServerProcess): Promise<string[]> =>
      (((await (await fetch(`${node.url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid).sort());

    before(async () => {
      db = await testDatabase();
      // Both nodes answer for one issuer, as behind a load balancer.
      nodeA = await spawnServer(db.url!, 'https://auth.example.test', ENV);
      nodeB = await spawnServer(db.url!, 'https://auth.example.test', ENV);
    });
    after(async () => {
      const codes = await Promise.all([nodeA?.stop(), nodeB?.stop()]);
      await db?.drop();
      assert.deepEqual(codes, [0, 0], 'both nodes exit cleanly on SIGTERM');
    });

    it('both publish the next key at once, both sign with it after the window, and each accepts the other’s older tokens', async () => {
      await cliJson(['scope', 'create', 'read', '--description', 'read']);
      const rs = await cliJson(['client', 'create', '--name', 'rs', '--scopes', 'read', '--audience', API]);
      const app = await cliJson(['client', 'create', '--name', 'app', '--scopes', 'read', '--audience', API]);
      const tokenOn = async (node: ServerProcess) => {
        const answer = await postForm(`${node.url}/token`, { grant_type: 'client_credentials' }, authAs(app));
        assert.equal(answer.status, 200, answer.text);
        return answer.body.access_token as string;
      };
      const kidOf = (token: string) => decodeProtectedHeader(token).kid;
      const introspectOn = (node: ServerProcess, token: string) => postForm(`${node.url}/introspect`, { token }, authAs(rs));

      // One first key, made once although both nodes started on an empty database.
      const [first] = await jwksKids(nodeA);
      assert.deepEqual(await jwksKids(nodeB), [first]);
      const oldFromA = await tokenOn(nodeA);
      assert.equal(kidOf(oldFromA), first);

      const rotated = await cliJson(['signing', 'rotate']);
      const both = [first, rotated.kid].sort();
      for (const node of [nodeA, nodeB]) await eventually(() => jwksKids(node), (kids) => kids.join() === both.join(), 1_000, 'the next key is not published on every node within 1 s');
      assert.equal(kidOf(await tokenOn(nodeB)), first, 'the next key does not sign yet');

      await sleep(Math.max(0, Date.parse(rotated.activates_at) - Date.now()));
      for (const node of [nodeA, nodeB]) {
        await eventually(() => tokenOn(node), (token) => kidOf(token) === rotated.kid, 3_000, 'a node still signs with the old key 3 s after the activation time');
      }
      // Both stay on the new key, and still publish the old one.
      for (const node of [nodeA, nodeB]) {
        assert.equal(kidOf(await tokenOn(node)), rotated.kid);
        assert.deepEqual(await jwksKids(node), both);
      }
      assert.equal((await introspectOn(nodeB, oldFromA)).body.active, true);
      assert.equal((await introspectOn(nodeA, await tokenOn(nodeB))).body.active, true);

      // One activation, one retirement: the nodes did not each make their own.
      const listed = await cliJson(['signing', 'list']);
      assert.deepEqual(listed.keys.map((key: { state: string }) => key.state).sort(), ['current', 'retired']);
    });
  });
}
