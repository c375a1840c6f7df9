import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';
import { cuttableProxy, type CuttableProxy } from '../helpers/proxy.ts';
import { eventually, rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';
import { verifyAs } from '../helpers/verify.ts';

// DESIGN §2 HTTP: with the database out of reach, a credential endpoint answers 503 with
// Retry-After, never 500. Needs Postgres (the proxy sits in front of it).
const skip = process.env.DATABASE_URL ? false : 'needs DATABASE_URL (a proxy in front of Postgres)';
const API = 'https://api.example.test';

let database: TestDatabase;
let proxy: CuttableProxy;
let server: TestServer;
let gateway: CreatedClient;
let key: string;

before(async () => {
  if (skip) return;
  database = await testDatabase();
  proxy = await cuttableProxy(database.url!, 5432);
  server = await startTestServer({ database: { ...database, url: proxy.url } });
  const scope = await createScope(server);
  gateway = await createClient(server, { scopes: [scope], audiences: [API] });
  key = (await cliJson<{ key: string }>(server, ['key', 'create', '--name', 'k', '--scopes', scope, '--audience', API])).key;
  rememberSecret(key);
});

after(async () => {
  await server?.close();
  await proxy?.close();
  await database?.drop();
});

describe('POST /v1/keys/verify while the database is unreachable', { skip }, () => {
  it('answers 503 problem details with Retry-After, never 500, and recovers by itself', async () => {
    assert.equal((await verifyAs(server.url, gateway, { key })).body.code, 'VALID');
    proxy.cut();
    // Whatever the cache still holds, no answer is a 500; an answer that needs the database is a 503.
    const answers = await Promise.all([verifyAs(server.url, gateway, { key }), verifyAs(server.url, gateway, { key: `${key.slice(0, 16)}${'x'.repeat(20)}` })]);
    for (const answer of answers) assert.notEqual(answer.status, 500, answer.text);
    const down = await eventually(() => verifyAs(server.url, gateway, { key }), (answer) => answer.status === 503, 10_000, 'never a 503');
    assert.equal(down.headers.get('retry-after'), '5');
    assert.match(down.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(down.body.error, 'temporarily_unavailable');
    assert.doesNotMatch(down.text, /Prisma|ECONNREFUSED|\bat .+\(/);
    proxy.restore();
    await eventually(() => verifyAs(server.url, gateway, { key }), (answer) => answer.body.code === 'VALID', 15_000, 'verify did not recover');
  });
});
