import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { basicAuth, FORM } from '../helpers/oauth.ts';
import { discover, rememberSecret, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';
import { verifyAs } from '../helpers/verify.ts';

// Issue 9 §1.3: the credential endpoints protect themselves, and junk is summarised in the
// audit log instead of written one row per request.

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, any>;
  text: string;
}

/**
 * A form POST from a chosen local address: loopback is a /8 on Linux, so 127.0.0.2 is
 * another peer as far as the server can tell.
 */
function post(url: string, form: Record<string, string>, headers: Record<string, string> = {}, localAddress = '127.0.0.1', agent?: Agent): Promise<Answer> {
  const body = new URLSearchParams(form).toString();
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', localAddress, agent, headers: { 'content-type': FORM, 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => {
        let parsed: Record<string, any> = {};
        try {
          parsed = JSON.parse(text);
        } catch {
          // Not JSON: asserted on status.
        }
        resolve({ status: res.statusCode!, headers: res.headers, body: parsed, text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Every line of a Prometheus text exposition is a comment, a sample or blank. */
function assertPrometheusText(text: string): void {
  const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.]+(e[+-]?[0-9]+)?|NaN|[+-]Inf)( -?[0-9]+)?$/;
  const comment = /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*$/;
  for (const line of text.split('\n')) if (line !== '') assert.ok(comment.test(line) || sample.test(line), `not Prometheus text: ${line}`);
}

const value = (text: string, series: string) => Number(text.split('\n').find((line) => line.startsWith(`${series} `))?.slice(series.length + 1) ?? 0);

async function newKey(server: TestServer, scope: string): Promise<string> {
  const created = await cliJson<{ key: string }>(server, ['key', 'create', '--name', `k-${randomBytes(4).toString('hex')}`, '--scopes', scope, '--json']);
  rememberSecret(created.key);
  return created.key;
}

describe('junk from one address: 429 with back-off, a handful of audit rows, others unaffected', () => {
  let server: TestServer;
  let meta: Discovery;
  let legit: CreatedClient;
  let key: string;
  let createdScope: string;

  before(async () => {
    server = await startTestServer();
    meta = await discover(server);
    createdScope = await createScope(server);
    legit = await createClient(server, { scopes: [createdScope] });
    key = await newKey(server, createdScope);
  });
  after(() => server.close());

  test("wrong secrets for a real application are summarised under that application's id", async () => {
    const target = await createClient(server, { scopes: [createdScope] });
    for (let i = 0; i < 3; i++) {
      const answer = await post(meta.introspection_endpoint, { token: key }, { authorization: basicAuth(target.client_id, 'lks_wrong') }, '127.0.3.1');
      assert.equal(answer.status, 401, answer.text);
    }
    await server.deps.junk.flush();
    const rows = await server.deps.prisma.auditEvent.findMany({ where: { type: 'client_auth.failed', subjectId: target.client_id } });
    assert.deepEqual(rows.map((row) => (row.data as { count: number }).count), [3]);
  });

  test('3,000 requests with unknown client ids', async () => {
    const metricsBefore = await (await fetch(`${server.url}/metrics`)).text();
    await server.deps.junk.flush();
    const seqBefore = (await server.deps.prisma.auditEvent.aggregate({ _max: { seq: true } }))._max.seq ?? 0n;
    const junkAgent = new Agent({ keepAlive: true, maxSockets: 16 });
    const legitAgent = new Agent({ keepAlive: true, maxSockets: 2 });
    const statuses = new Map<number, number>();
    const junk = async (i: number) => {
      const clientId = `lkc_${randomBytes(11).toString('hex')}`;
      const answer =
        i % 3 === 0
          ? await post(meta.token_endpoint, { grant_type: 'client_credentials', client_id: clientId, client_secret: `lks_${randomBytes(20).toString('hex')}` }, {}, '127.0.0.1', junkAgent)
          : await post(meta.introspection_endpoint, { token: 'whatever' }, { authorization: `Basic ${Buffer.from(`${clientId}:lks_nope`).toString('base64')}` }, '127.0.0.1', junkAgent);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      assert.ok(answer.status === 401 || answer.status === 429, `junk answered ${answer.status}: ${answer.text}`);
      if (answer.status === 429) {
        assert.equal(answer.body.error, 'too_many_requests');
        assert.equal(typeof answer.body.error_description, 'string');
        assert.ok(Number(answer.headers['retry-after']) >= 1, `Retry-After ${answer.headers['retry-after']}`);
        assert.equal(answer.headers['cache-control'], 'no-store');
      }
    };
    const legitimate = async () => {
      const introspection = await post(meta.introspection_endpoint, { token: key }, { authorization: basicAuth(legit.client_id, legit.client_secret!) }, '127.0.0.2', legitAgent);
      assert.equal(introspection.status, 200, introspection.text);
      assert.equal(introspection.body.active, true);
      const token = await post(meta.token_endpoint, { grant_type: 'client_credentials' }, { authorization: basicAuth(legit.client_id, legit.client_secret!) }, '127.0.0.2', legitAgent);
      assert.equal(token.status, 200, token.text);
      rememberSecret(token.body.access_token);
    };
    try {
      for (let batch = 0; batch < 3000; batch += 50) {
        await Promise.all([...Array.from({ length: 50 }, (_, i) => junk(batch + i)), legitimate()]);
      }
    } finally {
      junkAgent.destroy();
      legitAgent.destroy();
    }
    const refused = statuses.get(429) ?? 0;
    assert.equal(refused + (statuses.get(401) ?? 0), 3000);
    // The default: 100 failures a minute per address, then blocked.
    assert.ok(refused >= 2850, `only ${refused} of 3000 refused with 429 (${JSON.stringify([...statuses])})`);

    await server.deps.junk.flush();
    const events = await server.deps.prisma.auditEvent.findMany({ where: { seq: { gt: seqBefore }, type: { not: 'token.issued' } } });
    assert.ok(events.length <= 5, `${events.length} audit rows for junk: ${events.map((e) => e.type).join(', ')}`);
    const counted = events.reduce((sum, event) => sum + Number((event.data as { count?: number }).count ?? 0), 0);
    assert.equal(counted, 3000, 'every junk request is counted in the summaries');
    for (const event of events) {
      assert.equal(event.ip, '127.0.0.1');
      assert.ok(!JSON.stringify(event.data).includes('lks_'), 'no secret in the summary');
    }

    const metricsAfter = await (await fetch(`${server.url}/metrics`)).text();
    assertPrometheusText(metricsAfter);
    const rejections = 'latchkey_limit_rejections_total{reason="failures"}';
    assert.ok(value(metricsAfter, rejections) - value(metricsBefore, rejections) >= refused, 'limit rejections counted');
    const junkSeries = (text: string) => ['client_auth.failed', 'token.failed', 'request.throttled'].reduce((sum, type) => sum + value(text, `latchkey_junk_requests_total{type="${type}"}`), 0);
    assert.equal(junkSeries(metricsAfter) - junkSeries(metricsBefore), 3000);
  });

  test('unknown and malformed keys from a resource server: inactive, summarised, and the resource server is not throttled', async () => {
    await server.deps.junk.flush();
    const seqBefore = (await server.deps.prisma.auditEvent.aggregate({ _max: { seq: true } }))._max.seq ?? 0n;
    const { base62 } = await import('../../src/lib/random.ts');
    const { crc32 } = await import('node:zlib');
    const auth = { authorization: basicAuth(legit.client_id, legit.client_secret!) };
    for (let i = 0; i < 300; i++) {
      // A well-formed key whose id names nothing, or a key with a broken checksum.
      const body = `lk_${randomBytes(6).toString('hex')}_${'D'.repeat(43)}`;
      const token = i % 2 === 0 ? `${body}${base62(crc32(body), 6)}` : `${body}AAAAAA`;
      const answer = await post(meta.introspection_endpoint, { token }, auth, '127.0.0.4');
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.text, '{"active":false}');
    }
    await server.deps.junk.flush();
    const events = await server.deps.prisma.auditEvent.findMany({ where: { seq: { gt: seqBefore } } });
    assert.ok(events.length <= 2, `${events.length} rows`);
    assert.deepEqual(events.map((e) => (e.data as { result: string }).result).sort(), ['MALFORMED', 'NOT_FOUND']);
    assert.equal(events.reduce((sum, e) => sum + (e.data as { count: number }).count, 0), 300);
    for (const event of events) assert.equal(event.actorId, legit.client_id);
  });
});

