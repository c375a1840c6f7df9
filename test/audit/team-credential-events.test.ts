import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Actor } from '../../src/actor.ts';
import { createAccount } from '../../src/accounts/accounts.ts';
import { createApiKey, revokeApiKey, rotateApiKey } from '../../src/credentials/api-keys.ts';
import { createClient, revokeClient, rotateClientSecret } from '../../src/credentials/clients.ts';
import { createScope } from '../helpers/factories.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
let scope: string;
let teamId: string;
const actor: Actor = { type: 'cli' };

before(async () => {
  server = await startTestServer();
  scope = await createScope(server);
  const now = server.deps.now();
  ({ team: { id: teamId } } = await server.deps.prisma.$transaction((tx) => createAccount(tx, { email: 'owner@example.test', passwordHash: null, now })));
});
after(() => server?.close());

/** The team's Activity page and the audit export find a credential's events by the team in their data. */
async function teamsOf(subjectIds: string[]) {
  const events = await server.deps.prisma.auditEvent.findMany({ where: { subjectId: { in: subjectIds } }, orderBy: { seq: 'asc' } });
  return events.map((event) => [event.type, (event.data as { teamId?: unknown }).teamId]);
}

test('every event of a team API key carries the team: created, rotated, revoked', async () => {
  const key = await createApiKey(server.deps, { name: 'team key', scopes: [scope], teamId }, actor);
  const successor = await rotateApiKey(server.deps, key.id, { graceMs: 0 }, actor);
  await revokeApiKey(server.deps, successor.id, { reason: 'done' }, actor);
  assert.deepEqual(await teamsOf([key.id, successor.id]), [
    ['api_key.created', teamId],
    ['api_key.rotated', teamId],
    ['api_key.revoked', teamId],
  ]);
});

test('every event of a team application carries the team: created, secret rotated, revoked', async () => {
  const client = await createClient(server.deps, { name: 'team app', scopes: [scope], teamId }, actor);
  await rotateClientSecret(server.deps, client.client_id, { graceMs: 0 }, actor);
  await revokeClient(server.deps, client.client_id, actor);
  assert.deepEqual(await teamsOf([client.client_id]), [
    ['client.created', teamId],
    ['client.secret_rotated', teamId],
    ['client.revoked', teamId],
  ]);
});

test('an operator credential (no team) says so: teamId null', async () => {
  const key = await createApiKey(server.deps, { name: 'operator key', scopes: [scope] }, actor);
  await revokeApiKey(server.deps, key.id, {}, actor);
  assert.deepEqual(await teamsOf([key.id]), [
    ['api_key.created', null],
    ['api_key.revoked', null],
  ]);
});
