import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { cli, cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { accessToken, authAs, basicAuth, clientAssertion, clientKeyPair, introspectAs, JWT_BEARER, postAnnouncingBody, postForm } from '../helpers/oauth.ts';
import { discover, rememberSecret, startTestServer, untilCached, type Discovery, type TestServer } from '../helpers/server.ts';

const API = 'https://api.example.test';
const OTHER_API = 'https://other.example.test';

let server: TestServer;
let meta: Discovery;
let scope: string;
let resourceServer: CreatedClient;
let otherResourceServer: CreatedClient;
let app: CreatedClient;

async function newKey(argv: string[] = []): Promise<{ id: string; key: string; expires_at: string | null }> {
  const key = await cliJson<{ id: string; key: string; expires_at: string | null }>(server, ['key', 'create', '--name', 'k', '--scopes', scope, '--audience', API, ...argv]);
  rememberSecret(key.key);
  return key;
}

const introspect = (caller: CreatedClient, token: string, extra: Record<string, string> = {}) => introspectAs(meta.introspection_endpoint, caller, token, extra);

const tokenFor = (client: CreatedClient) => accessToken(meta.token_endpoint, client);

before(async () => {
  server = await startTestServer();
  meta = await discover(server);
  scope = await createScope(server);
  resourceServer = await createClient(server, { scopes: [scope], audiences: [API] });
  otherResourceServer = await createClient(server, { scopes: [scope], audiences: [OTHER_API] });
  app = await createClient(server, { scopes: [scope], audiences: [API] });
});
after(() => server.close());

describe('introspection of API keys', () => {
  it('answers active with the RFC 7662 fields and token_type api_key', async () => {
    const admin = server.deps.config.LATCHKEY_ADMIN_EMAIL;
    const key = await newKey(['--expires-in', '30d', '--owner', admin]);
    const answer = await introspect(resourceServer, key.key);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    const team = await server.deps.prisma.team.findFirstOrThrow({ where: { personalAccount: { email: admin } } });
    assert.deepEqual(Object.keys(answer.body).sort(), ['active', 'aud', 'client_id', 'exp', 'iat', 'iss', 'scope', 'sub', 'token_type']);
    assert.equal(answer.body.active, true);
    assert.equal(answer.body.token_type, 'api_key');
    assert.equal(answer.body.scope, scope);
    assert.equal(answer.body.client_id, key.id);
    assert.equal(answer.body.sub, team.id, 'sub is the owning team');
    assert.equal(answer.body.aud, API);
    assert.equal(answer.body.iss, server.issuer);
    assert.equal(answer.body.exp, Math.floor(Date.parse(key.expires_at!) / 1000));
  });

  it('answers exactly {"active":false} for every kind of bad key, the same for wrong secret and unknown', async () => {
    const live = await newKey();
    const revoked = await newKey();
    await cliJson(server, ['key', 'revoke', revoked.id, '--reason', 'test']);
    const wrongSecret = `lk_${live.id}_${'A'.repeat(43)}`;
    const { parseApiKey } = await import('../../src/credentials/api-key-format.ts');
    const { base62 } = await import('../../src/lib/random.ts');
    const { crc32 } = await import('node:zlib');
    const withChecksum = (body: string) => `${body}${base62(crc32(body), 6)}`;
    const badChecksum = `${live.key.slice(0, -1)}${live.key.endsWith('A') ? 'B' : 'A'}`;
    const cases: Record<string, string> = {
      revoked: revoked.key,
      'wrong secret': withChecksum(wrongSecret),
      unknown: withChecksum(`lk_ZZZZZZZZZZZZ_${'B'.repeat(43)}`),
      'bad checksum': badChecksum,
      malformed: 'lk_nope',
      truncated: live.key.slice(0, 30),
      empty_like: 'lk_',
    };
    assert.ok(parseApiKey(cases['wrong secret']!), 'the wrong-secret key is well-formed');
    const bodies = new Set<string>();
    for (const [name, token] of Object.entries(cases)) {
      const answer = await introspect(resourceServer, token);
      assert.equal(answer.status, 200, name);
      assert.equal(answer.text, '{"active":false}', name);
      assert.equal(answer.headers.get('cache-control'), 'no-store', name);
      bodies.add(`${answer.status} ${answer.text} ${[...answer.headers.keys()].filter((h) => !['date', 'x-request-id', 'content-length'].includes(h)).join(',')}`);
    }
    assert.equal(bodies.size, 1, 'every inactive answer looks the same');
    // The live key still works: a failed check never harms it.
    assert.equal((await introspect(resourceServer, live.key)).body.active, true);
  });

  it('answers the same from a warm cache as from the database, and still audits failures', async () => {
    const key = await newKey(['--expires-in', '30d']);
    const cold = await untilCached(server, `key:${key.id}`, () => introspect(resourceServer, key.key), 'the answer warms the cache');
    const warm = await introspect(resourceServer, key.key);
    assert.equal(warm.text, cold.text);
    assert.deepEqual([...warm.headers.keys()].sort(), [...cold.headers.keys()].sort());
    // A wrong secret for a cached id is refused, and the failure audited like any other.
    const { base62 } = await import('../../src/lib/random.ts');
    const { crc32 } = await import('node:zlib');
    const body = `lk_${key.id}_${'C'.repeat(43)}`;
    const forged = `${body}${base62(crc32(body), 6)}`;
    assert.equal((await introspect(resourceServer, forged)).text, '{"active":false}');
    const audited = await server.deps.prisma.auditEvent.findFirst({ where: { type: 'api_key.check_failed', subjectId: key.id } });
    assert.deepEqual(audited?.data, { result: 'INVALID_SECRET' });
  });

  it('hides a key from a resource server of another audience', async () => {
    const key = await newKey();
    assert.equal((await introspect(otherResourceServer, key.key)).text, '{"active":false}');
  });

  it('expires a key by the clock alone, and audits the expiry once', async () => {
    const key = await newKey(['--expires-in', '60s']);
    assert.equal((await introspect(resourceServer, key.key)).body.active, true);
    const realNow = server.deps.now;
    server.deps.now = () => new Date(Date.now() + 61_000);
    try {
      assert.equal((await introspect(resourceServer, key.key)).text, '{"active":false}');
      const { recordExpirations } = await import('../../src/credentials/expiry-sweep.ts');
      assert.ok((await recordExpirations(server.deps)) >= 1);
      await recordExpirations(server.deps);
      const events = await server.deps.prisma.auditEvent.count({ where: { type: 'api_key.expired', subjectId: key.id } });
      assert.equal(events, 1);
    } finally {
      server.deps.now = realNow;
    }
  });

  it('audits failed checks with the key id and never the secret', async () => {
    const key = await newKey();
    await cliJson(server, ['key', 'revoke', key.id]);
    await introspect(resourceServer, key.key);
    const event = await server.deps.prisma.auditEvent.findFirst({ where: { type: 'api_key.check_failed', subjectId: key.id } });
    assert.ok(event);
    assert.deepEqual(event.data, { result: 'REVOKED' });
    const all = JSON.stringify(await server.deps.prisma.auditEvent.findMany(), (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    assert.ok(!all.includes(key.key.slice(16)), 'no key secret in the audit log');
  });
});

describe('rotation with overlap', () => {
  it('keeps the old key working inside the grace window and not after it', async () => {
    const key = await newKey();
    const rotated = await cliJson<{ id: string; key: string; previous_expires_at: string }>(server, ['key', 'rotate', key.id, '--grace', '60s']);
    rememberSecret(rotated.key);
    assert.notEqual(rotated.id, key.id);
    assert.equal((await introspect(resourceServer, key.key)).body.active, true);
    assert.equal((await introspect(resourceServer, rotated.key)).body.active, true);
    const realNow = server.deps.now;
    server.deps.now = () => new Date(Date.now() + 61_000);
    try {
      assert.equal((await introspect(resourceServer, key.key)).text, '{"active":false}');
      assert.equal((await introspect(resourceServer, rotated.key)).body.active, true);
    } finally {
      server.deps.now = realNow;
    }
  });

  it('gives parallel rotations of one key exactly one successor', async () => {
    const key = await newKey();
    const results = await Promise.all(Array.from({ length: 6 }, () => cli(server, ['key', 'rotate', key.id, '--json'])));
    const winners = results.filter((r) => r.code === 0);
    assert.equal(winners.length, 1, results.map((r) => r.stderr).join(''));
    for (const loser of results.filter((r) => r.code !== 0)) assert.match(loser.stderr, /already rotated/);
    const row = await server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: key.id } });
    assert.equal(row.replacedById, winners[0]!.json().id);
    // Exactly one key was created by the six rotations: the successor.
    const audited = await server.deps.prisma.auditEvent.count({ where: { type: 'api_key.rotated', subjectId: key.id } });
    assert.equal(audited, 1);
  });

  it('refuses to rotate a revoked key', async () => {
    const key = await newKey();
    await cliJson(server, ['key', 'revoke', key.id]);
    const result = await cli(server, ['key', 'rotate', key.id, '--json']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /revoked/);
    assert.equal(result.stdout, '');
  });

  it('rotates client secrets with overlap, one successor for parallel rotations', async () => {
    const client = await createClient(server, { scopes: [scope], audiences: [API] });
    const results = await Promise.all(Array.from({ length: 4 }, () => cli(server, ['client', 'rotate-secret', client.client_id, '--grace', '60s', '--json'])));
    const winners = results.filter((r) => r.code === 0);
    assert.equal(winners.length, 1, results.map((r) => r.stderr).join(''));
    const next = winners[0]!.json<{ client_secret: string }>();
    rememberSecret(next.client_secret);
    // Both the old and the new secret work during the grace window.
    await tokenFor(client);
    await tokenFor({ ...client, client_secret: next.client_secret });
    const realNow = server.deps.now;
    server.deps.now = () => new Date(Date.now() + 61_000);
    try {
      const answer = await postForm(meta.token_endpoint, { grant_type: 'client_credentials' }, authAs(client));
      assert.equal(answer.status, 401);
      assert.equal(answer.body.error, 'invalid_client');
      await tokenFor({ ...client, client_secret: next.client_secret });
    } finally {
      server.deps.now = realNow;
    }
  });
});

