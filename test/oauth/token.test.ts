import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { cli, cliJson } from '../helpers/cli.ts';
import { testDatabase } from '../helpers/database.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { authAs, basicAuth, clientAssertion, clientKeyPair, JWT_BEARER, postAnnouncingBody, postForm, type HttpResult } from '../helpers/oauth.ts';
import { allLogs, assertNoSecretsIn, discover, mintedSecrets, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';

const CLIENT_CREDENTIALS = { grant_type: 'client_credentials' };

let server: TestServer;
let meta: Discovery;
let read: string;
let write: string;
let admin: string;
let basic: CreatedClient;
/** Every access token this file was issued, with the client it was issued to. */
const issued: { clientId: string; token: string }[] = [];

before(async () => {
  server = await startTestServer();
  meta = await discover(server);
  [read, write, admin] = await Promise.all([createScope(server), createScope(server), createScope(server)]);
  basic = await createClient(server, { scopes: [read, write] });
});

after(async () => {
  await server?.close();
});

/** RFC 6749 §5.1: token answers (success and error) must not be cached. */
function assertNoStore(result: HttpResult) {
  assert.equal(result.headers.get('cache-control'), 'no-store', 'Cache-Control');
  assert.equal(result.headers.get('pragma'), 'no-cache', 'Pragma');
}

function assertError(result: HttpResult, status: number, error: string) {
  assert.equal(result.status, status, `status (body: ${result.text})`);
  assert.equal(result.body.error, error, `error (body: ${result.text})`);
  assert.match(result.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(typeof (result.body.error_description ?? ''), 'string');
  assert.equal(result.body.access_token, undefined);
  assertNoStore(result);
}

/** Refused without a token; oidc-provider picks invalid_request or invalid_client depending on the shape. */
function assertRefused(result: HttpResult) {
  const expected = result.status === 401 ? 'invalid_client' : 'invalid_request';
  assert.ok([400, 401].includes(result.status), `status ${result.status}: ${result.text}`);
  assertError(result, result.status, expected);
}

async function tokenWithBasic(client: CreatedClient, params: Record<string, string> = {}) {
  return postForm(meta.token_endpoint, { ...CLIENT_CREDENTIALS, ...params }, authAs(client));
}

/** Asserts a successful token answer and the RFC 9068 shape of its JWT; returns the claims. */
async function assertToken(result: HttpResult, clientId: string, expected: { scope: string; aud: string }): Promise<JWTPayload> {
  assert.equal(result.status, 200, result.text);
  assertNoStore(result);
  assert.equal(result.body.token_type, 'Bearer');
  assert.equal(result.body.expires_in, 600);
  assert.equal(result.body.scope, expected.scope);
  assert.equal(result.body.refresh_token, undefined, 'client_credentials issues no refresh token');
  const token = result.body.access_token as string;
  issued.push({ clientId, token });

  const jwks = (await (await fetch(meta.jwks_uri)).json()) as { keys: { kid: string; d?: string }[] };
  const header = decodeProtectedHeader(token);
  assert.equal(header.typ, 'at+jwt');
  assert.equal(header.alg, 'ES256');
  assert.ok(jwks.keys.some((key) => key.kid === header.kid), 'kid is published in the JWKS');
  assert.ok(jwks.keys.every((key) => key.d === undefined), 'JWKS holds public keys only');

  const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(meta.jwks_uri)), {
    issuer: server.issuer,
    audience: expected.aud,
    typ: 'at+jwt',
    algorithms: ['ES256'],
  });
  assert.equal(protectedHeader.kid, header.kid);
  assert.equal(payload.iss, server.issuer);
  assert.equal(payload.sub, clientId);
  assert.equal(payload.client_id, clientId);
  assert.equal(payload.aud, expected.aud);
  assert.equal(payload.scope, expected.scope);
  assert.match(payload.jti ?? '', /^[A-Za-z0-9_-]{16,}$/);
  assert.equal(typeof payload.iat, 'number');
  assert.ok(Math.abs(payload.iat! - Date.now() / 1000) < 60, 'iat is now');
  assert.equal(payload.exp! - payload.iat!, 600);
  return payload;
}

