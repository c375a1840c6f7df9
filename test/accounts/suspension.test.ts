import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { createTeam } from '../../src/accounts/teams.ts';
import { suspendAccount, suspendTeam, unsuspendAccount, unsuspendTeam } from '../../src/accounts/suspension.ts';
import type { Actor } from '../../src/actor.ts';
import { revokeApiKey, verifyApiKey } from '../../src/credentials/api-keys.ts';
import { revokeClient, revokeClientTokens } from '../../src/credentials/clients.ts';
import { Conflict, InvalidRequest, NotFound } from '../../src/lib/errors.ts';
import { cli, cliJson } from '../helpers/cli.ts';
import { createClient, createScope } from '../helpers/factories.ts';
import { accessToken, authAs, introspectAs, postForm } from '../helpers/oauth.ts';
import { PortalClient, signUpAndSignIn, STRONG_PASSWORD } from '../helpers/portal.ts';
import { discover, rememberSecret, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';
import { startSmtpPeer, type SmtpPeer } from '../helpers/smtp.ts';

const API = 'https://api.example.test';
const ADMIN: Actor = { type: 'account', id: '00000000-0000-4000-8000-00000000a0a0', requestId: 'req-suspension-test', ip: '192.0.2.1' };

let server: TestServer;
let smtp: SmtpPeer;
let endpoints: Discovery;
let scope: string;
let rs: { client_id: string; client_secret?: string };

before(async () => {
  smtp = await startSmtpPeer();
  server = await startTestServer({ env: { SMTP_URL: smtp.url } });
  endpoints = await discover(server);
  scope = await createScope(server);
  // The resource server that introspects: owned by nobody, never suspended.
  rs = await createClient(server, { scopes: [scope], audiences: [API] });
});
after(async () => {
  await server?.close();
  await smtp?.close();
});

const active = async (token: string) => (await introspectAs(endpoints.introspection_endpoint, rs, token)).body.active as boolean;
const events = (type: string, subjectId: string) => server.deps.prisma.auditEvent.findMany({ where: { type, subjectId } });
const newKey = async (owner: string, name: string) => {
  const key = await cliJson(server, ['key', 'create', '--name', name, '--scopes', scope, '--audience', API, '--owner', owner]);
  rememberSecret(key.key);
  return key as { id: string; key: string };
};
const accountId = async (email: string) => (await server.deps.prisma.account.findUniqueOrThrow({ where: { email } })).id;
const personalTeam = async (email: string) => (await server.deps.prisma.team.findFirstOrThrow({ where: { personalAccount: { email } } })).id;

describe('team suspension', () => {
  let teamId: string;
  let otherKey: { id: string; key: string };

  before(async () => {
    const owner = 'team-owner@example.com';
    await signUpAndSignIn(server, smtp, owner);
    teamId = (await createTeam(server.deps, { name: 'payments', ownerId: await accountId(owner) }, ADMIN)).id;
    otherKey = await newKey(owner, 'personal');
  });

  it('makes every key and application of the team inactive, and unsuspending restores exactly what was active', async () => {
    const kept = await newKey(teamId, 'kept');
    const revokedMeanwhile = await newKey(teamId, 'revoked-meanwhile');
    const app = await createClient(server, { scopes: [scope], audiences: [API], owner: teamId });
    const token = await accessToken(endpoints.token_endpoint, app);
    // Warm the caches with "active": suspension must reach cached records, not just the database.
    for (const credential of [kept.key, revokedMeanwhile.key, token, otherKey.key]) assert.equal(await active(credential), true);
    assert.equal((await introspectAs(endpoints.introspection_endpoint, app, kept.key)).status, 200, 'the application authenticates as a caller');

    const suspended = await cli(server, ['team', 'suspend', teamId, '--reason', 'fraud investigation', '--json']);
    assert.equal(suspended.code, 0, suspended.stderr);
    assert.deepEqual(suspended.json(), { team_id: teamId, status: 'suspended' });

    for (const credential of [kept.key, revokedMeanwhile.key, token]) assert.equal((await introspectAs(endpoints.introspection_endpoint, rs, credential)).text, '{"active":false}');
    assert.equal(await active(otherKey.key), true, "another team's key is untouched");
    // The verdict tells SUSPENDED apart (for /v1/keys/verify); introspection says only active:false.
    const verdict = await verifyApiKey(server.deps, kept.key);
    assert.equal(verdict.result, 'SUSPENDED');
    // The application: no token, and no client authentication at /introspect or /revoke.
    const refused = await postForm(endpoints.token_endpoint, { grant_type: 'client_credentials' }, authAs(app));
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error, 'invalid_client');
    assert.equal((await introspectAs(endpoints.introspection_endpoint, app, kept.key)).status, 401);
    assert.equal((await postForm(endpoints.revocation_endpoint, { token }, authAs(app))).status, 401);

    // Revoked during the suspension: stays revoked after it.
    await revokeApiKey(server.deps, revokedMeanwhile.id, { reason: 'leaked' }, ADMIN);
    // Nothing was written to the credentials themselves.
    const rows = await server.deps.prisma.apiKey.findMany({ where: { id: { in: [kept.id, revokedMeanwhile.id] } }, orderBy: { name: 'asc' } });
    assert.deepEqual(rows.map((row) => [row.name, row.revokedAt !== null]), [['kept', false], ['revoked-meanwhile', true]]);
    assert.equal((await server.deps.prisma.oAuthClient.findUniqueOrThrow({ where: { id: app.client_id } })).status, 'active');

    assert.deepEqual(await unsuspendTeam(server.deps, ADMIN, teamId, 'cleared'), { team_id: teamId, status: 'active' });
    assert.equal(await active(kept.key), true);
    assert.equal(await active(token), true, 'a token issued before the suspension and still unexpired is live again');
    assert.equal(await active(revokedMeanwhile.key), false);
    assert.equal((await verifyApiKey(server.deps, revokedMeanwhile.key)).result, 'REVOKED');
    assert.equal(await active(await accessToken(endpoints.token_endpoint, app)), true, 'the application gets tokens again');

    const [event] = await events('team.suspended', teamId);
    assert.equal(event?.actorType, 'cli', 'the CLI acted');
    const [back] = await events('team.unsuspended', teamId);
    assert.deepEqual([back?.actorId, back?.requestId, back?.ip, (back?.data as { reason: string }).reason], [ADMIN.id, ADMIN.requestId, ADMIN.ip, 'cleared']);
    assert.equal((event?.data as { reason: string }).reason, 'fraud investigation');
  });

  it('refuses a repeat with Conflict and no second event; unknown teams are NotFound; a reason is required', async () => {
    await suspendTeam(server.deps, ADMIN, teamId, 'first');
    await assert.rejects(suspendTeam(server.deps, ADMIN, teamId, 'again'), (error) => error instanceof Conflict && error.description === 'team is already suspended');
    const repeat = await cli(server, ['team', 'suspend', teamId, '--reason', 'again']);
    assert.notEqual(repeat.code, 0);
    assert.match(repeat.stderr, /team is already suspended/);
    await unsuspendTeam(server.deps, ADMIN, teamId, 'done');
    await assert.rejects(unsuspendTeam(server.deps, ADMIN, teamId, 'again'), (error) => error instanceof Conflict && error.description === 'team is not suspended');
    assert.equal((await events('team.suspended', teamId)).length, 2, 'one per real change across both tests');
    assert.equal((await events('team.unsuspended', teamId)).length, 2);

    for (const unknown of ['6c1f7a52-3b7e-4d0e-9a55-000000000000', 'not-a-uuid', '']) {
      await assert.rejects(suspendTeam(server.deps, ADMIN, unknown, 'x'), NotFound);
    }
    for (const reason of ['', '   ', 'x'.repeat(501)]) await assert.rejects(suspendTeam(server.deps, ADMIN, teamId, reason), InvalidRequest);
    const noReason = await cli(server, ['team', 'suspend', teamId, '--json']);
    assert.equal(noReason.code, 2);
    assert.match(noReason.stderr, /--reason is required/);
    assert.equal((await server.deps.prisma.team.findUniqueOrThrow({ where: { id: teamId } })).status, 'active', 'nothing half-done');
  });
});

