import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { authAs, clientAssertion, clientKeyPair, FORM, JWT_BEARER, type ClientKeyPair } from '../helpers/oauth.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// Issue 9 §1.11: every URL Latchkey states or accepts comes from LATCHKEY_ISSUER, each protocol
// endpoint has one canonical path, and discovery lists only what is offered.

let server: TestServer;
let keys: ClientKeyPair;
let keyClient: CreatedClient;
let secretClient: CreatedClient;

before(async () => {
  server = await startTestServer();
  const scope = await createScope(server);
  keys = await clientKeyPair();
  keyClient = await createClient(server, { scopes: [scope], authMethod: 'private_key_jwt', jwks: keys.jwks });
  secretClient = await createClient(server, { scopes: [scope] });
});
after(() => server.close());

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: Record<string, any>;
}

/** A request through node:http, so that Host and the request target are exactly as given. */
function raw(method: string, target: string, headers: Record<string, string> = {}, body?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method, path: target, headers: { ...(body === undefined ? {} : { 'content-type': FORM, 'content-length': String(Buffer.byteLength(body)) }), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => {
        let parsed: Record<string, any> = {};
        try {
          parsed = JSON.parse(text);
        } catch {
          // Not JSON: callers assert on status and text.
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const FORGED = { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' };

describe('Host header: every URL comes from LATCHKEY_ISSUER', () => {
  for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    test(`${path} with a forged Host lists endpoints under the issuer`, async () => {
      const answer = await raw('GET', path, FORGED);
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.body.issuer, server.issuer);
      assert.equal(answer.body.token_endpoint, `${server.issuer}/token`);
      assert.equal(answer.body.jwks_uri, `${server.issuer}/jwks`);
      assert.doesNotMatch(answer.text, /evil\.example/);
    });
  }

  test('an assertion for http://evil.example/token is invalid_client, even sent with that Host', async () => {
    for (const headers of [{ host: 'evil.example' }, FORGED]) {
      const assertion = await clientAssertion(keys, keyClient.client_id, 'http://evil.example/token');
      const body = new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: assertion }).toString();
      const answer = await raw('POST', '/token', headers, body);
      assert.equal(answer.status, 401, answer.text);
      assert.equal(answer.body.error, 'invalid_client');
    }
  });

  test('an assertion for the issuer token endpoint still works with a forged Host', async () => {
    const assertion = await clientAssertion(keys, keyClient.client_id, `${server.issuer}/token`);
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: assertion }).toString();
    const answer = await raw('POST', '/token', { host: 'evil.example' }, body);
    assert.equal(answer.status, 200, answer.text);
  });
});

describe('path variants: one canonical path per endpoint', () => {
  const token = () => new URLSearchParams({ grant_type: 'client_credentials' }).toString();
  for (const path of ['/TOKEN', '/token/', '/Token', '/token//', '//token', '/token%2F', '/./token', '/%74oken']) {
    test(`POST ${path} is a JSON 404`, async () => {
      const answer = await raw('POST', path, authAs(secretClient), token());
      assert.equal(answer.status, 404, answer.text);
      assert.match(String(answer.headers['content-type']), /json/);
      assert.equal(typeof answer.body.error, 'string');
      assert.equal(answer.body.access_token, undefined);
    });
  }
  for (const path of ['/jwks/', '/JWKS', '/.well-known/OPENID-configuration', '/.well-known/openid-configuration/', '/.well-known/oauth-authorization-server/']) {
    test(`GET ${path} is a JSON 404`, async () => {
      const answer = await raw('GET', path);
      assert.equal(answer.status, 404, answer.text);
      assert.match(String(answer.headers['content-type']), /json/);
    });
  }
  test('an absolute request target is not a way around the canonical path', async () => {
    const answer = await raw('POST', `http://evil.example/token`, authAs(secretClient), token());
    assert.notEqual(answer.status, 200, answer.text);
    assert.equal(answer.body.access_token, undefined);
  });
  test('the canonical paths still answer', async () => {
    assert.equal((await raw('GET', '/jwks')).status, 200);
    assert.equal((await raw('GET', '/.well-known/openid-configuration')).status, 200);
    assert.equal((await raw('GET', '/.well-known/oauth-authorization-server')).status, 200);
    const answer = await raw('POST', '/token', authAs(secretClient), token());
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers.pragma, 'no-cache');
  });
});

describe('discovery lists exactly what is offered', () => {
  for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    test(`${path}: client_credentials only, no authorization endpoint`, async () => {
      const answer = await raw('GET', path);
      assert.deepEqual(answer.body.grant_types_supported, ['client_credentials']);
      assert.deepEqual(answer.body.response_types_supported ?? [], []);
      assert.equal(answer.body.authorization_endpoint, undefined);
      assert.doesNotMatch(answer.text, /implicit|authorization_code|refresh_token/);
      // What Latchkey does offer stays listed (DESIGN §2).
      for (const field of ['token_endpoint', 'introspection_endpoint', 'revocation_endpoint', 'jwks_uri']) assert.equal(typeof answer.body[field], 'string', field);
    });
  }
  for (const [method, path] of [['GET', '/auth'], ['POST', '/auth'], ['GET', '/auth/some-uid'], ['POST', '/session/end/confirm'], ['GET', '/me'], ['POST', '/reg']]) {
    test(`${method} ${path} is a JSON 404`, async () => {
      const answer = await raw(method, path, {}, method === 'POST' ? '' : undefined);
      assert.equal(answer.status, 404, answer.text);
      assert.match(String(answer.headers['content-type']), /json/);
    });
  }
});
