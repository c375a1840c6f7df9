import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PRESENTED_API_KEY, tokenPolicy } from '../../src/policies/tokens.ts';

const api = { id: 'client-api', audiences: ['https://api.example'] };
const other = { id: 'client-other', audiences: ['https://other.example'] };

test('introspection: a credential is visible to its audience and to the client it was issued to, no one else', () => {
  const key = { audiences: ['https://api.example'] };
  assert.equal(tokenPolicy.introspect(api, key), true);
  assert.equal(tokenPolicy.introspect(other, key), false);
  const token = { audiences: ['https://other.example'], clientId: 'client-api' };
  assert.equal(tokenPolicy.introspect(api, token), true, 'its own client');
  assert.equal(tokenPolicy.introspect(other, token), true, 'its audience');
  assert.equal(tokenPolicy.introspect({ id: 'x', audiences: [] }, token), false);
  assert.equal(tokenPolicy.introspect(api, { audiences: [] }), false, 'no audience, no client: visible to none');
});

test('revocation: a token only by the client it was issued to (RFC 7009 §2.1); an API key by whoever presents it', () => {
  assert.equal(tokenPolicy.revoke(api, { kind: 'token', clientId: 'client-api' }), true);
  assert.equal(tokenPolicy.revoke(other, { kind: 'token', clientId: 'client-api' }), false);
  assert.equal(tokenPolicy.revoke(other, PRESENTED_API_KEY), true);
});
