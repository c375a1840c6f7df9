import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { globalAgent, createServer as createHttpsServer } from 'node:https';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader, importJWK, SignJWT } from 'jose';
import { changeCredentials } from '../../src/lib/invalidation.ts';
import { loadSigningKeys } from '../../src/signing/signing-keys.ts';
import { cli } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { accessToken, clientAssertion, clientKeyPair, introspectAs, JWT_BEARER, postForm, type ClientKeyPair } from '../helpers/oauth.ts';
import { discover, rememberSecret, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';

// Issue 9 §1.11, the security review's findings that were still open: each test here failed
// before its fix.

let server: TestServer;
let meta: Discovery;
let scope: string;
let keys: ClientKeyPair;
let keyClient: CreatedClient;
let secretClient: CreatedClient;

before(async () => {
  server = await startTestServer();
  meta = await discover(server);
  scope = await createScope(server);
  keys = await clientKeyPair();
  keyClient = await createClient(server, { scopes: [scope], authMethod: 'private_key_jwt', jwks: keys.jwks });
  secretClient = await createClient(server, { scopes: [scope] });
});
after(() => server.close());

const viaAssertion = (url: string, assertion: string, extra: Record<string, string> = {}) =>
  postForm(url, { client_assertion_type: JWT_BEARER, client_assertion: assertion, ...extra });

/** An assertion with an exact `exp` (epoch seconds), which jose's helpers would not write. */
async function assertionExpiring(exp: number, audience = meta.token_endpoint): Promise<string> {
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: keys.publicJwk.kid })
    .setIssuer(keyClient.client_id)
    .setSubject(keyClient.client_id)
    .setAudience(audience)
    .setJti(crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(keys.privateKey);
  rememberSecret(assertion);
  return assertion;
}

describe('client assertions at /token: the same 10-minute cap as at /introspect', () => {
  test('an exp ten years ahead is invalid_client, and leaves no long-lived replay record', async () => {
    const exp = Math.floor(Date.now() / 1000) + 10 * 365 * 86400;
    const answer = await viaAssertion(meta.token_endpoint, await assertionExpiring(exp), { grant_type: 'client_credentials' });
    assert.equal(answer.status, 401, answer.text);
    assert.equal(answer.body.error, 'invalid_client');
    const longLived = await server.deps.prisma.oidcPayload.count({ where: { model: 'ReplayDetection', expiresAt: { gt: new Date(Date.now() + 3600_000) } } });
    assert.equal(longLived, 0);
  });

  test('exp=9e12 (past any date) is invalid_client at every endpoint, never a 500', async () => {
    for (const url of [meta.token_endpoint, meta.introspection_endpoint, meta.revocation_endpoint]) {
      const answer = await viaAssertion(url, await assertionExpiring(9e12, server.issuer), { grant_type: 'client_credentials', token: 'x' });
      assert.equal(answer.status, 401, `${url}: ${answer.text}`);
      assert.equal(answer.body.error, 'invalid_client');
    }
  });

  test('an assertion within the cap still works', async () => {
    const answer = await viaAssertion(meta.token_endpoint, await clientAssertion(keys, keyClient.client_id, meta.token_endpoint, { expiresIn: '5m' }), { grant_type: 'client_credentials' });
    assert.equal(answer.status, 200, answer.text);
  });
});

describe('JWT introspection refuses lifetimes beyond LATCHKEY_ACCESS_TOKEN_TTL', () => {
  test('a token signed with our key but living 10 years is inactive; a real one is active', async () => {
    const real = await accessToken(meta.token_endpoint, secretClient);
    assert.equal((await introspectAs(meta.introspection_endpoint, secretClient, real)).body.active, true);
    // The same claims, re-signed by the server's own key with exp ten years after iat.
    const claims = decodeJwt(real);
    const header = decodeProtectedHeader(real);
    const jwk = (await loadSigningKeys(server.deps)).published.find((key) => key.kid === header.kid)!;
    const forged = await new SignJWT({ ...claims, exp: claims.iat! + 10 * 365 * 86400, jti: `${claims.jti}-long` })
      .setProtectedHeader(header as never)
      .sign(await importJWK(jwk, header.alg));
    rememberSecret(forged);
    assert.equal((await introspectAs(meta.introspection_endpoint, secretClient, forged)).text, '{"active":false}');
  });
});

