import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { PortalClient } from '../helpers/portal.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// Issue 9 §1.11: /metrics is not public, and the first start prints a single-use link, not a password.

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const NEW_PASSWORD = 'quiet harbour lantern orbit 2026';

let server: TestServer;

before(async () => {
  server = await startTestServer({ env: { LATCHKEY_METRICS_TOKEN: METRICS_TOKEN } });
});
after(() => server.close());

describe('/metrics with LATCHKEY_METRICS_TOKEN', () => {
  test('no token or a wrong one: 401 with the Bearer scheme, and no metrics', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${METRICS_TOKEN}x` }, { authorization: `Basic ${METRICS_TOKEN}` }] as Record<string, string>[]) {
      const answer = await fetch(`${server.url}/metrics`, { headers });
      assert.equal(answer.status, 401);
      assert.match(answer.headers.get('www-authenticate') ?? '', /^Bearer /);
      assert.doesNotMatch(await answer.text(), /latchkey_http_requests_total/);
    }
  });

  test('the right token: Prometheus text', async () => {
    const answer = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    assert.equal(answer.status, 200);
    assert.match(await answer.text(), /^# TYPE latchkey_http_requests_total counter$/m);
  });
});

describe('/metrics without a token: loopback peers only', () => {
  const external = Object.values(networkInterfaces())
    .flat()
    .find((address) => address && !address.internal && address.family === 'IPv4')?.address;

  test('a loopback peer reads it; a peer on another address gets 404', { skip: external ? false : 'no non-loopback IPv4 address on this machine' }, async () => {
    const open = await startTestServer({ env: { HOST: '0.0.0.0' } });
    try {
      assert.equal((await fetch(`http://127.0.0.1:${open.port}/metrics`)).status, 200);
      const outside = await fetch(`http://${external}:${open.port}/metrics`);
      assert.equal(outside.status, 404);
      assert.doesNotMatch(await outside.text(), /latchkey_/);
      // A forged X-Forwarded-For does not make a peer loopback.
      assert.equal((await fetch(`http://${external}:${open.port}/metrics`, { headers: { 'x-forwarded-for': '127.0.0.1' } })).status, 404);
    } finally {
      await open.close();
    }
  });
});

describe('/metrics without a token behind a proxy', () => {
  test('a request the proxy forwarded from loopback, or any request with LATCHKEY_TRUST_PROXY, gets 404', async () => {
    const plain = await startTestServer();
    const proxied = await startTestServer({ env: { LATCHKEY_TRUST_PROXY: 'true' } });
    try {
      assert.equal((await fetch(`${plain.url}/metrics`)).status, 200);
      assert.equal((await fetch(`${plain.url}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.7' } })).status, 404);
      assert.equal((await fetch(`${proxied.url}/metrics`)).status, 404);
    } finally {
      await plain.close();
      await proxied.close();
    }
  });
});

describe('first start: a single-use set-password link, not a password', () => {
  test('the link works once, within 24 hours, and the admin then signs in with the password set through it', async () => {
    const admin = server.firstAdmin;
    assert.ok(admin, 'the first start created the admin and handed over its link');
    assert.equal('password' in admin, false);
    assert.ok(admin.link.startsWith(`${server.issuer}/portal/reset-password/confirm?token=`), admin.link);
    const hours = (admin.expiresAt.getTime() - Date.now()) / 3600_000;
    assert.ok(hours > 23.9 && hours <= 24, `expires in ${hours} h`);

    const browser = new PortalClient(server.url);
    const page = await browser.get(admin.link);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Choose a new password/);
    const token = new URL(admin.link).searchParams.get('token')!;
    const set = await browser.post('/portal/reset-password/confirm', { token, password: NEW_PASSWORD });
    assert.equal(set.status, 303);
    assert.equal(set.headers.get('location'), '/portal/sign-in');

    const signIn = await browser.postForm('/portal/sign-in', '/portal/sign-in', { email: admin.email, password: NEW_PASSWORD });
    assert.equal(signIn.status, 303, 'the admin signs in with the password set through the link');

    const again = await new PortalClient(server.url).get(admin.link);
    assert.equal(again.status, 410, 'the link is single-use');
    // The link never reached the log (the helper's close() also checks every minted secret).
    assert.ok(!server.logs().includes(token.split('.')[1]!));
  });
});
