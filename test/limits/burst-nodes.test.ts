import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiKey, revokeApiKey } from '../../src/credentials/api-keys.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { introspectAs } from '../helpers/oauth.ts';
import { spawnServer, type ServerProcess } from '../helpers/processes.ts';
import { eventually, rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';

const API = 'https://api.example.test';
const CLI = { type: 'cli' as const };
// A day's window, so that the figures are exact (at midnight UTC the previous day's share carries over).
const BURST = '5/1d';
const needsPostgres = process.env.DATABASE_URL ? false : 'needs DATABASE_URL (two processes on one Postgres)';

describe('burst alerts across nodes', { skip: needsPostgres }, () => {
  let nodeA: TestServer;
  let nodeB: ServerProcess;
  let caller: CreatedClient;
  let scope: string;

  before(async () => {
    nodeA = await startTestServer({ env: { LATCHKEY_ALERT_BURST: BURST } });
    nodeB = await spawnServer(nodeA.database.url!, nodeA.issuer, { LATCHKEY_ALERT_BURST: BURST });
    scope = await createScope(nodeA);
    caller = await createClient(nodeA, { scopes: [scope], audiences: [API] });
  });
  after(async () => {
    await nodeB?.stop();
    await nodeA?.close();
  });

  const failedSoFar = async (keyId: string) =>
    (await nodeA.deps.prisma.failureWindow.findMany({ where: { credentialType: 'api_key', credentialId: keyId } })).reduce((sum, w) => sum + w.failed, 0);
  const bursts = (keyId: string) => nodeA.deps.prisma.auditEvent.count({ where: { type: 'alert.burst', subjectId: keyId } });

  it('adds up the failures every node saw: 3 on one node and 3 on another make one burst of 5', async () => {
    const key = await createApiKey(nodeA.deps, { name: 'guessed', scopes: [scope], audiences: [API] }, CLI);
    rememberSecret(key.key);
    // Revoked but still presented: every check fails, and is counted for the key.
    await revokeApiKey(nodeA.deps, key.id, { reason: 'burst across nodes' }, CLI);
    for (let i = 0; i < 3; i++) assert.equal((await introspectAs(`${nodeB.url}/introspect`, caller, key.key)).body.active, false);
    // Node B writes its count at its own flush (every 5 s).
    await eventually(() => failedSoFar(key.id), (n) => n === 3, 15_000, 'node B did not write its failures');
    assert.equal(await bursts(key.id), 0, 'three failures are no burst');
    for (let i = 0; i < 3; i++) assert.equal((await introspectAs(`${nodeA.url}/introspect`, caller, key.key)).body.active, false);
    await nodeA.deps.usage.flush();
    assert.equal(await failedSoFar(key.id), 6);
    assert.equal(await bursts(key.id), 1, 'each node saw 3, under the threshold of 5: only their sum is a burst');
    const event = await nodeA.deps.prisma.auditEvent.findFirstOrThrow({ where: { type: 'alert.burst', subjectId: key.id } });
    assert.equal((event.data as { failed: number }).failed, 6);
    // More failures in the same window are no new burst: node A's flush finds none (the alert
    // table would hide a repeat, so the findings themselves are checked).
    const found: string[] = [];
    const observe = nodeA.deps.usage.onFindings!;
    nodeA.deps.usage.onFindings = (findings) => (found.push(...findings.bursts.map((b) => b.id)), observe(findings));
    for (let i = 0; i < 2; i++) await introspectAs(`${nodeA.url}/introspect`, caller, key.key);
    await nodeA.deps.usage.flush();
    assert.equal(await failedSoFar(key.id), 8);
    assert.equal(found.length, 0);
    assert.equal(await bursts(key.id), 1);
  });
});