describe('introspection of JWT access tokens', () => {
  it('answers active for a token meant for the caller, whatever the hint', async () => {
    const token = await tokenFor(app);
    for (const hint of [undefined, 'access_token', 'refresh_token', 'api_key', 'nonsense']) {
      const answer = await introspect(resourceServer, token, hint ? { token_type_hint: hint } : {});
      assert.equal(answer.status, 200);
      assert.equal(answer.body.active, true, `hint ${hint}`);
      assert.equal(answer.body.token_type, 'Bearer');
      assert.equal(answer.body.client_id, app.client_id);
      assert.equal(answer.body.sub, app.client_id);
      assert.equal(answer.body.aud, API);
      assert.equal(answer.body.scope, scope);
      assert.equal(answer.body.iss, server.issuer);
      assert.equal(answer.body.exp - answer.body.iat, 600);
    }
  });

  it('is inactive for another audience, a tampered token, a foreign key and garbage', async () => {
    const token = await tokenFor(app);
    assert.equal((await introspect(otherResourceServer, token)).text, '{"active":false}');
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'admin' })).toString('base64url')}.${s}`;
    const noneAlg = `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${p}.`;
    const hostileKid = `${Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: '../../etc/passwd', jku: 'https://evil.test/jwks' })).toString('base64url')}.${p}.${s}`;
    for (const bad of [forged, noneAlg, hostileKid, 'a.b.c', 'x'.repeat(5000)]) {
      const answer = await introspect(resourceServer, bad);
      assert.equal(answer.status, 200);
      assert.equal(answer.text, '{"active":false}');
    }
  });
});

describe('audit of failed JWT checks', () => {
  const lastSeq = async () => (await server.deps.prisma.auditEvent.aggregate({ _max: { seq: true } }))._max.seq ?? 0n;
  const failuresAfter = async (seq: bigint) =>
    (await server.deps.prisma.auditEvent.findMany({ where: { type: 'access_token.check_failed', seq: { gt: seq } }, orderBy: { seq: 'asc' } })).map((e) => ({ subject: e.subjectId, actor: e.actorId, data: e.data }));

  it('records expired and revoked tokens by jti, never the token; not forgeries, nor what was not meant for the caller', async () => {
    const token = await tokenFor(app);
    const before = await lastSeq();
    const { jti } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string };
    const [h, p] = token.split('.');
    await introspect(resourceServer, `${h}.${p}.${'A'.repeat(86)}`);
    await introspect(otherResourceServer, token);
    const realNow = server.deps.now;
    server.deps.now = () => new Date(Date.now() + 601_000);
    try {
      assert.equal((await introspect(resourceServer, token)).text, '{"active":false}');
    } finally {
      server.deps.now = realNow;
    }
    assert.equal((await postForm(meta.revocation_endpoint, { token }, authAs(app))).status, 200);
    await introspect(resourceServer, token);
    assert.deepEqual(await failuresAfter(before), [
      { subject: jti, actor: resourceServer.client_id, data: { result: 'EXPIRED' } },
      { subject: jti, actor: resourceServer.client_id, data: { result: 'REVOKED' } },
    ]);
    const all = JSON.stringify(await server.deps.prisma.auditEvent.findMany(), (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    assert.ok(!all.includes(token.split('.')[2]!), 'no token in the audit log');
  });
});

describe('introspection endpoint security', () => {
  it('wants POST (GET is 405) and a form body', async () => {
    const get = await fetch(meta.introspection_endpoint);
    assert.equal(get.status, 405);
    assert.equal(((await get.json()) as { error: string }).error, 'method_not_allowed');
    const json = await fetch(meta.introspection_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basicAuth(resourceServer.client_id, resourceServer.client_secret!) },
      body: '{"token":"x"}',
    });
    assert.equal(json.status, 400);
    assert.equal(((await json.json()) as { error: string }).error, 'invalid_request');
    // Media types are case-insensitive (RFC 9110 §8.3.1).
    const key = await newKey();
    const shouted = await postForm(meta.introspection_endpoint, { token: key.key }, { ...authAs(resourceServer), 'content-type': 'Application/X-WWW-Form-Urlencoded; Charset=UTF-8' });
    assert.equal(shouted.body.active, true, shouted.text);
  });

  it('refuses an oversize body with 413, before reading it, at both endpoints', async () => {
    for (const endpoint of [meta.introspection_endpoint, meta.revocation_endpoint]) {
      const answer = await postAnnouncingBody(endpoint, 100_000);
      assert.equal(answer.status, 413, endpoint);
      assert.equal(answer.body.error, 'invalid_request');
      assert.equal(answer.headers['cache-control'], 'no-store');
      assert.equal(answer.headers.connection, 'close');
    }
  });

  it('authenticates the caller (401 with invalid_client and WWW-Authenticate for Basic)', async () => {
    const key = await newKey();
    const none = await postForm(meta.introspection_endpoint, { token: key.key });
    assert.equal(none.status, 401);
    assert.equal(none.body.error, 'invalid_client');
    const wrong = await postForm(meta.introspection_endpoint, { token: key.key }, { authorization: basicAuth(resourceServer.client_id, 'lks_wrong') });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'invalid_client');
    assert.match(wrong.headers.get('www-authenticate') ?? '', /^Basic/);
    assert.equal(wrong.headers.get('cache-control'), 'no-store');
  });

  it('refuses repeated parameters, two authentication methods and query-string secrets', async () => {
    const auth = authAs(resourceServer);
    const repeated = await postForm(meta.introspection_endpoint, 'token=a&token=b', auth);
    assert.equal(repeated.status, 400);
    assert.equal(repeated.body.error, 'invalid_request');
    const twoMethods = await postForm(meta.introspection_endpoint, { token: 'a', client_id: resourceServer.client_id, client_secret: resourceServer.client_secret! }, auth);
    assert.equal(twoMethods.status, 400);
    assert.equal(twoMethods.body.error, 'invalid_request');
    const query = await postForm(`${meta.introspection_endpoint}?client_secret=${resourceServer.client_secret}`, { token: 'a' }, auth);
    assert.equal(query.status, 400);
    assert.equal(query.body.error, 'invalid_request');
    const missing = await postForm(meta.introspection_endpoint, {}, auth);
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error, 'invalid_request');
  });

  it('accepts client_secret_post and private_key_jwt callers, refusing a replayed assertion', async () => {
    const postClient = await createClient(server, { scopes: [scope], audiences: [API], authMethod: 'client_secret_post' });
    const key = await newKey();
    const viaPost = await postForm(meta.introspection_endpoint, { token: key.key, client_id: postClient.client_id, client_secret: postClient.client_secret! });
    assert.equal(viaPost.body.active, true);
    // A client registered for client_secret_post may not use Basic.
    const viaBasic = await introspect(postClient, key.key);
    assert.equal(viaBasic.status, 401);

    const keys = await clientKeyPair();
    const jwtClient = await createClient(server, { scopes: [scope], audiences: [API], authMethod: 'private_key_jwt', jwks: keys.jwks });
    const assertion = await clientAssertion(keys, jwtClient.client_id, meta.introspection_endpoint);
    const form = { token: key.key, client_assertion_type: JWT_BEARER, client_assertion: assertion };
    const first = await postForm(meta.introspection_endpoint, form);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.active, true);
    const replay = await postForm(meta.introspection_endpoint, form);
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error, 'invalid_client');
  });

  it('refuses a revoked client', async () => {
    const caller = await createClient(server, { scopes: [scope], audiences: [API] });
    const key = await newKey();
    assert.equal((await introspect(caller, key.key)).body.active, true);
    await cliJson(server, ['client', 'revoke', caller.client_id]);
    const answer = await introspect(caller, key.key);
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error, 'invalid_client');
  });

  it('lets a keep-alive connection remember its caller only while the client and secret are unchanged', async () => {
    const caller = await createClient(server, { scopes: [scope], audiences: [API] });
    const key = await newKey();
    // One socket for every request, so each answer below comes over the same connection.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const onConnection = (authorization: string, extra: Record<string, string> = {}) =>
      new Promise<{ status: number; body: Record<string, any>; reused: boolean }>((resolve, reject) => {
        const req = request(meta.introspection_endpoint, { method: 'POST', agent, headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text), reused: req.reusedSocket }));
        });
        req.on('error', reject);
        req.end(new URLSearchParams({ token: key.key, ...extra }).toString());
      });
    const active = async (authorization: string) => {
      const answer = await onConnection(authorization);
      assert.equal(answer.body.active, true, JSON.stringify(answer.body));
      return answer;
    };
    const refused = async (authorization: string) => {
      const answer = await onConnection(authorization);
      assert.equal(answer.status, 401);
      assert.equal(answer.body.error, 'invalid_client');
      return answer;
    };
    try {
      const good = basicAuth(caller.client_id, caller.client_secret!);
      await active(good);
      await active(good);
      // Remembered: the only secret checked now is the key's, not the caller's.
      const keyring = server.deps.keyring;
      const matches = keyring.matches;
      let checks = 0;
      keyring.matches = (...args) => (checks++, matches.apply(keyring, args));
      try {
        assert.equal((await active(good)).reused, true);
      } finally {
        keyring.matches = matches;
      }
      assert.equal(checks, 1, 'the caller was not verified again on its own connection');
      // Another header on the same connection is checked in full.
      assert.equal((await refused(basicAuth(caller.client_id, `${caller.client_secret}x`))).reused, true);
      await active(good);
      const mismatch = await onConnection(good, { client_id: app.client_id });
      assert.equal(mismatch.status, 400);
      assert.equal(mismatch.body.error, 'invalid_request');

      // A graceful rotation: the old secret lasts exactly until its grace ends.
      const next = await cliJson<{ client_secret: string }>(server, ['client', 'rotate-secret', caller.client_id, '--grace', '60s']);
      rememberSecret(next.client_secret);
      const fresh = basicAuth(caller.client_id, next.client_secret);
      await active(fresh);
      await active(good);
      await active(good);
      const realNow = server.deps.now;
      server.deps.now = () => new Date(Date.now() + 61_000);
      try {
        assert.equal((await refused(good)).reused, true);
        await active(fresh);
      } finally {
        server.deps.now = realNow;
      }

      // An emergency rotation and a revocation end a remembered secret at once.
      await active(fresh);
      await active(fresh);
      const emergency = await cliJson<{ client_secret: string }>(server, ['client', 'rotate-secret', caller.client_id, '--grace', '0s']);
      rememberSecret(emergency.client_secret);
      await refused(fresh);
      const latest = basicAuth(caller.client_id, emergency.client_secret);
      await active(latest);
      await active(latest);
      await cliJson(server, ['client', 'revoke', caller.client_id]);
      assert.equal((await refused(latest)).reused, true);
    } finally {
      agent.destroy();
    }
  });
});