describe('developer suspension', () => {
  const email = 'suspect@example.com';
  let portal: PortalClient;
  let key: { id: string; key: string };

  before(async () => {
    portal = await signUpAndSignIn(server, smtp, email);
    key = await newKey(email, 'personal');
  });

  const signInPage = async (password: string) => {
    const response = await new PortalClient(server.url).postForm('/portal/sign-in', '/portal/sign-in', { email, password });
    return { status: response.status, text: (await response.text()).replace(/value="[^"]*"/g, '') };
  };

  it('ends their sessions, refuses sign-in like a wrong password, and holds back their personal credentials', async () => {
    assert.equal((await portal.get('/portal')).status, 200);
    assert.equal(await active(key.key), true);
    const id = await accountId(email);

    const result = await suspendAccount(server.deps, ADMIN, id, 'abuse report');
    assert.equal(result.status, 'suspended');
    assert.ok(result.sessions_ended >= 1);
    const page = await portal.get('/portal');
    assert.equal(page.status, 302);
    assert.match(page.headers.get('location')!, /^\/portal\/sign-in/);

    // A correct password gets the very page a wrong one does: suspension is not announced.
    const right = await signInPage(STRONG_PASSWORD);
    const wrong = await signInPage('not the password at all');
    assert.equal(right.status, 400);
    assert.equal(right.text, wrong.text);
    assert.match(right.text, /Email or password is incorrect\./);

    assert.equal(await active(key.key), false);
    assert.equal((await verifyApiKey(server.deps, key.key)).result, 'SUSPENDED');

    await assert.rejects(suspendAccount(server.deps, ADMIN, id, 'again'), (error) => error instanceof Conflict && error.description === 'account is already suspended');
    const [event, ...more] = await events('account.suspended', id);
    assert.equal(more.length, 0, 'no second event for the refused repeat');
    assert.deepEqual([event!.actorId, event!.requestId], [ADMIN.id, ADMIN.requestId]);
    assert.deepEqual(event!.data, { reason: 'abuse report', teamId: await personalTeam(email), sessionsEnded: result.sessions_ended });

    const back = await cliJson(server, ['account', 'unsuspend', email, '--reason', 'appeal granted']);
    assert.deepEqual(back, { account_id: id, email, status: 'active', sessions_ended: 0 });
    assert.equal(await active(key.key), true);
    assert.equal((await signInPage(STRONG_PASSWORD)).status, 303, 'signs in again');
    const stillEnded = await portal.get('/portal');
    assert.equal(stillEnded.status, 302, 'the ended session stays ended');
    assert.match(stillEnded.headers.get('location')!, /^\/portal\/sign-in/);
  });

  it('keeps a team suspension and an account suspension apart', async () => {
    const id = await accountId(email);
    const teamId = await personalTeam(email);
    await suspendTeam(server.deps, ADMIN, teamId, 'team-level');
    await suspendAccount(server.deps, ADMIN, id, 'person-level');
    await unsuspendAccount(server.deps, ADMIN, id, 'person cleared');
    assert.equal(await active(key.key), false, 'the team is still suspended');
    await unsuspendTeam(server.deps, ADMIN, teamId, 'team cleared');
    assert.equal(await active(key.key), true);
  });

  it('refuses to suspend oneself, unknown accounts and addresses', async () => {
    const id = await accountId(email);
    await assert.rejects(suspendAccount(server.deps, { type: 'account', id }, id, 'me'), InvalidRequest);
    await assert.rejects(suspendAccount(server.deps, ADMIN, '6c1f7a52-3b7e-4d0e-9a55-000000000000', 'x'), NotFound);
    const unknown = await cli(server, ['account', 'suspend', 'nobody@example.com', '--reason', 'x']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /account not found/);
  });
});

describe('revoking all tokens of an application', () => {
  it('makes earlier tokens inactive and leaves the next one active, even within the same second', async () => {
    const app = await createClient(server, { scopes: [scope], audiences: [API] });
    const older = await accessToken(endpoints.token_endpoint, app);
    // iat has whole seconds: start just after a second begins, so that the token before and
    // the token after the cutoff most likely share their iat (checked below).
    let before = '';
    let afterCutoff = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 20));
      before = await accessToken(endpoints.token_endpoint, app);
      await revokeClientTokens(server.deps, ADMIN, app.client_id, `incident ${attempt}`);
      afterCutoff = await accessToken(endpoints.token_endpoint, app);
      if (decodeJwt(before).iat === decodeJwt(afterCutoff).iat) break;
    }
    assert.equal(decodeJwt(before).iat, decodeJwt(afterCutoff).iat, 'the same-second case was exercised');
    assert.equal(await active(older), false);
    assert.equal(await active(before), false);
    assert.equal(await active(afterCutoff), true);
    assert.equal(await active(await accessToken(endpoints.token_endpoint, app)), true);

    const out = await cliJson(server, ['client', 'revoke-tokens', app.client_id, '--reason', 'rotate everything']);
    assert.equal(out.client_id, app.client_id);
    assert.ok(Date.parse(out.tokens_revoked_before) <= Date.now());
    assert.equal(await active(afterCutoff), false);
    const recorded = await events('client.tokens_revoked', app.client_id);
    assert.ok(recorded.length >= 2);
    assert.equal((recorded.at(-1)!.data as { reason: string }).reason, 'rotate everything');
  });

  it('refuses a revoked client (Conflict, no event) and unknown ones (NotFound)', async () => {
    const app = await createClient(server, { scopes: [scope], audiences: [API] });
    await revokeClient(server.deps, app.client_id, ADMIN);
    await assert.rejects(revokeClientTokens(server.deps, ADMIN, app.client_id, 'x'), Conflict);
    assert.equal((await events('client.tokens_revoked', app.client_id)).length, 0);
    await assert.rejects(revokeClientTokens(server.deps, ADMIN, 'lkc_0000000000000000000000', 'x'), NotFound);
    await assert.rejects(revokeClientTokens(server.deps, ADMIN, 'nonsense', 'x'), NotFound);
    await assert.rejects(revokeClientTokens(server.deps, ADMIN, app.client_id, ' '), InvalidRequest);
  });
});
