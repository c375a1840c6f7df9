import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { routeTable } from '../../src/web/pages.ts';
import { PORTAL_ROUTES } from '../../src/web/portal/index.ts';
import { createScope } from '../helpers/factories.ts';
import { linkFromMail, PortalClient, signUpAndSignIn, STRONG_PASSWORD } from '../helpers/portal.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// Security tests generated from the portal's router (Unkey's runCommonRouteTests): every route
// that takes an id is tried by a stranger, every POST without its CSRF token or from another
// origin, every GET is checked to change nothing, and every non-public page needs a session.
// A new route is in these tests the day it is added; a new id route fails until it is mapped.

let server: TestServer;
let routes: { method: string; path: string }[];

/** Pages anyone may open signed out (each must exist in the router: see the test below). */
const PUBLIC_GETS = ['/portal/sign-up', '/portal/sign-in', '/portal/verify-email', '/portal/reset-password', '/portal/reset-password/confirm', '/portal/invitations/accept'];
/** Forms anyone may post signed out. */
const PUBLIC_POSTS = ['/portal/sign-up', '/portal/sign-in', '/portal/verify-email', '/portal/verify-email/resend', '/portal/reset-password', '/portal/reset-password/confirm'];

/**
 * Everything any form of the portal could want, with values that would act if accepted
 * (confirmations given, shortest grace, promotion to owner, a new name, a new password…).
 */
const ACTING_FORM: Record<string, string> = {
  confirm: 'yes',
  grace: 'now',
  role: 'owner',
  reason: 'route security test',
  name: 'Renamed by a forged form',
  email: 'forged@example.test',
  code: '000000',
  current_password: STRONG_PASSWORD,
  new_password: 'a different long passphrase 93 for forgery',
  password: STRONG_PASSWORD,
};

interface Developer {
  client: PortalClient;
  email: string;
  accountId: string;
  teamId: string;
}

let a: Developer;
let teammate: Developer;
let b: Developer;
/** A's objects: route path up to the parameter → the id of A's object of that kind. */
const objectOf = new Map<string, string>();
/** Query strings carrying real, unused single-use tokens, for the pages opened from mailed links. */
const queryOf = new Map<string, string>();
let ids: { key: string; client: string; request: string; invitation: string; session: string; teammate: string };

async function developer(client: PortalClient, email: string): Promise<Developer> {
  const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email } });
  const team = await server.deps.prisma.team.findFirstOrThrow({ where: { personalAccountId: account.id } });
  return { client, email, accountId: account.id, teamId: team.id };
}

/** The route's path with each `:param` replaced by A's object of that kind; throws on a parameter nobody mapped. */
function fill(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, (param, _name, offset: number) => {
    const key = path.slice(0, offset + param.length);
    const id = objectOf.get(key);
    if (!id) throw new Error(`no object of A's for ${key} (route ${path}): add it to the map in test/web/route-security.test.ts`);
    return encodeURIComponent(id);
  });
}
const hasParam = (path: string) => /:[A-Za-z0-9_]+/.test(path);
const urlOf = (route: { method: string; path: string }) => fill(route.path) + (route.method === 'GET' ? (queryOf.get(route.path) ?? '') : '');
const label = (route: { method: string; path: string }) => `${route.method} ${route.path}`;

