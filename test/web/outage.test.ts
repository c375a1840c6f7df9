import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';
import { PortalClient, STRONG_PASSWORD, signUpAndSignIn } from '../helpers/portal.ts';
import { cuttableProxy, type CuttableProxy } from '../helpers/proxy.ts';
import { eventually, startTestServer, type TestServer } from '../helpers/server.ts';

// Pages while the database is down (issue 7 §3): a 503 page in the portal's look, never a
// stack trace; service comes back by itself. Needs Postgres (the proxy sits in front of it).
const skip = process.env.DATABASE_URL ? false : 'needs DATABASE_URL (a proxy in front of Postgres)';

let database: TestDatabase;
let proxy: CuttableProxy;
let server: TestServer;
let portal: PortalClient;

before(async () => {
  if (skip) return;
  database = await testDatabase();
  proxy = await cuttableProxy(database.url!, 5432);
  server = await startTestServer({ database: { ...database, url: proxy.url } });
  portal = await signUpAndSignIn(server, null, 'outage@example.test');
});

after(async () => {
  await server?.close();
  await proxy?.close();
  await database?.drop();
});

describe('pages while the database is unreachable', { skip }, () => {
  it('a signed-in page answers 503 with the error page, then recovers by itself', async () => {
    assert.equal((await portal.get('/portal/keys')).status, 200);
    proxy.cut();
    const down = await portal.get('/portal/keys');
    assert.equal(down.status, 503);
    assert.equal(down.headers.get('retry-after'), '30');
    assert.match(down.headers.get('content-type') ?? '', /^text\/html/);
    const body = await down.text();
    assert.match(body, /Temporarily unavailable/);
    assert.doesNotMatch(body, /\bat .+\(|Prisma|ECONNREFUSED|stack/i, 'nothing internal');

    // A form post (sign-in) too: its CSRF check passes, then the database is needed.
    const post = await new PortalClient(server.url).postForm('/portal/sign-in', '/portal/sign-in', { email: 'outage@example.test', password: STRONG_PASSWORD });
    assert.equal(post.status, 503);

    proxy.restore();
    await eventually(() => portal.get('/portal/keys'), (answer) => answer.status === 200, 10_000, 'the page did not recover');
  });
});