describe('request limits per peer and per client (LATCHKEY_LIMIT_REQUESTS)', () => {
  let server: TestServer;
  let meta: Discovery;
  let first: CreatedClient;
  let second: CreatedClient;
  let key: string;
  let scope: string;

  before(async () => {
    server = await startTestServer({ env: { LATCHKEY_LIMIT_REQUESTS: '10/1m', LATCHKEY_LIMIT_FAILURES: '3/1m' } });
    meta = await discover(server);
    scope = await createScope(server);
    [first, second] = [await createClient(server, { scopes: [scope] }), await createClient(server, { scopes: [scope] })];
    key = await newKey(server, scope);
  });
  after(() => server.close());

  test('past the limit: 429 with Retry-After and an RFC 6749 body, at /introspect and /token; another client on another address is not affected', async () => {
    const auth = (client: CreatedClient) => ({ authorization: basicAuth(client.client_id, client.client_secret!) });
    for (let i = 0; i < 10; i++) {
      const answer = await post(meta.introspection_endpoint, { token: key }, auth(first));
      assert.equal(answer.status, 200, `request ${i + 1}: ${answer.text}`);
    }
    const over = await post(meta.introspection_endpoint, { token: key }, auth(first));
    assert.equal(over.status, 429, over.text);
    assert.deepEqual(Object.keys(over.body).sort(), ['error', 'error_description']);
    assert.equal(over.body.error, 'too_many_requests');
    assert.ok(Number(over.headers['retry-after']) >= 1 && Number(over.headers['retry-after']) <= 60);
    // The peer is over its limit at /token too.
    const token = await post(meta.token_endpoint, { grant_type: 'client_credentials' }, auth(first));
    assert.equal(token.status, 429, token.text);
    assert.equal(token.body.error, 'too_many_requests');
    assert.equal(token.headers.pragma, 'no-cache');
    assert.ok(Number(token.headers['retry-after']) >= 1);
    // And at /v1/keys/verify, as problem details.
    const verified = await verifyAs(server.url, first, { key });
    assert.equal(verified.status, 429, verified.text);
    assert.equal(verified.body.error, 'too_many_requests');
    assert.match(verified.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.ok(Number(verified.headers.get('retry-after')) >= 1);
    // The same client from another address: over its own per-client limit.
    assert.equal((await post(meta.introspection_endpoint, { token: key }, auth(first), '127.0.0.2')).status, 429);
    // Another client from another address: unaffected.
    const other = await post(meta.introspection_endpoint, { token: key }, auth(second), '127.0.0.3');
    assert.equal(other.status, 200, other.text);
  });

  test('at /token, a client over its limit is refused before a token is signed, whatever address it uses', async () => {
    const third = await createClient(server, { scopes: [scope] });
    const auth = { authorization: basicAuth(third.client_id, third.client_secret!) };
    for (let i = 0; i < 10; i++) {
      const answer = await post(meta.token_endpoint, { grant_type: 'client_credentials' }, auth, `127.0.1.${i + 1}`);
      assert.equal(answer.status, 200, `request ${i + 1}: ${answer.text}`);
      rememberSecret(answer.body.access_token);
    }
    const issuedBefore = await server.deps.prisma.auditEvent.count({ where: { type: 'token.issued', actorId: third.client_id } });
    const over = await post(meta.token_endpoint, { grant_type: 'client_credentials' }, auth, '127.0.1.20');
    assert.equal(over.status, 429, over.text);
    assert.equal(over.body.error, 'too_many_requests');
    assert.ok(Number(over.headers['retry-after']) >= 1);
    assert.equal(over.body.access_token, undefined);
    assert.equal(await server.deps.prisma.auditEvent.count({ where: { type: 'token.issued', actorId: third.client_id } }), issuedBefore);
  });

  test('failed checks of one credential past the limit: still inactive, its audit rows stop (summarised); other keys unaffected', async () => {
    const checker = await createClient(server, { scopes: [scope] });
    const auth = { authorization: basicAuth(checker.client_id, checker.client_secret!) };
    const revoked = await newKey(server, scope);
    const revokedId = revoked.split('_')[1]!;
    await cliJson(server, ['key', 'revoke', revokedId, '--json']);
    // A resource server that keeps presenting a revoked key keeps hearing "inactive".
    for (let i = 0; i < 5; i++) {
      const answer = await post(meta.introspection_endpoint, { token: revoked }, auth, `127.0.2.${i + 1}`);
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.text, '{"active":false}');
    }
    const live = await post(meta.introspection_endpoint, { token: key }, auth, '127.0.2.10');
    assert.equal(live.body.active, true, live.text);
    await server.deps.junk.flush();
    const rows = await server.deps.prisma.auditEvent.findMany({ where: { type: 'api_key.check_failed', subjectId: revokedId }, orderBy: { seq: 'asc' } });
    const counts = rows.map((e) => (e.data as { count?: number }).count);
    assert.deepEqual(counts.slice(0, 3), [undefined, undefined, undefined], 'one row per failed check up to the limit');
    assert.equal(
      counts.slice(3).reduce((sum: number, count) => sum + count!, 0),
      2,
      'past it, summaries (one per address and window) that count the rest',
    );
  });
});