describe('token endpoint: client authentication methods', () => {
  test('discovery lists the token endpoint and the three client authentication methods', () => {
    assert.equal(meta.issuer, server.issuer);
    assert.equal(meta.token_endpoint, `${server.issuer}/token`);
    assert.deepEqual(
      [...(meta.token_endpoint_auth_methods_supported as string[])].sort(),
      ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    );
    assert.ok((meta.grant_types_supported as string[]).includes('client_credentials'));
  });

  test('client_secret_basic', async () => {
    await assertToken(await tokenWithBasic(basic), basic.client_id, { scope: `${read} ${write}`, aud: server.issuer });
  });

  test('client_secret_post', async () => {
    const client = await createClient(server, { scopes: [read], authMethod: 'client_secret_post' });
    const result = await postForm(meta.token_endpoint, { ...CLIENT_CREDENTIALS, client_id: client.client_id, client_secret: client.client_secret! });
    await assertToken(result, client.client_id, { scope: read, aud: server.issuer });
  });

  test('withholds the token when its audit event cannot be committed', async () => {
    const { audit } = server.deps;
    const record = audit.record;
    audit.record = () => Promise.reject(new Error('audit storage unavailable'));
    try {
      assertError(await tokenWithBasic(basic), 500, 'server_error');
    } finally {
      audit.record = record;
    }
    await assertToken(await tokenWithBasic(basic), basic.client_id, { scope: `${read} ${write}`, aud: server.issuer });
  });

  test('refuses an oversize body with 413, before reading it', async () => {
    const answer = await postAnnouncingBody(meta.token_endpoint, 100_000);
    assert.equal(answer.status, 413);
    assert.equal(answer.body.error, 'invalid_request');
    assert.equal(answer.headers['cache-control'], 'no-store');
    assert.equal(answer.headers.connection, 'close');
  });

  test('a client authenticates only the way it registered; key clients cannot use a secret', async () => {
    // oidc-provider alone would let client_secret_basic and client_secret_post stand in for each other.
    assertError(await postForm(meta.token_endpoint, { ...CLIENT_CREDENTIALS, client_id: basic.client_id, client_secret: basic.client_secret! }), 401, 'invalid_client');
    // An empty Authorization header does not make a body secret count as Basic.
    assertError(await postForm(meta.token_endpoint, { ...CLIENT_CREDENTIALS, client_id: basic.client_id, client_secret: basic.client_secret! }, { authorization: '' }), 401, 'invalid_client');
    const postClient = await createClient(server, { scopes: [read], authMethod: 'client_secret_post' });
    assertError(await postForm(meta.token_endpoint, CLIENT_CREDENTIALS, authAs(postClient)), 401, 'invalid_client');

    const keys = await clientKeyPair();
    const keyClient = await createClient(server, { scopes: [read], authMethod: 'private_key_jwt', jwks: keys.jwks });
    for (const secret of ['digest-only', '', 'lks_x']) {
      assertRefused(await postForm(meta.token_endpoint, { ...CLIENT_CREDENTIALS, client_id: keyClient.client_id, client_secret: secret }));
      assertRefused(await postForm(meta.token_endpoint, CLIENT_CREDENTIALS, { authorization: basicAuth(keyClient.client_id, secret) }));
    }
    // And a secret client cannot authenticate with a key it never registered.
    const assertion = await clientAssertion(keys, basic.client_id, server.issuer);
    assertError(await postForm(meta.token_endpoint, { ...CLIENT_CREDENTIALS, client_assertion_type: JWT_BEARER, client_assertion: assertion }), 401, 'invalid_client');
  });

  test('private_key_jwt, with a one-time assertion', async () => {
    const keys = await clientKeyPair();
    const client = await createClient(server, { scopes: [read, write], authMethod: 'private_key_jwt', jwks: keys.jwks });
    assert.equal(client.client_secret, undefined, 'private_key_jwt clients get no secret');
    const assertion = await clientAssertion(keys, client.client_id, server.issuer);
    const params = { ...CLIENT_CREDENTIALS, client_assertion_type: JWT_BEARER, client_assertion: assertion };
    await assertToken(await postForm(meta.token_endpoint, params), client.client_id, { scope: `${read} ${write}`, aud: server.issuer });

    // RFC 7523 §3: the same jti must not be accepted twice.
    assertError(await postForm(meta.token_endpoint, params), 401, 'invalid_client');

    // The token endpoint URL is an accepted audience too.
    const toEndpoint = await clientAssertion(keys, client.client_id, meta.token_endpoint);
    await assertToken(
      await postForm(meta.token_endpoint, { ...CLIENT_CREDENTIALS, client_assertion_type: JWT_BEARER, client_assertion: toEndpoint }),
      client.client_id,
      { scope: `${read} ${write}`, aud: server.issuer },
    );
  });

  test('private_key_jwt: an assertion signed by another key, or for another audience, is invalid_client', async () => {
    const keys = await clientKeyPair();
    const client = await createClient(server, { scopes: [read], authMethod: 'private_key_jwt', jwks: keys.jwks });
    const stranger = await clientKeyPair();
    stranger.publicJwk.kid = keys.publicJwk.kid;
    for (const assertion of [
      await clientAssertion(stranger, client.client_id, server.issuer),
      await clientAssertion(keys, client.client_id, 'https://somewhere-else.example'),
    ]) {
      const result = await postForm(meta.token_endpoint, { ...CLIENT_CREDENTIALS, client_assertion_type: JWT_BEARER, client_assertion: assertion });
      assertError(result, 401, 'invalid_client');
    }
  });
});