/** What a GET must not change, and what a refused form must not change (session last_seen_at excluded: reading a page touches it). */
async function snapshot() {
  const p = server.deps.prisma;
  const [apiKeys, clients, requests, memberships, linkTokens, sessions, accounts, teams, recoveryCodes, auditEvents] = await Promise.all([
    p.apiKey.findMany({ select: { id: true, name: true, revokedAt: true, replacedById: true, expiresAt: true }, orderBy: { id: 'asc' } }),
    p.oAuthClient.findMany({ select: { id: true, status: true, secretVersion: true, revokedAt: true, updatedAt: true }, orderBy: { id: 'asc' } }),
    p.credentialRequest.findMany({ select: { id: true, status: true, decidedAt: true, resultSecretEncrypted: true }, orderBy: { id: 'asc' } }),
    p.membership.findMany({ select: { teamId: true, accountId: true, role: true }, orderBy: [{ teamId: 'asc' }, { accountId: 'asc' }] }),
    p.linkToken.findMany({ select: { id: true, purpose: true, usedAt: true }, orderBy: { id: 'asc' } }),
    p.session.findMany({ select: { id: true, stage: true, teamId: true, endedAt: true, expiresAt: true }, orderBy: { id: 'asc' } }),
    p.account.findMany({ select: { id: true, status: true, passwordHash: true, mfaEnabledAt: true, mfaSecretEncrypted: true, emailVerifiedAt: true }, orderBy: { id: 'asc' } }),
    p.team.findMany({ select: { id: true, name: true, status: true }, orderBy: { id: 'asc' } }),
    p.recoveryCode.count(),
    p.auditEvent.count(),
  ]);
  return { apiKeys, clients, requests, memberships, linkTokens, sessions, accounts, teams, recoveryCodes, auditEvents };
}

/** A's objects as they were made: key live, application active, request pending, teammate in, invitation open, session live. */
async function assertAsObjectsIntact(when: string) {
  const p = server.deps.prisma;
  const key = await p.apiKey.findUniqueOrThrow({ where: { id: ids.key } });
  assert.equal(key.revokedAt, null, `${when}: A's key is not revoked`);
  assert.equal(key.replacedById, null, `${when}: A's key is not rotated`);
  const client = await p.oAuthClient.findUniqueOrThrow({ where: { id: ids.client } });
  assert.equal(client.status, 'active', `${when}: A's application is active`);
  assert.equal(client.secretVersion, clientSecretVersion, `${when}: A's application secret is not rotated`);
  const request = await p.credentialRequest.findUniqueOrThrow({ where: { id: ids.request } });
  assert.equal(request.status, 'pending', `${when}: A's request is pending`);
  const member = await p.membership.findUnique({ where: { teamId_accountId: { teamId: a.teamId, accountId: ids.teammate } } });
  assert.equal(member?.role, 'member', `${when}: A's teammate is still a member`);
  const invitation = await p.linkToken.findUniqueOrThrow({ where: { id: ids.invitation } });
  assert.equal(invitation.usedAt, null, `${when}: A's invitation is pending`);
  const session = await p.session.findUniqueOrThrow({ where: { id: ids.session } });
  assert.equal(session.endedAt, null, `${when}: A's session is live`);
  const account = await p.account.findUniqueOrThrow({ where: { id: a.accountId } });
  assert.equal(account.mfaEnabledAt, null, `${when}: A's MFA is off`);
  assert.equal(account.mfaSecretEncrypted, null, `${when}: no MFA enrolment started for A`);
  assert.equal((await p.team.findUniqueOrThrow({ where: { id: a.teamId } })).name, teamName, `${when}: A's team keeps its name`);
  assert.equal((await a.client.get('/portal')).status, 200, `${when}: A is still signed in`);
}
let clientSecretVersion: number;
let teamName: string;

/** A form post with full control of the headers, carrying the client's cookies (nothing is followed). */
function rawPost(client: PortalClient, path: string, fields: Record<string, string>, headers: Record<string, string>): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    body: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: client.cookieHeader(), ...headers },
  });
}

