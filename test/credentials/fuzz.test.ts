import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { basicAuth } from '../helpers/oauth.ts';
import { discover, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';

let server: TestServer;
let meta: Discovery;
let caller: CreatedClient;

before(async () => {
  server = await startTestServer();
  meta = await discover(server);
  const scope = await createScope(server);
  caller = await createClient(server, { scopes: [scope], audiences: ['https://api.example.test'] });
});
after(() => server.close());

const hostileText = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom('lk_', 'lk_a_b', 'a.b.c', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', '%00', '\u0000', '../../etc/passwd', '{"active":true}', "' OR 1=1 --"),
  fc.tuple(fc.stringMatching(/^[0-9A-Za-z]{12}$/), fc.stringMatching(/^[0-9A-Za-z]{49}$/)).map(([id, rest]) => `lk_${id}_${rest}`),
  fc.tuple(fc.base64String({ maxLength: 60 }), fc.base64String({ maxLength: 200 }), fc.base64String({ maxLength: 90 })).map((parts) => parts.join('.').replace(/=/g, '')),
);
const paramName = fc.oneof(fc.constantFrom('token', 'token_type_hint', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type', 'resource'), fc.string({ maxLength: 20 }));
const body = fc.oneof(
  fc.array(fc.tuple(paramName, hostileText), { maxLength: 6 }).map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')),
  fc.string({ maxLength: 400 }),
);
const authorization = fc.oneof(
  fc.constant(undefined),
  fc.constant('valid'),
  fc.string({ maxLength: 80 }),
  fc.string({ maxLength: 60 }).map((s) => `Basic ${Buffer.from(s).toString('base64')}`),
);
const contentType = fc.constantFrom('application/x-www-form-urlencoded', 'application/json', 'text/plain', 'multipart/form-data; boundary=x', undefined);
const method = fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE');

describe('introspection and revocation under hostile input', () => {
  for (const endpoint of ['introspection_endpoint', 'revocation_endpoint'] as const) {
    it(`${endpoint}: never a 500, never active for anything not issued`, async () => {
      await fc.assert(
        fc.asyncProperty(method, contentType, authorization, body, async (verb, type, auth, text) => {
          const headers: Record<string, string> = {};
          if (type) headers['content-type'] = type;
          if (auth === 'valid') headers.authorization = basicAuth(caller.client_id, caller.client_secret!);
          else if (auth !== undefined) headers.authorization = auth;
          const response = await fetch(meta[endpoint], { method: verb, headers, body: verb === 'GET' ? undefined : text });
          const answer = await response.text();
          assert.ok(response.status < 500, `${response.status} ${answer}`);
          if (response.status === 200 && endpoint === 'introspection_endpoint') assert.equal(answer, '{"active":false}');
          if (response.status >= 400) {
            const parsed = JSON.parse(answer);
            assert.equal(typeof parsed.error, 'string');
          }
        }),
        { numRuns: 300 },
      );
    });
  }
});