describe('DPoP: not offered, so not advertised', () => {
  test('discovery lists no DPoP algorithms, and a DPoP header does not change the token', async () => {
    assert.equal(meta.dpop_signing_alg_values_supported, undefined);
    const answer = await postForm(meta.token_endpoint, { grant_type: 'client_credentials' }, {
      authorization: `Basic ${Buffer.from(`${secretClient.client_id}:${secretClient.client_secret}`).toString('base64')}`,
      dpop: 'not.a.proof',
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.token_type, 'Bearer');
    assert.equal((decodeJwt(answer.body.access_token) as { cnf?: unknown }).cnf, undefined);
  });
});

/** A TCP listener that counts connections and closes each at once (a failing jwks_uri host). */
async function countingListener(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const listener: Server = createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as { port: number };
  return { port, connections: () => count, close: () => new Promise((resolve) => listener.close(() => resolve())) };
}

describe('jwks_uri SSRF', () => {
  for (const uri of [
    'https://169.254.169.254/latest/meta-data/jwks',
    'https://127.0.0.1/jwks',
    'https://10.1.2.3/jwks',
    'https://192.168.0.10/jwks',
    'https://[::1]/jwks',
    'https://[fe80::1]/jwks',
    'https://[fd00::1]/jwks',
    'https://[::ffff:127.0.0.1]/jwks',
    'https://2130706433/jwks',
    'https://localhost/jwks',
  ]) {
    test(`registration refuses ${uri}`, async () => {
      const result = await cli(server, ['client', 'create', '--name', `ssrf-${Math.random()}`, '--scopes', scope, '--auth-method', 'private_key_jwt', '--jwks-uri', uri, '--json']);
      // Refused by the service (like an unknown scope), not by the argument parser: exit 1.
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /jwks_uri must not point at a private, loopback or link-local address/);
    });
  }

  test('registration accepts a public address', async () => {
    const result = await cli(server, ['client', 'create', '--name', `public-${Math.random()}`, '--scopes', scope, '--auth-method', 'private_key_jwt', '--jwks-uri', 'https://93.184.215.14/jwks', '--json']);
    assert.equal(result.code, 0, result.stderr);
  });

  test('a name re-pointed at loopback after registration is refused at fetch time: no connection is made', async () => {
    const target = await countingListener();
    try {
      const created = await createClient(server, { scopes: [scope], authMethod: 'private_key_jwt', jwksUri: 'https://93.184.215.14/jwks' });
      // What a DNS change would do: the registered name now leads to a loopback listener.
      await changeCredentials(server.deps, async (tx, invalidate) => {
        await tx.oAuthClient.update({ where: { id: created.client_id }, data: { jwksUri: `https://localhost:${target.port}/jwks` } });
        await invalidate(`client:${created.client_id}`);
      });
      for (const url of [meta.token_endpoint, meta.introspection_endpoint]) {
        const assertion = await clientAssertion(keys, created.client_id, server.issuer);
        const answer = await viaAssertion(url, assertion, { grant_type: 'client_credentials', token: 'x' });
        assert.equal(answer.status, 401, `${url}: ${answer.text}`);
      }
      assert.equal(target.connections(), 0);
    } finally {
      await target.close();
    }
  });

  test('where private targets are allowed, a failing jwks_uri is fetched once per back-off, not once per assertion', async () => {
    const target = await countingListener();
    const dev = await startTestServer({ env: { LATCHKEY_JWKS_URI_ALLOW_PRIVATE: 'true' } });
    try {
      const devScope = await createScope(dev);
      const created = await createClient(dev, { scopes: [devScope], authMethod: 'private_key_jwt', jwksUri: `https://127.0.0.1:${target.port}/jwks` });
      const devMeta = await discover(dev);
      for (let i = 0; i < 10; i++) {
        for (const url of [devMeta.token_endpoint, devMeta.introspection_endpoint]) {
          const assertion = await clientAssertion(keys, created.client_id, dev.issuer);
          const answer = await viaAssertion(url, assertion, { grant_type: 'client_credentials', token: 'x' });
          assert.equal(answer.status, 401, `${url}: ${answer.text}`);
        }
      }
      assert.equal(target.connections(), 1);
    } finally {
      await dev.close();
      await target.close();
    }
  });
});

describe('jwks_uri that works (private targets allowed, a local TLS server)', () => {
  test('assertions verify at /token and /introspect against keys fetched from jwks_uri, fetched once', async () => {
    // A self-signed certificate for 127.0.0.1, trusted by this process's default HTTPS agent only.
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-jwks-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    const [cert, key] = [readFileSync(path.join(dir, 'cert.pem')), readFileSync(path.join(dir, 'key.pem'))];
    rmSync(dir, { recursive: true, force: true });
    let fetches = 0;
    const tls = createHttpsServer({ cert, key }, (_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' }).end(JSON.stringify(keys.jwks));
    });
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    const previousCa = globalAgent.options.ca;
    globalAgent.options.ca = cert;
    const dev = await startTestServer({ env: { LATCHKEY_JWKS_URI_ALLOW_PRIVATE: 'true' } });
    try {
      const devScope = await createScope(dev);
      const { port } = tls.address() as { port: number };
      const created = await createClient(dev, { scopes: [devScope], authMethod: 'private_key_jwt', jwksUri: `https://127.0.0.1:${port}/jwks` });
      const devMeta = await discover(dev);
      const token = await viaAssertion(devMeta.token_endpoint, await clientAssertion(keys, created.client_id, dev.issuer), { grant_type: 'client_credentials' });
      assert.equal(token.status, 200, token.text);
      const introspection = await viaAssertion(devMeta.introspection_endpoint, await clientAssertion(keys, created.client_id, dev.issuer), { token: token.body.access_token });
      assert.equal(introspection.status, 200, introspection.text);
      assert.equal(introspection.body.active, true);
      // One fetch per consumer (oidc-provider's key store, and jose's for Latchkey's endpoints), cached after.
      assert.ok(fetches >= 1 && fetches <= 2, `${fetches} fetches`);
    } finally {
      globalAgent.options.ca = previousCa;
      await dev.close();
      await new Promise((resolve) => tls.close(resolve));
    }
  });
});
