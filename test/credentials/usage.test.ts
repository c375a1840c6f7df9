import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiKey, revokeApiKey } from '../../src/credentials/api-keys.ts';
import { teamUsageSeries, usageSeries, utcDay } from '../../src/credentials/usage.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { accessToken, introspectAs } from '../helpers/oauth.ts';
import { discover, rememberSecret, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';

const API = 'https://api.example.test';
const CLI = { type: 'cli' as const };

let server: TestServer;
let meta: Discovery;
let scope: string;
let caller: CreatedClient;

before(async () => {
  server = await startTestServer();
  meta = await discover(server);
  scope = await createScope(server);
  caller = await createClient(server, { scopes: [scope], audiences: [API] });
});
after(() => server.close());

const rowFor = (type: string, id: string) => server.deps.prisma.usageDaily.findFirst({ where: { credentialType: type, credentialId: id } });

describe('usage rollups', () => {
  it('counts successful key checks in memory and writes them in one statement per flush', async () => {
    const issued = await createApiKey(server.deps, { name: 'usage', scopes: [scope], audiences: [API] }, CLI);
    rememberSecret(issued.key);
    await server.deps.usage.flush();
    const statementsBefore = server.deps.usage.statements;
    const N = 25;
    for (let i = 0; i < N; i++) {
      const answer = await introspectAs(meta.introspection_endpoint, caller, issued.key);
      assert.equal(answer.body.active, true);
    }
    await server.deps.usage.flush();
    const row = await rowFor('api_key', issued.id);
    assert.equal(row?.succeeded, N);
    assert.equal(row?.failed, 0);
    assert.equal(utcDay(row!.day), utcDay(new Date()));
    // One upsert (daily and hourly) and one "last used" update for 25 checks (the timer may have
    // split the batch once), and the caller's network the first time it is seen.
    const written = server.deps.usage.statements - statementsBefore;
    assert.ok(written >= 2 && written <= 5, `statements written: ${written}`);
    assert.ok((await server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: issued.id } })).lastUsedAt);

    // Failures: a revoked key's checks are counted as failed, and added to the same day's row.
    await revokeApiKey(server.deps, issued.id, { reason: 'test' }, CLI);
    for (let i = 0; i < 3; i++) assert.equal((await introspectAs(meta.introspection_endpoint, caller, issued.key)).body.active, false);
    await server.deps.usage.flush();
    const after = await rowFor('api_key', issued.id);
    assert.equal(after?.succeeded, N);
    assert.equal(after?.failed, 3);

    const series = await usageSeries(server.deps, 'api_key', issued.id);
    assert.equal(series.length, 30);
    assert.deepEqual(series.at(-1), { day: utcDay(new Date()), succeeded: N, failed: 3 });
    assert.ok(series.slice(0, -1).every((p) => p.succeeded === 0 && p.failed === 0));
    assert.ok(series.every((p, i) => i === 0 || p.day > series[i - 1]!.day), 'oldest first');
  });

  it('counts tokens issued to an application, and sums a team over its credentials', async () => {
    const team = await server.deps.prisma.team.create({ data: { name: 'usage team' } });
    const app = await createClient(server, { scopes: [scope], audiences: [API] });
    await server.deps.prisma.oAuthClient.update({ where: { id: app.client_id }, data: { teamId: team.id } });
    await accessToken(meta.token_endpoint, app);
    await accessToken(meta.token_endpoint, app);
    const key = await createApiKey(server.deps, { name: 'team key', scopes: [scope], audiences: [API], teamId: team.id }, CLI);
    rememberSecret(key.key);
    await introspectAs(meta.introspection_endpoint, caller, key.key);
    await server.deps.usage.flush();
    assert.equal((await rowFor('client', app.client_id))?.succeeded, 2);
    assert.ok((await server.deps.prisma.oAuthClient.findUniqueOrThrow({ where: { id: app.client_id } })).lastUsedAt);
    const series = await teamUsageSeries(server.deps, team.id);
    assert.equal(series.length, 30);
    assert.deepEqual(series.at(-1), { day: utcDay(new Date()), succeeded: 3, failed: 0 });
  });

  it('rolls usage up per hour and per day, a batch dated by the hour it began in', async () => {
    const realNow = server.deps.now;
    const hour = Date.UTC(2027, 0, 15, 10);
    let clock = new Date(hour + 59 * 60_000);
    server.deps.now = () => clock;
    try {
      await server.deps.usage.flush();
      const statementsBefore = server.deps.usage.statements;
      for (let i = 0; i < 4; i++) server.deps.usage.record('api_key', 'hourly-key', true);
      server.deps.usage.record('api_key', 'hourly-key', false);
      await server.deps.usage.flush();
      clock = new Date(hour + 61 * 60_000);
      for (let i = 0; i < 6; i++) server.deps.usage.record('api_key', 'hourly-key', true);
      await server.deps.usage.flush();
      // Both rollups in one statement per batch, plus "last used".
      assert.ok(server.deps.usage.statements - statementsBefore <= 4);
      const hours = await server.deps.prisma.usageHourly.findMany({ where: { credentialId: 'hourly-key' }, orderBy: { hour: 'asc' } });
      assert.deepEqual(
        hours.map((h) => [h.hour.toISOString(), h.succeeded, h.failed]),
        [
          ['2027-01-15T10:00:00.000Z', 4, 1],
          ['2027-01-15T11:00:00.000Z', 6, 0],
        ],
      );
      const day = await server.deps.prisma.usageDaily.findFirst({ where: { credentialId: 'hourly-key' } });
      assert.deepEqual([utcDay(day!.day), day!.succeeded, day!.failed], ['2027-01-15', 10, 1]);
    } finally {
      server.deps.now = realNow;
    }
  });

  it('gives a zero-filled series for an unused credential', async () => {
    const series = await usageSeries(server.deps, 'client', 'never-used', 7);
    assert.equal(series.length, 7);
    assert.ok(series.every((p) => p.succeeded === 0 && p.failed === 0));
  });
});
