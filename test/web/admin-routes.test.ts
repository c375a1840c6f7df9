import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_ROUTES } from '../../src/web/admin/index.ts';
import { routeTable } from '../../src/web/pages.ts';
import { signedInStaff, staleStepUp, type Staff } from '../helpers/admin.ts';
import { cliJson } from '../helpers/cli.ts';
import { createScope } from '../helpers/factories.ts';
import { PortalClient, signUpAndSignIn } from '../helpers/portal.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// Security tests generated from the admin router (like route-security.test.ts for the portal):
// every admin route, with the method it is registered for, is tried by a developer (404), signed
// out (sign-in), by an auditor (reads yes, changes 403), and every form without its CSRF token
// or without a recent step-up. A new admin route is covered the day it is appended to
// ADMIN_ROUTES; a new id route fails until its object is mapped below.

let server: TestServer;
let routes: { method: string; path: string }[];
let developer: PortalClient;
let admin: Staff;
let auditor: Staff;
const objectOf = new Map<string, string>();

/** Everything an admin form could want, with values that would act if accepted. */
const ACTING_FORM: Record<string, string> = {
  reason: 'route test',
  note: 'route test',
  confirm: 'yes',
  name: 'forged',
  description: 'forged',
  audience: 'https://forged.example.test',
  // Plans: a new plan, or a credential's overrides.
  rate: '5/1m',
  quota: '10/day',
};

// The catch-all (adminNotFound, router.all) answers every method; the screens' own routes are the rest.
const screen = (route: { method: string; path: string }) => !routes.some((r) => r.method === 'PUT' && r.path === route.path);
const hasParam = (path: string) => /:[A-Za-z0-9_]+/.test(path);
const label = (route: { method: string; path: string }) => `${route.method} ${route.path}`;
function fill(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, (param, _name, offset: number) => {
    const key = path.slice(0, offset + param.length);
    const id = objectOf.get(key);
    if (!id) throw new Error(`no object for ${key} (route ${path}): map one in test/web/admin-routes.test.ts`);
    return encodeURIComponent(id);
  });
}

/** What a refused request must not change. */
async function snapshot() {
  const p = server.deps.prisma;
  const limits = { planId: true, rateLimit: true, rateWindowSeconds: true, quotaLimit: true, quotaPeriod: true } as const;
  const [apiKeys, clients, requests, sessions, accounts, teams, scopes, apis, plans, signingKeys, auditEvents] = await Promise.all([
    p.apiKey.findMany({ select: { id: true, revokedAt: true, suspendedAt: true, ...limits }, orderBy: { id: 'asc' } }),
    p.oAuthClient.findMany({ select: { id: true, status: true, revokedAt: true, ...limits }, orderBy: { id: 'asc' } }),
    p.credentialRequest.findMany({ select: { id: true, status: true }, orderBy: { id: 'asc' } }),
    p.session.findMany({ select: { id: true, endedAt: true }, orderBy: { id: 'asc' } }),
    p.account.findMany({ select: { id: true, status: true, role: true }, orderBy: { id: 'asc' } }),
    p.team.findMany({ select: { id: true, status: true }, orderBy: { id: 'asc' } }),
    p.scope.findMany({ orderBy: { name: 'asc' } }),
    p.api.findMany({ include: { scopes: { select: { name: true } } }, orderBy: { id: 'asc' } }),
    p.plan.findMany({ orderBy: { id: 'asc' } }),
    p.signingKey.findMany({ select: { kid: true, state: true }, orderBy: { kid: 'asc' } }),
    p.auditEvent.count(),
  ]);
  return { apiKeys, clients, requests, sessions, accounts, teams, scopes, apis, plans, signingKeys, auditEvents };
}

before(async () => {
  server = await startTestServer();
  routes = routeTable(server.deps, '/admin', ADMIN_ROUTES);
  const plain = await createScope(server);
  const gated = await createScope(server, { requiresApproval: true });
  developer = await signUpAndSignIn(server, null, 'admin-routes-dev@example.test');
  [admin, auditor] = await Promise.all([signedInStaff(server, 'admin-routes-admin@example.test', 'admin'), signedInStaff(server, 'admin-routes-auditor@example.test', 'auditor')]);
  const p = server.deps.prisma;
  const account = await p.account.findUniqueOrThrow({ where: { email: 'admin-routes-dev@example.test' } });
  const team = await p.team.findFirstOrThrow({ where: { personalAccountId: account.id } });
  const key = await cliJson<{ id: string }>(server, ['key', 'create', '--name', 'dev key', '--scopes', plain, '--owner', account.email]);
  const client = await cliJson<{ client_id: string }>(server, ['client', 'create', '--name', 'dev app', '--scopes', plain, '--owner', account.email]);
  assert.equal((await developer.postForm('/portal/keys/new', '/portal/keys', { name: 'gated', scopes: [gated], expires: '90d' })).status, 303);
  const request = await p.credentialRequest.findFirstOrThrow({ where: { teamId: team.id } });
  objectOf.set('/admin/keys/:id', key.id);
  objectOf.set('/admin/applications/:id', client.client_id);
  objectOf.set('/admin/developers/:id', account.id);
  objectOf.set('/admin/teams/:id', team.id);
  objectOf.set('/admin/requests/:id', request.id);
  // The catalog's (issue 8 §1.2 Catalog): a scope by name, an API by id.
  objectOf.set('/admin/catalog/scopes/:name', plain);
  await cliJson(server, ['api', 'create', 'Orders', '--audience', 'https://orders.example.test']);
  objectOf.set('/admin/catalog/apis/:id', (await p.api.findFirstOrThrow({ where: { name: 'Orders' } })).id);
});
after(() => server?.close());