before(async () => {
  server = await startTestServer();
  routes = routeTable(server.deps, '/portal', PORTAL_ROUTES);
  const plain = await createScope(server);
  const gated = await createScope(server, { requiresApproval: true });
  const [aClient, teammateClient, bClient] = await Promise.all([
    signUpAndSignIn(server, null, 'route-a@example.test'),
    signUpAndSignIn(server, null, 'route-a-mate@example.test'),
    signUpAndSignIn(server, null, 'route-b@example.test'),
  ]);
  [a, teammate, b] = await Promise.all([
    developer(aClient, 'route-a@example.test'),
    developer(teammateClient, 'route-a-mate@example.test'),
    developer(bClient, 'route-b@example.test'),
  ]);
  const p = server.deps.prisma;

  // A's API key and application, through the pages.
  const keyMade = await a.client.postForm('/portal/keys/new', '/portal/keys', { name: 'A key', scopes: [plain], expires: '90d' });
  assert.equal(keyMade.status, 200, 'A creates a key');
  const key = await p.apiKey.findFirstOrThrow({ where: { teamId: a.teamId, name: 'A key' } });
  const appMade = await a.client.postForm('/portal/applications/new', '/portal/applications', { name: 'A app', scopes: [plain], authMethod: 'client_secret_basic' });
  assert.equal(appMade.status, 200, 'A creates an application');
  const client = await p.oAuthClient.findFirstOrThrow({ where: { teamId: a.teamId, name: 'A app' } });
  clientSecretVersion = client.secretVersion;

  // A's credential request: a scope that needs approval, asked for through the key form.
  const requested = await a.client.postForm('/portal/keys/new', '/portal/keys', { name: 'A gated key', scopes: [gated], expires: '90d' });
  assert.equal(requested.status, 303, 'a gated key becomes a request');
  const request = await p.credentialRequest.findFirstOrThrow({ where: { teamId: a.teamId, status: 'pending' } });
  assert.equal(requested.headers.get('location'), `/portal/requests/${request.id}`);

  // A's teammate joins A's team through a mailed invitation; a second invitation stays pending.
  assert.equal((await a.client.postForm('/portal/team', '/portal/team/invitations', { email: teammate.email, role: 'member' })).status, 303);
  const joinLink = await linkFromMail(server, null, teammate.email, 'invitations/accept');
  const joined = await teammate.client.postForm(joinLink, '/portal/invitations/accept', { token: new URL(joinLink).searchParams.get('token')! });
  assert.equal(joined.status, 303, 'the teammate joins');
  assert.equal((await a.client.postForm('/portal/team', '/portal/team/invitations', { email: 'route-pending@example.test', role: 'member' })).status, 303);
  const invitation = await p.linkToken.findFirstOrThrow({ where: { teamId: a.teamId, purpose: 'team_invite', email: 'route-pending@example.test', usedAt: null } });
  const pendingLink = await linkFromMail(server, null, 'route-pending@example.test', 'invitations/accept');

  // A's session, from the sessions table: the one A's client signed in with.
  const sessions = await p.session.findMany({ where: { accountId: a.accountId, endedAt: null } });
  assert.equal(sessions.length, 1, 'A has one live session');
  teamName = (await p.team.findUniqueOrThrow({ where: { id: a.teamId } })).name;

  // Unused single-use links for the pages opened from mail: GET must not spend them.
  const stranger = new PortalClient(server.url);
  assert.equal((await stranger.postForm('/portal/sign-up', '/portal/sign-up', { email: 'route-unverified@example.test', password: STRONG_PASSWORD })).status, 200);
  const verifyLink = await linkFromMail(server, null, 'route-unverified@example.test', 'verify-email');
  assert.equal((await stranger.postForm('/portal/reset-password', '/portal/reset-password', { email: teammate.email })).status, 200);
  const resetLink = await linkFromMail(server, null, teammate.email, 'reset-password/confirm');
  queryOf.set('/portal/verify-email', new URL(verifyLink).search);
  queryOf.set('/portal/reset-password/confirm', new URL(resetLink).search);
  queryOf.set('/portal/invitations/accept', new URL(pendingLink).search);

  ids = { key: key.id, client: client.id, request: request.id, invitation: invitation.id, session: sessions[0]!.id, teammate: teammate.accountId };
  objectOf.set('/portal/keys/:id', ids.key);
  objectOf.set('/portal/applications/:id', ids.client);
  objectOf.set('/portal/requests/:id', ids.request);
  objectOf.set('/portal/team/members/:accountId', ids.teammate);
  objectOf.set('/portal/team/invitations/:id', ids.invitation);
  objectOf.set('/portal/sessions/:id', ids.session);
  await assertAsObjectsIntact('after set-up');
});
after(() => server?.close());