describe('token endpoint: scopes and resources', () => {
  test('no scope requested gives every scope of the client', async () => {
    await assertToken(await tokenWithBasic(basic), basic.client_id, { scope: `${read} ${write}`, aud: server.issuer });
  });

  test('a subset of the client scopes is granted as asked', async () => {
    await assertToken(await tokenWithBasic(basic, { scope: write }), basic.client_id, { scope: write, aud: server.issuer });
  });

  for (const [name, scope] of [
    ['a catalog scope the client was not given', () => admin],
    ['an unknown scope', () => 'no-such-scope'],
    ['an allowed scope together with a refused one', () => `${read} ${admin}`],
  ] as const) {
    test(`${name} is invalid_scope`, async () => {
      assertError(await tokenWithBasic(basic, { scope: scope() }), 400, 'invalid_scope');
    });
  }

  test('an unknown resource is invalid_target', async () => {
    assertError(await tokenWithBasic(basic, { resource: 'https://unknown.example' }), 400, 'invalid_target');
  });

  test('a client with --audience gets that audience by default, and may name it as resource', async () => {
    const client = await createClient(server, { scopes: [read], audiences: ['https://api.example'] });
    await assertToken(await tokenWithBasic(client), client.client_id, { scope: read, aud: 'https://api.example' });
    await assertToken(await tokenWithBasic(client, { resource: 'https://api.example' }), client.client_id, { scope: read, aud: 'https://api.example' });
    assertError(await tokenWithBasic(client, { resource: server.issuer }), 400, 'invalid_target');
  });
});

