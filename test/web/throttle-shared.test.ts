import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';
import { PortalClient, signUpAndSignIn, STRONG_PASSWORD } from '../helpers/portal.ts';
import { redisSkip, TEST_REDIS_URL } from '../helpers/redis.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// Two servers share one database only on Postgres (the embedded database has one owner).
const skip = process.env.DATABASE_URL ? await redisSkip() : 'needs DATABASE_URL (two nodes on one Postgres)';

describe('sign-in limits are shared by the nodes of a deployment through Redis (REDIS_URL)', { skip }, () => {
  let database: TestDatabase;
  let nodeA: TestServer;
  let nodeB: TestServer;
  // A deployment of its own: the throttle's Redis keys follow the secret, so earlier runs and
  // other test files (same addresses, same 127.0.0.1) do not count here.
  const env = { REDIS_URL: TEST_REDIS_URL, LATCHKEY_SECRET: `throttle-shared-${randomBytes(12).toString('hex')}` };

  before(async () => {
    database = await testDatabase();
    nodeA = await startTestServer({ database, env });
    nodeB = await startTestServer({ database, env });
  });
  after(async () => {
    await nodeA?.close();
    await nodeB?.close();
    await database?.drop();
  });

  const attempt = (node: TestServer, email: string, password: string) =>
    new PortalClient(node.url).postForm('/portal/sign-in', '/portal/sign-in', { email, password });

  it('3 wrong passwords on node A + 2 on node B: the 6th try is 429 on either node', async () => {
    const email = 'shared-throttle@example.com';
    await signUpAndSignIn(nodeA, null, email);
    for (let i = 0; i < 3; i++) assert.equal((await attempt(nodeA, email, `wrong password ${i}`)).status, 400, `try ${i + 1} on A`);
    for (let i = 3; i < 5; i++) assert.equal((await attempt(nodeB, email, `wrong password ${i}`)).status, 400, `try ${i + 1} on B`);
    for (const node of [nodeB, nodeA]) {
      // Even the right password waits: the block is the deployment's, not one node's.
      const blocked = await attempt(node, email, STRONG_PASSWORD);
      assert.equal(blocked.status, 429, `6th try on ${node === nodeA ? 'A' : 'B'}`);
      assert.ok(Number(blocked.headers.get('retry-after')) > 0);
    }
  });

  it('another account is not affected (the count is per account and address)', async () => {
    const email = 'unaffected@example.com';
    await signUpAndSignIn(nodeB, null, email);
    assert.equal((await attempt(nodeA, email, 'wrong password')).status, 400);
  });
});
