import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signUpAndSignIn, type PortalClient } from '../helpers/portal.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// DESIGN §2: signed out, /admin leads to sign-in; a developer who is not an admin gets 404 on
// every /admin path, whatever the method.
let server: TestServer;
let developer: PortalClient;

before(async () => {
  server = await startTestServer();
  developer = await signUpAndSignIn(server, null, 'not-an-admin@example.test');
});
after(() => server.close());

const PATHS = ['/admin', '/admin/', '/admin/keys/lk_abc', '/admin/developers/x/suspend', '/admin/audit/export'];

describe('/admin', () => {
  it('leads to sign-in when signed out', async () => {
    for (const path of PATHS) {
      const answer = await fetch(`${server.url}${path}`, { redirect: 'manual' });
      assert.equal(answer.status, 302, path);
      assert.match(answer.headers.get('location')!, /^\/portal\/sign-in/, path);
    }
  });

  it('is 404 for a developer, GET and POST alike, in the portal look', async () => {
    for (const path of PATHS) {
      const page = await developer.get(path);
      assert.equal(page.status, 404, path);
      assert.match(await page.text(), /Page not found/);
      assert.equal((await developer.post(path, { reason: 'x' })).status, 404, `POST ${path}`);
    }
  });

  it('refuses a form post without its CSRF token before anything else', async () => {
    assert.equal((await developer.post('/admin/keys/lk_abc/revoke', {}, { csrf: false })).status, 403);
  });
});