describe('token endpoint: errors (RFC 6749 §5.2)', () => {
  test('any method but POST is 405 with Allow: POST and an RFC 6749 JSON error, like /introspect', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const response = await fetch(`${meta.token_endpoint}?grant_type=client_credentials`, { method, headers: { authorization: basicAuth(basic.client_id, basic.client_secret!) } });
      const text = await response.text();
      const result: HttpResult = { status: response.status, headers: response.headers, text, body: JSON.parse(text) };
      assertError(result, 405, 'method_not_allowed');
      assert.equal(response.headers.get('allow'), 'POST', method);
      assert.equal(result.body.error_description, 'use POST');
    }
    const introspect = await fetch(meta.introspection_endpoint);
    assert.equal(introspect.status, 405);
    assert.equal(introspect.headers.get('allow'), 'POST');
  });

  test('wrong secret with Basic is 401 invalid_client with a Basic challenge', async () => {
    const result = await postForm(meta.token_endpoint, CLIENT_CREDENTIALS, { authorization: basicAuth(basic.client_id, 'lks_wrong') });
    assertError(result, 401, 'invalid_client');
    assert.match(result.headers.get('www-authenticate') ?? '', /^Basic realm="[^"]+"/);
  });

  test('the right secret with one character changed is refused', async () => {
    const secret = basic.client_secret!;
    const flipped = secret.slice(0, -1) + (secret.endsWith('A') ? 'B' : 'A');
    const result = await postForm(meta.token_endpoint, CLIENT_CREDENTIALS, { authorization: basicAuth(basic.client_id, flipped) });
    assertError(result, 401, 'invalid_client');
  });

  test('unknown client is 401 invalid_client', async () => {
    for (const clientId of ['lkc_AAAAAAAAAAAAAAAAAAAAAA', 'not-a-latchkey-id']) {
      const post = await postForm(meta.token_endpoint, { ...CLIENT_CREDENTIALS, client_id: clientId, client_secret: 'lks_x' });
      assertError(post, 401, 'invalid_client');
      const viaBasic = await postForm(meta.token_endpoint, CLIENT_CREDENTIALS, { authorization: basicAuth(clientId, 'lks_x') });
      assertError(viaBasic, 401, 'invalid_client');
    }
  });

  test('no client authentication at all is refused, and audited (in the window\'s summary)', async () => {
    // RFC 6749 §5.2: "no client authentication included" is invalid_client.
    await server.deps.junk.flush();
    const before = await server.deps.prisma.auditEvent.count({ where: { type: 'token.failed' } });
    assertError(await postForm(meta.token_endpoint, CLIENT_CREDENTIALS), 401, 'invalid_client');
    await server.deps.junk.flush();
    const failed = await server.deps.prisma.auditEvent.findMany({ where: { type: 'token.failed' }, orderBy: { seq: 'desc' }, take: 1 });
    assert.equal(await server.deps.prisma.auditEvent.count({ where: { type: 'token.failed' } }), before + 1);
    const { error, count } = failed[0]!.data as { error: string; count: number };
    assert.deepEqual({ error, count }, { error: 'invalid_client', count: 1 });
    // A client_id alone is a claim without proof.
    assertError(await postForm(meta.token_endpoint, { ...CLIENT_CREDENTIALS, client_id: basic.client_id }), 401, 'invalid_client');
  });

  test('a body oidc-provider cannot read stays invalid_request, even with no client authentication in it', async () => {
    // The invalid_client rewrite is told by the request's structure, not by an error's wording.
    const json = await postForm(meta.token_endpoint, JSON.stringify(CLIENT_CREDENTIALS), { 'content-type': 'application/json' });
    assertError(json, 400, 'invalid_request');
    const malformedBasic = await postForm(meta.token_endpoint, CLIENT_CREDENTIALS, { authorization: 'Bearer x' });
    assertError(malformedBasic, 400, 'invalid_request');
  });

  const auth = () => (authAs(basic));
  const cases: { name: string; body: () => string; headers?: () => Record<string, string>; url?: () => string; status: number; error: string }[] = [
    { name: 'missing grant_type', body: () => '', headers: auth, status: 400, error: 'invalid_request' },
    { name: 'grant_type=password', body: () => 'grant_type=password&username=u&password=p', headers: auth, status: 400, error: 'unsupported_grant_type' },
    { name: 'an unknown grant_type', body: () => 'grant_type=urn:example:nope', headers: auth, status: 400, error: 'unsupported_grant_type' },
    { name: 'repeated grant_type', body: () => 'grant_type=client_credentials&grant_type=client_credentials', headers: auth, status: 400, error: 'invalid_request' },
    { name: 'repeated scope', body: () => `grant_type=client_credentials&scope=${read}&scope=${write}`, headers: auth, status: 400, error: 'invalid_request' },
    {
      name: 'secret in the query string',
      body: () => 'grant_type=client_credentials',
      url: () => `${meta.token_endpoint}?client_id=${basic.client_id}&client_secret=${basic.client_secret}`,
      status: 400,
      error: 'invalid_request',
    },
    {
      name: 'Basic and client_secret_post in one request',
      body: () => `grant_type=client_credentials&client_id=${basic.client_id}&client_secret=${basic.client_secret}`,
      headers: auth,
      status: 400,
      error: 'invalid_request',
    },
  ];
  for (const c of cases) {
    test(`${c.name} is ${c.status} ${c.error}`, async () => {
      assertError(await postForm(c.url?.() ?? meta.token_endpoint, c.body(), c.headers?.()), c.status, c.error);
    });
  }

  const hostile: { name: string; init: () => RequestInit }[] = [
    { name: 'a malformed form body', init: () => ({ body: '%%%&&==%zz&grant_type=%E0%A4%A', headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth() } }) },
    { name: 'a JSON body', init: () => ({ body: JSON.stringify(CLIENT_CREDENTIALS), headers: { 'content-type': 'application/json', ...auth() } }) },
    { name: 'no content type', init: () => ({ body: 'grant_type=client_credentials', headers: { 'content-type': '', ...auth() } }) },
    {
      name: 'a 200 KB body',
      init: () => ({ body: `grant_type=client_credentials&pad=${'a'.repeat(200 * 1024)}`, headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth() } }),
    },
    { name: 'a garbled Authorization header', init: () => ({ body: 'grant_type=client_credentials', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic !!!' } }) },
  ];
  for (const c of hostile) {
    test(`${c.name} is a 4xx OAuth error, never a 500`, async () => {
      const response = await fetch(meta.token_endpoint, { method: 'POST', ...c.init() });
      const text = await response.text();
      assert.ok(response.status >= 400 && response.status < 500, `status ${response.status}: ${text}`);
      const body = JSON.parse(text);
      assert.ok(['invalid_request', 'invalid_client', 'unsupported_grant_type'].includes(body.error), text);
      assert.equal(body.access_token, undefined);
      assert.equal(response.headers.get('cache-control'), 'no-store');
    });
  }

  test('a revoked client is invalid_client (within the one-second invalidation window)', async () => {
    const client = await createClient(server, { scopes: [read] });
    await assertToken(await tokenWithBasic(client), client.client_id, { scope: read, aud: server.issuer });
    const revoked = await cliJson(server, ['client', 'revoke', client.client_id]);
    assert.equal(revoked.client_id, client.client_id);
    // DESIGN §1: every node honours a revocation within one second.
    const deadline = Date.now() + 1_000;
    let result = await tokenWithBasic(client);
    while (result.status === 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      result = await tokenWithBasic(client);
    }
    assertError(result, 401, 'invalid_client');
  });
});