describe('the admin route table', () => {
  test('lists the admin screens from the router', () => {
    for (const known of [
      'GET /admin',
      'GET /admin/search',
      'GET /admin/keys/:id',
      'POST /admin/keys/:id/revoke',
      'POST /admin/keys/:id/suspend',
      'POST /admin/keys/:id/unsuspend',
      'GET /admin/requests',
      'POST /admin/requests/:id/approve',
      'GET /admin/audit',
      'GET /admin/audit/export',
      'GET /admin/signing-keys',
      'POST /admin/signing-keys/rotate',
      'GET /admin/plans',
      'POST /admin/plans',
      'POST /admin/keys/:id/plan',
      'POST /admin/applications/:id/plan',
    ]) {
      assert.ok(routes.some((r) => label(r) === known), `${known} is in the table`);
    }
  });

  test('every route that takes an id has an object mapped', () => {
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
});

describe('a developer', () => {
  test('gets 404 on every admin route, GET and POST alike; nothing changes', async () => {
    const before = await snapshot();
    await developer.get('/portal');
    const wrong: string[] = [];
    for (const route of routes) {
      const url = fill(route.path);
      const answer = route.method === 'GET' ? await developer.get(url) : await developer.post(url, ACTING_FORM);
      if (answer.status !== 404) wrong.push(`${label(route)} → ${answer.status}`);
      else assert.match(await answer.text(), /Page not found/);
    }
    assert.deepEqual(wrong, []);
    assert.deepEqual(await snapshot(), before);
  });
});

describe('signed out', () => {
  test('every admin route leads to sign-in; nothing changes', async () => {
    const anonymous = new PortalClient(server.url);
    await anonymous.get('/portal/sign-in');
    const before = await snapshot();
    const wrong: string[] = [];
    for (const route of routes) {
      const answer = route.method === 'GET' ? await anonymous.get(fill(route.path)) : await anonymous.post(fill(route.path), ACTING_FORM);
      const location = answer.headers.get('location');
      if (!(answer.status >= 300 && answer.status < 400 && location && new URL(location, server.url).pathname === '/portal/sign-in')) wrong.push(`${label(route)} → ${answer.status}`);
    }
    assert.deepEqual(wrong, []);
    assert.deepEqual(await snapshot(), before);
  });
});

describe('an auditor', () => {
  test('reads every admin page', async () => {
    const wrong: string[] = [];
    for (const route of routes.filter((r) => r.method === 'GET' && screen(r))) {
      const answer = await auditor.client.get(fill(route.path));
      if (answer.status !== 200) wrong.push(`${label(route)} → ${answer.status}`);
    }
    assert.deepEqual(wrong, []);
  });

  test('sees no action buttons, and every forged change is refused with 403; nothing changes', async () => {
    const page = await (await auditor.client.get(fill('/admin/keys/:id'))).text();
    assert.doesNotMatch(page, /<button[^>]*>Revoke<\/button>/);
    assert.doesNotMatch(page, /name="reason"/);
    assert.match(page, /auditor/);
    const before = await snapshot();
    const wrong: string[] = [];
    for (const route of routes.filter((r) => r.method === 'POST' && screen(r))) {
      const answer = await auditor.client.post(fill(route.path), ACTING_FORM);
      if (answer.status !== 403) wrong.push(`${label(route)} → ${answer.status}`);
    }
    assert.deepEqual(wrong, []);
    assert.deepEqual(await snapshot(), before);
  });
});

describe('an admin', () => {
  test('every form without its CSRF token, or from another origin, is refused with 403; nothing changes', async () => {
    await admin.client.get('/admin');
    const before = await snapshot();
    const wrong: string[] = [];
    for (const route of routes.filter((r) => r.method === 'POST')) {
      const noToken = await admin.client.post(fill(route.path), ACTING_FORM, { csrf: false });
      const otherSite = await admin.client.post(fill(route.path), ACTING_FORM, { origin: 'https://evil.example' });
      if (noToken.status !== 403 || otherSite.status !== 403) wrong.push(`${label(route)} → ${noToken.status}/${otherSite.status}`);
    }
    assert.deepEqual(wrong, []);
    assert.deepEqual(await snapshot(), before);
  });

  test('every form without a recent step-up gets the code prompt, carrying its fields; nothing changes', async () => {
    await staleStepUp(server, admin.id);
    await admin.client.get('/admin');
    const before = await snapshot();
    const wrong: string[] = [];
    for (const route of routes.filter((r) => r.method === 'POST' && screen(r))) {
      const answer = await admin.client.post(fill(route.path), ACTING_FORM);
      const html = await answer.text();
      const prompt = /Authentication code/.test(html) && /name="step_up_code"/.test(html) && html.includes(`action="${fill(route.path)}"`) && /name="reason" value="route test"/.test(html);
      if (answer.status !== 200 || !prompt) wrong.push(`${label(route)} → ${answer.status}`);
      assert.doesNotMatch(html, /name="_csrf" value="[^"]*"[^>]*>\s*<input type="hidden" name="_csrf"/, 'the CSRF token is not carried twice');
    }
    assert.deepEqual(wrong, []);
    assert.deepEqual(await snapshot(), before);
  });
});