describe('the route table', () => {
  test('lists the portal routes from the router, HEAD left out', () => {
    assert.ok(routes.length > 40, `only ${routes.length} routes`);
    assert.ok(!routes.some((r) => r.method === 'HEAD'));
    for (const known of ['GET /portal/keys/:id', 'POST /portal/keys/:id/revoke', 'POST /portal/sessions/:id/end', 'POST /portal/team/members/:accountId/remove', 'GET /portal']) {
      assert.ok(routes.some((r) => label(r) === known), `${known} is in the table`);
    }
  });

  test('every route that takes an id has an object of A’s mapped (a new id route must be added here)', () => {
    const unmapped: string[] = [];
    for (const route of routes.filter((r) => hasParam(r.path))) {
      try {
        fill(route.path);
      } catch (error) {
        unmapped.push((error as Error).message);
      }
    }
    assert.deepEqual(unmapped, []);
  });

  test('the public pages named here exist (the list cannot go stale)', () => {
    for (const path of PUBLIC_GETS) assert.ok(routes.some((r) => r.method === 'GET' && r.path === path), `GET ${path} exists`);
    for (const path of PUBLIC_POSTS) assert.ok(routes.some((r) => r.method === 'POST' && r.path === path), `POST ${path} exists`);
  });
});

describe('a developer of another team', () => {
  test('gets 404 on every route that takes an id of A’s, with the method it is registered for; nothing changes', async () => {
    const idRoutes = routes.filter((r) => hasParam(r.path));
    assert.ok(idRoutes.length >= 10, `only ${idRoutes.length} id routes`);
    const before = await snapshot();
    assert.equal((await b.client.get('/portal')).status, 200);
    assert.ok(b.client.csrf, 'B has a CSRF token from a B page');
    const wrong: string[] = [];
    for (const route of idRoutes) {
      const url = urlOf(route);
      const answer = route.method === 'GET' ? await b.client.get(url) : await b.client.post(url, ACTING_FORM);
      if (answer.status !== 404) wrong.push(`${label(route)} → ${answer.status}`);
      else assert.match(await answer.text(), /Page not found/, `${label(route)}: the 404 page`);
    }
    assert.deepEqual(wrong, [], 'every id route answers 404 to a stranger');
    await assertAsObjectsIntact('after B');
    assert.deepEqual(await snapshot(), before, 'nothing changed');
  });

  // Ids that travel in a form field rather than the path.
  test('cannot switch into A’s team by naming it in the switch form (404, B stays in B’s team)', async () => {
    assert.ok(routes.some((r) => label(r) === 'POST /portal/team/switch'));
    const sessionsBefore = await server.deps.prisma.session.findMany({ where: { accountId: b.accountId }, select: { id: true, teamId: true } });
    const answer = await b.client.postForm('/portal/team', '/portal/team/switch', { team: a.teamId });
    assert.equal(answer.status, 404);
    assert.deepEqual(await server.deps.prisma.session.findMany({ where: { accountId: b.accountId }, select: { id: true, teamId: true } }), sessionsBefore);
    assert.doesNotMatch(await (await b.client.get('/portal/keys')).text(), /A key/);
  });
});

describe('CSRF on every form', () => {
  test('every POST route refuses A’s form without its token, from another Origin, or cross-site; nothing changes', async () => {
    const posts = routes.filter((r) => r.method === 'POST');
    assert.ok(posts.length >= 25, `only ${posts.length} POST routes`);
    const before = await snapshot();
    assert.equal((await a.client.get('/portal')).status, 200);
    const token = a.client.csrf!;
    assert.ok(token, 'A has a CSRF token');
    const wrong: string[] = [];
    for (const route of posts) {
      const url = fill(route.path);
      const attempts: [string, () => Promise<Response>][] = [
        ['no token', () => a.client.post(url, ACTING_FORM, { csrf: false })],
        ['wrong token', () => a.client.post(url, { ...ACTING_FORM, _csrf: `${token[0] === 'A' ? 'B' : 'A'}${token.slice(1)}` })],
        ['other Origin', () => a.client.post(url, ACTING_FORM, { origin: 'https://evil.example' })],
        ['cross-site fetch', () => rawPost(a.client, url, { ...ACTING_FORM, _csrf: token }, { 'sec-fetch-site': 'cross-site' })],
      ];
      for (const [how, attempt] of attempts) {
        const answer = await attempt();
        if (answer.status !== 403) wrong.push(`${label(route)} (${how}) → ${answer.status}`);
        else assert.match(await answer.text(), /This form has expired/, `${label(route)}: the CSRF page`);
      }
    }
    assert.deepEqual(wrong, [], 'every forged form answers 403');
    await assertAsObjectsIntact('after forged forms');
    assert.deepEqual(await snapshot(), before, 'nothing changed');
  });
});

