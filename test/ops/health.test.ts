import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;

before(async () => {
  server = await startTestServer();
});

after(async () => {
  await server?.close();
});

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${server.url}${path}`, { headers });
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The value of one Prometheus sample, or undefined when the series is absent. */
function sample(metrics: string, series: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('health and readiness', () => {
  test('/healthz is 200 while the process is up', async () => {
    const response = await get('/healthz');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await response.json(), { status: 'ok' });
  });

  test('/readyz is 200 when the database answers', async () => {
    const response = await get('/readyz');
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: 'ok', database: 'ok' });
  });

  test('HEAD works for load balancers that probe with it', async () => {
    const response = await fetch(`${server.url}/healthz`, { method: 'HEAD' });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), '');
  });
});

describe('metrics', () => {
  test('/metrics is Prometheus text with request counts by route and status', async () => {
    const read = async () => {
      const response = await get('/metrics');
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      return response.text();
    };
    for (let i = 0; i < 3; i++) assert.equal((await get('/healthz')).status, 200);
    assert.equal((await get('/no-such-page')).status, 404);
    const before = await read();
    assert.match(before, /^# HELP latchkey_http_requests_total /m);
    assert.match(before, /^# TYPE latchkey_http_requests_total counter$/m);
    assert.match(before, /^# TYPE latchkey_http_request_duration_seconds histogram$/m);
    assert.match(before, /^process_cpu_seconds_total /m, 'default process metrics');
    const healthz = sample(before, 'latchkey_http_requests_total{route="/healthz",status="200"}');
    assert.ok(healthz !== undefined && healthz >= 3, `healthz count ${healthz}`);
    assert.ok((sample(before, 'latchkey_http_requests_total{route="other",status="404"}') ?? 0) >= 1, 'unknown paths are one low-cardinality label');
    assert.ok(!before.includes('no-such-page'), 'raw paths never become labels');

    await get('/healthz');
    const after = await read();
    assert.equal(sample(after, 'latchkey_http_requests_total{route="/healthz",status="200"}'), healthz + 1);
  });
});

describe('request ids', () => {
  test('a well-formed X-Request-Id is echoed and logged', async () => {
    const id = 'req-1234.abc_DEF';
    const response = await get('/healthz', { 'x-request-id': id });
    assert.equal(response.headers.get('x-request-id'), id);
    const line = server.logs().split('\n').find((l) => l.includes(`"requestId":"${id}"`));
    assert.ok(line, 'the request log line carries the id');
    assert.equal(JSON.parse(line).route, '/healthz');
  });

  test('a missing X-Request-Id gets a fresh UUID', async () => {
    const a = (await get('/healthz')).headers.get('x-request-id') ?? '';
    const b = (await get('/healthz')).headers.get('x-request-id') ?? '';
    assert.match(a, UUID);
    assert.match(b, UUID);
    assert.notEqual(a, b);
  });

  for (const hostile of ['<script>alert(1)</script>', 'a b', '../../etc/passwd', 'x'.repeat(65), '"quoted"', 'id;rm -rf', '']) {
    test(`a hostile X-Request-Id (${JSON.stringify(hostile.slice(0, 20))}) is replaced`, async () => {
      const response = await get('/healthz', { 'x-request-id': hostile });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('x-request-id') ?? '', UUID);
      if (hostile) assert.ok(!server.logs().includes(hostile), 'never reaches the log');
    });
  }
});

describe('security headers', () => {
  const paths = [
    ['/healthz', 200],
    ['/.well-known/oauth-authorization-server', 200],
    ['/jwks', 200],
    ['/no-such-page', 404],
  ] as const;
  for (const [path, status] of paths) {
    test(`${path} carries the security headers`, async () => {
      const response = await get(path);
      assert.equal(response.status, status);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(response.headers.get('x-frame-options'), 'DENY');
      const csp = response.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /frame-ancestors 'none'/);
      // HSTS only makes sense behind TLS; the test issuer is plain http.
      assert.equal(response.headers.get('strict-transport-security'), null);
      assert.equal(response.headers.get('x-powered-by'), null);
    });
  }

  test('a token endpoint error carries them too', async () => {
    const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.match(response.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  });
});

describe('discovery (RFC 8414)', () => {
  test('both well-known paths serve the same document with every endpoint', async () => {
    const [oauth, openid] = await Promise.all(
      ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'].map(async (path) => {
        const response = await get(path);
        assert.equal(response.status, 200, path);
        assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
        return (await response.json()) as Record<string, unknown>;
      }),
    );
    assert.deepEqual(oauth, openid);
    assert.equal(oauth!.issuer, server.issuer);
    assert.equal(oauth!.token_endpoint, `${server.issuer}/token`);
    assert.equal(oauth!.introspection_endpoint, `${server.issuer}/introspect`);
    assert.equal(oauth!.revocation_endpoint, `${server.issuer}/revoke`);
    assert.equal(oauth!.jwks_uri, `${server.issuer}/jwks`);
    for (const field of ['token_endpoint_auth_methods_supported', 'introspection_endpoint_auth_methods_supported', 'revocation_endpoint_auth_methods_supported']) {
      assert.ok(Array.isArray(oauth![field]) && (oauth![field] as string[]).includes('private_key_jwt'), field);
    }
    assert.ok(Array.isArray(oauth!.scopes_supported));
  });

  test('jwks_uri publishes public ES256 keys only', async () => {
    const response = await get('/jwks');
    assert.equal(response.status, 200);
    const { keys } = (await response.json()) as { keys: Record<string, string>[] };
    assert.ok(keys.length >= 1);
    for (const key of keys) {
      assert.equal(key.kty, 'EC');
      assert.equal(key.alg, 'ES256');
      assert.equal(key.use, 'sig');
      assert.match(key.kid ?? '', /.+/);
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.equal(key[secret], undefined, `no ${secret}`);
    }
  });

  test('scopes_supported follows the scope catalog', async () => {
    const { cliJson } = await import('../helpers/cli.ts');
    await cliJson(server, ['scope', 'create', 'reports:read', '--description', 'Read reports']);
    const deadline = Date.now() + 1_000;
    let scopes: string[] = [];
    while (Date.now() < deadline) {
      scopes = ((await (await get('/.well-known/oauth-authorization-server')).json()) as { scopes_supported: string[] }).scopes_supported;
      if (scopes.includes('reports:read')) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(scopes.includes('reports:read'), `scopes_supported: ${scopes.join(' ')}`);
  });
});