describe('token endpoint: audit trail', () => {
  test('every issued token has its token.issued event, and the chain verifies', async () => {
    assert.ok(issued.length >= 8, `issued ${issued.length} tokens`);
    const events = await server.deps.prisma.auditEvent.findMany({ where: { type: 'token.issued' }, orderBy: { seq: 'asc' } });
    assert.equal(events.length, issued.length, 'one token.issued event per issued token');
    for (const { clientId, token } of issued) {
      const { jti, scope, aud, exp } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      const event = events.find((e) => e.subjectId === jti);
      assert.ok(event, `event for token ${jti}`);
      assert.equal(event.actorType, 'client');
      assert.equal(event.actorId, clientId);
      assert.equal(event.subjectType, 'access_token');
      assert.match(event.requestId ?? '', /.+/);
      assert.deepEqual(event.data, { grantType: 'client_credentials', scope, aud, exp });
    }
    await server.deps.junk.flush();
    const failed = await server.deps.prisma.auditEvent.count({ where: { type: 'token.failed' } });
    assert.ok(failed > 0, 'refused token requests are audited too');

    const verify = await cliJson(server, ['audit', 'verify']);
    assert.equal(verify.ok, true);
    assert.ok(verify.events >= events.length + failed);
  });

  test('no audit event carries a secret or a token', async () => {
    const events = JSON.stringify(await server.deps.prisma.auditEvent.findMany(), (_key, value) => (typeof value === 'bigint' ? String(value) : value));
    const secrets = mintedSecrets();
    assert.ok(secrets.length > 10);
    for (const secret of secrets) assert.ok(!events.includes(secret), `audit log contains ${secret.slice(0, 12)}…`);
  });
});

describe('token endpoint: restart on the same database', () => {
  test('clients, signing keys and issued tokens survive a restart', async () => {
    const database = await testDatabase();
    try {
      const first = await startTestServer({ database });
      let client: CreatedClient;
      let token: string;
      let kids: string[];
      try {
        const scope = await createScope(first);
        client = await createClient(first, { scopes: [scope] });
        const firstMeta = await discover(first);
        const result = await postForm(firstMeta.token_endpoint, CLIENT_CREDENTIALS, authAs(client));
        assert.equal(result.status, 200, result.text);
        token = result.body.access_token;
        kids = ((await (await fetch(firstMeta.jwks_uri)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
      } finally {
        await first.close();
      }

      const second = await startTestServer({ database, port: first.port });
      try {
        const secondMeta = await discover(second);
        const jwks = (await (await fetch(secondMeta.jwks_uri)).json()) as { keys: { kid: string }[] };
        assert.deepEqual(jwks.keys.map((k) => k.kid), kids, 'the same signing key after restart');
        const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(secondMeta.jwks_uri)), { issuer: second.issuer, typ: 'at+jwt' });
        assert.equal(payload.client_id, client.client_id);

        const again = await postForm(secondMeta.token_endpoint, CLIENT_CREDENTIALS, authAs(client));
        assert.equal(again.status, 200, again.text);
        assert.equal(decodeProtectedHeader(again.body.access_token).kid, kids[0]);
        const verify = await cli(second, ['audit', 'verify', '--json']);
        assert.equal(verify.code, 0, verify.stderr);
        assert.equal(verify.json().ok, true);
      } finally {
        await second.close();
      }
    } finally {
      await database.drop();
    }
  });
});

describe('secrets never reach the logs', () => {
  test('no client secret, assertion, Authorization value or access token appears in any log line', () => {
    const logs = allLogs();
    // The capture works: the token requests above were logged.
    assert.match(logs, /"route":"token"/);
    assert.ok(logs.split('\n').filter((line) => line.includes('"route":"token"')).length >= issued.length);
    assert.ok(mintedSecrets().length >= issued.length);
    assertNoSecretsIn(logs);
  });
});
