import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { clientAssertion, clientKeyPair, JWT_BEARER, postForm, type ClientKeyPair } from '../helpers/oauth.ts';
import { discover, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';

let server: TestServer;
let meta: Discovery;
let keys: ClientKeyPair;
let client: CreatedClient;

before(async () => {
  server = await startTestServer();
  meta = await discover(server);
  const scope = await createScope(server);
  keys = await clientKeyPair();
  client = await createClient(server, { scopes: [scope], authMethod: 'private_key_jwt', jwks: keys.jwks });
});
after(() => server.close());

const viaAssertion = (url: string, assertion: string, extra: Record<string, string>) =>
  postForm(url, { client_assertion_type: JWT_BEARER, client_assertion: assertion, ...extra });

describe('private_key_jwt assertions (RFC 7523 §3)', () => {
  it('are single-use across the token, introspection and revocation endpoints', async () => {
    // An audience every endpoint accepts: the issuer.
    const assertion = await clientAssertion(keys, client.client_id, server.issuer);
    const token = await viaAssertion(meta.token_endpoint, assertion, { grant_type: 'client_credentials' });
    assert.equal(token.status, 200, token.text);
    for (const url of [meta.token_endpoint, meta.introspection_endpoint, meta.revocation_endpoint]) {
      const replay = await viaAssertion(url, assertion, { grant_type: 'client_credentials', token: 'x' });
      assert.equal(replay.status, 401, `${url}: ${replay.text}`);
      assert.equal(replay.body.error, 'invalid_client');
    }
  });

  it('used at introspection first, it no longer works at the token endpoint', async () => {
    const assertion = await clientAssertion(keys, client.client_id, server.issuer);
    assert.equal((await viaAssertion(meta.introspection_endpoint, assertion, { token: 'x' })).status, 200);
    const replay = await viaAssertion(meta.token_endpoint, assertion, { grant_type: 'client_credentials' });
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error, 'invalid_client');
  });

  it('concurrent uses at the token endpoint: exactly one succeeds', async () => {
    const assertion = await clientAssertion(keys, client.client_id, meta.token_endpoint);
    const answers = await Promise.all(Array.from({ length: 5 }, () => viaAssertion(meta.token_endpoint, assertion, { grant_type: 'client_credentials' })));
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 401, 401, 401, 401], answers.map((a) => a.text).join('\n'));
  });

  it('refuses an assertion that stays valid for hours', async () => {
    const assertion = await clientAssertion(keys, client.client_id, meta.introspection_endpoint, { expiresIn: '3h' });
    const answer = await viaAssertion(meta.introspection_endpoint, assertion, { token: 'x' });
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error, 'invalid_client');
  });
});