describe('GET changes nothing', () => {
  test('every GET route, opened by A with A’s ids and unused mailed links, leaves every table as it was', async () => {
    const gets = routes.filter((r) => r.method === 'GET');
    const before = await snapshot();
    const failed: string[] = [];
    for (const route of gets) {
      const answer = await a.client.get(urlOf(route));
      // A's own objects load; pages for the signed-out bounce a signed-in person or show their page.
      if (answer.status >= 400) failed.push(`${label(route)} → ${answer.status}`);
      if (hasParam(route.path) && answer.status !== 200) failed.push(`${label(route)} with A's id → ${answer.status}`);
    }
    assert.deepEqual(failed, [], 'A can open every page');
    // And signed out, with the same links.
    const anonymous = new PortalClient(server.url);
    for (const route of gets) await anonymous.get(urlOf(route));
    assert.deepEqual(await snapshot(), before, 'no GET changed a table');
    await assertAsObjectsIntact('after every GET');
  });

  test('sign-out is a POST only: GET /portal/sign-out is refused (405) and ends nothing', async () => {
    assert.ok(routes.some((r) => label(r) === 'POST /portal/sign-out'));
    assert.ok(!routes.some((r) => r.method === 'GET' && /sign-out/.test(r.path)), 'no GET sign-out');
    const answer = await a.client.get('/portal/sign-out');
    assert.equal(answer.status, 405);
    assert.equal(answer.headers.get('allow'), 'POST');
    assert.equal((await server.deps.prisma.session.findUniqueOrThrow({ where: { id: ids.session } })).endedAt, null);
    assert.equal((await a.client.get('/portal')).status, 200, 'A is still signed in');
  });
});

describe('signed out', () => {
  test('every GET route but the public pages redirects to sign-in', async () => {
    const anonymous = new PortalClient(server.url);
    const wrong: string[] = [];
    for (const route of routes.filter((r) => r.method === 'GET')) {
      const answer = await anonymous.get(urlOf(route));
      const location = answer.headers.get('location');
      const toSignIn = answer.status >= 300 && answer.status < 400 && location !== null && new URL(location, server.url).pathname === '/portal/sign-in';
      if (PUBLIC_GETS.includes(route.path)) {
        if (answer.status !== 200) wrong.push(`${label(route)} (public) → ${answer.status}`);
      } else if (!toSignIn) wrong.push(`${label(route)} → ${answer.status} ${location ?? ''}`);
    }
    assert.deepEqual(wrong, []);
  });

  test('every POST route but the public forms, with a valid signed-out CSRF token, redirects to sign-in and changes nothing', async () => {
    const anonymous = new PortalClient(server.url);
    await anonymous.get('/portal/sign-in');
    assert.ok(anonymous.csrf, 'a signed-out CSRF token');
    const before = await snapshot();
    const wrong: string[] = [];
    for (const route of routes.filter((r) => r.method === 'POST' && !PUBLIC_POSTS.includes(r.path))) {
      const answer = await anonymous.post(fill(route.path), ACTING_FORM);
      const location = answer.headers.get('location');
      if (!(answer.status >= 300 && answer.status < 400 && location && new URL(location, server.url).pathname === '/portal/sign-in')) {
        wrong.push(`${label(route)} → ${answer.status} ${location ?? ''}`);
      }
    }
    assert.deepEqual(wrong, []);
    assert.deepEqual(await snapshot(), before, 'nothing changed');
    await assertAsObjectsIntact('after signed-out posts');
  });
});
