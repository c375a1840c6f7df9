import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signedInStaff, staleStepUp, type Staff } from '../helpers/admin.ts';
import { cliJson } from '../helpers/cli.ts';
import { createClient, createScope } from '../helpers/factories.ts';
import { PortalClient, signUpAndSignIn, STRONG_PASSWORD } from '../helpers/portal.ts';
import { rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';
import { verifyAs } from '../helpers/verify.ts';

// The admin screens over HTTP (issue 8 §1.1, §1.2, §2): the MFA gate, step-up with the form
// carried through the code prompt, reasons in the audit trail, repeats that change nothing,
// search, requests.
let server: TestServer;
let admin: Staff;
let developer: PortalClient;
let devAccount: { id: string; email: string };
let devTeam: string;
let scope: string;

const text = async (response: Response) => response.text();
const events = (type: string, subjectId: string) => server.deps.prisma.auditEvent.findMany({ where: { type, subjectId }, orderBy: { seq: 'asc' } });

/** Posts an admin form the way a browser would: the step-up prompt answered with a recovery code when it shows, then the confirmation. */
async function act(staff: Staff, page: string, action: string, fields: Record<string, string>): Promise<Response> {
  await staff.client.get(page);
  let answer = await staff.client.post(action, fields);
  let html = await answer.clone().text();
  if (/name="step_up_code"/.test(html)) {
    const hidden = Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].filter((m) => m[1] !== '_csrf').map((m) => [m[1]!, m[2]!]));
    answer = await staff.client.post(action, { ...hidden, step_up_code: staff.recoveryCodes.shift()! });
    html = await answer.clone().text();
  }
  if (/name="confirm" value="yes"/.test(html)) {
    const hidden = Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].filter((m) => m[1] !== '_csrf').map((m) => [m[1]!, m[2]!]));
    answer = await staff.client.post(action, hidden);
  }
  return answer;
}

before(async () => {
  server = await startTestServer();
  scope = await createScope(server);
  admin = await signedInStaff(server, 'screens-admin@example.test', 'admin');
  developer = await signUpAndSignIn(server, null, 'screens-dev@example.test');
  devAccount = await server.deps.prisma.account.findUniqueOrThrow({ where: { email: 'screens-dev@example.test' }, select: { id: true, email: true } });
  devTeam = (await server.deps.prisma.team.findFirstOrThrow({ where: { personalAccountId: devAccount.id } })).id;
});
after(() => server?.close());

describe('roles and the MFA gate', () => {
  it('sends an admin or auditor without MFA to Security before any admin page', async () => {
    for (const role of ['admin', 'auditor'] as const) {
      const staff = await signedInStaff(server, `no-mfa-${role}@example.test`, role, { mfa: false });
      for (const path of ['/admin', '/admin/search?q=x', `/admin/teams/${devTeam}`]) {
        const answer = await staff.client.get(path);
        assert.equal(answer.status, 303, `${role} ${path}`);
        assert.equal(answer.headers.get('location'), '/portal/security');
      }
      const security = await text(await staff.client.get('/portal/security'));
      assert.match(security, /Turn on two-factor authentication first/);
    }
  });

  it('shows the Admin link in the portal to admins and auditors only', async () => {
    const auditor = await signedInStaff(server, 'screens-auditor@example.test', 'auditor');
    assert.match(await text(await admin.client.get('/portal')), /<a href="\/admin">Admin<\/a>/);
    assert.match(await text(await auditor.client.get('/portal')), /<a href="\/admin">Admin<\/a>/);
    assert.doesNotMatch(await text(await developer.get('/portal')), /href="\/admin"/);
  });

  it('latchkey admin create refuses an unknown role (exit 2) and a repeat of the same role', async () => {
    const { cli } = await import('../helpers/cli.ts');
    const bad = await cli(server, ['admin', 'create', '--email', 'x@example.test', '--role', 'owner', '--json']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /role must be admin or auditor/);
    const again = await cli(server, ['admin', 'create', '--email', admin.email, '--role', 'admin', '--json']);
    assert.notEqual(again.code, 0);
  });
});

describe('the dashboard', () => {
  it('counts what Latchkey holds', async () => {
    const html = await text(await admin.client.get('/admin'));
    const developers = await server.deps.prisma.account.count({ where: { role: 'developer' } });
    assert.match(html, new RegExp(`<span class="stat-value">${developers}</span><span class="stat-label">Developers</span>`));
    assert.match(html, /No alerts in the last 7 days/);
    assert.match(html, /<label for="field-q">Search<\/label>/);
  });
});

describe('search', () => {
  let keyId: string;
  let fullKey: string;
  before(async () => {
    const key = await cliJson<{ id: string; key: string }>(server, ['key', 'create', '--name', 'needle key', '--scopes', scope, '--owner', devAccount.email]);
    rememberSecret(key.key);
    keyId = key.id;
    fullKey = key.key;
    for (let i = 0; i < 12; i++) await cliJson(server, ['key', 'create', '--name', `bulk 50%_off ${i}`, '--scopes', scope]);
  });

  it('finds a key by its id first, by its lk_ prefix, and by a pasted full key', async () => {
    for (const q of [keyId, `lk_${keyId}`, keyId.slice(0, 6)]) {
      const html = await text(await admin.client.get(`/admin/search?q=${encodeURIComponent(q)}`));
      assert.match(html, new RegExp(`href="/admin/keys/${keyId}"`), q);
    }
    // A pasted full key: sent on to its public part at once, so the secret leaves the address bar.
    const pasted = await admin.client.get(`/admin/search?q=${encodeURIComponent(fullKey)}`);
    assert.equal(pasted.status, 302);
    assert.equal(pasted.headers.get('location'), `/admin/search?q=lk_${keyId}`);
  });

  it('matches names by prefix, any case, takes wildcards literally and bounds each group', async () => {
    const percent = await text(await admin.client.get(`/admin/search?q=${encodeURIComponent('%')}`));
    assert.doesNotMatch(percent, /needle key/, '% is not a wildcard');
    const bulk = await text(await admin.client.get(`/admin/search?q=${encodeURIComponent('BULK 50%_off')}`));
    assert.equal([...bulk.matchAll(/bulk 50%_off/g)].length, 10, 'ten shown');
    assert.match(bulk, /make the search more precise/);
  });

  it('finds developers by the start of their email or by domain, and teams by name, grouped by kind', async () => {
    const html = await text(await admin.client.get('/admin/search?q=screens-dev'));
    assert.match(html, /<h2 id="developers-heading">/);
    assert.match(html, /<h2 id="teams-heading">/);
    assert.match(html, new RegExp(`href="/admin/developers/${devAccount.id}"`));
    assert.match(html, new RegExp(`href="/admin/teams/${devTeam}"`));
    assert.match(await text(await admin.client.get('/admin/search?q=zzz-nothing')), /Nothing matches/);
    const domain = await text(await admin.client.get(`/admin/search?q=${encodeURIComponent('@example.test')}`));
    assert.match(domain, new RegExp(`href="/admin/developers/${devAccount.id}"`), 'a domain finds its people');
  });
});

describe('revoking a key', () => {
  let keyId: string;
  before(async () => {
    keyId = (await cliJson<{ id: string; key: string }>(server, ['key', 'create', '--name', 'to revoke', '--scopes', scope, '--owner', devAccount.email])).id;
  });

  it('needs a reason', async () => {
    await admin.client.get(`/admin/keys/${keyId}`);
    const answer = await admin.client.post(`/admin/keys/${keyId}/revoke`, { reason: '  ' });
    assert.equal(answer.status, 400);
    assert.match(await text(answer), /Give a reason: it is kept in the audit log/);
    assert.equal((await server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: keyId } })).revokedAt, null);
  });

  it('with a stale step-up: a wrong code is refused and changes nothing', async () => {
    await staleStepUp(server, admin.id);
    await admin.client.get(`/admin/keys/${keyId}`);
    const prompt = await admin.client.post(`/admin/keys/${keyId}/revoke`, { reason: 'leaked in a log', password: 'hunter2-hunter2', client_secret: 'lks_not-carried', code: '123456' });
    const promptHtml = await text(prompt);
    assert.match(promptHtml, /name="reason" value="leaked in a log"/);
    assert.doesNotMatch(promptHtml, /hunter2|lks_not-carried|name="code"/, 'nothing secret-like is carried through the prompt');
    const wrong = await admin.client.post(`/admin/keys/${keyId}/revoke`, { reason: 'leaked in a log', step_up_code: '000000' });
    assert.equal(wrong.status, 400);
    assert.match(await text(wrong), /That code is not right/);
    assert.equal((await server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: keyId } })).revokedAt, null);
  });

  it('goes ahead after the code prompt and the confirmation, recording the admin, the reason and the request id', async () => {
    await staleStepUp(server, admin.id);
    const done = await act(admin, `/admin/keys/${keyId}`, `/admin/keys/${keyId}/revoke`, { reason: 'leaked in a log' });
    assert.equal(done.status, 303);
    const key = await server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: keyId } });
    assert.ok(key.revokedAt);
    assert.equal(key.revokedReason, 'leaked in a log');
    const [event] = await events('api_key.revoked', keyId);
    assert.equal(event?.actorType, 'account');
    assert.equal(event?.actorId, admin.id);
    assert.ok(event?.requestId, 'the request id');
    assert.equal((event?.data as { reason: string }).reason, 'leaked in a log');
    const page = await text(await admin.client.follow(done));
    assert.match(page, /revoked/);
    assert.match(page, /leaked in a log/);
  });

  it('a second revoke: a clear message and no second event', async () => {
    await admin.client.get(`/admin/keys/${keyId}`);
    const again = await admin.client.post(`/admin/keys/${keyId}/revoke`, { reason: 'again', confirm: 'yes' });
    assert.equal(again.status, 303);
    assert.match(await text(await admin.client.follow(again)), /Nothing changed: this key is already revoked/);
    assert.equal((await events('api_key.revoked', keyId)).length, 1);
  });
});

describe('suspending a key', () => {
  const API = 'https://suspend.example.test';
  let key: { id: string; key: string };
  let gateway: Awaited<ReturnType<typeof createClient>>;
  let page: string;
  const keyRow = () => server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: key.id } });
  const verify = async () => (await verifyAs(server.url, gateway, { key: key.key })).body;
  before(async () => {
    key = await cliJson(server, ['key', 'create', '--name', 'spiking', '--scopes', scope, '--audience', API, '--owner', devAccount.email]);
    rememberSecret(key.key);
    gateway = await createClient(server, { scopes: [scope], audiences: [API] });
    page = `/admin/keys/${key.id}`;
  });

  it('an active key’s page offers Suspend beside Revoke, each with its own Reason', async () => {
    const html = await text(await admin.client.get(page));
    assert.match(html, /<button type="submit" class="button button-danger">Suspend<\/button>/);
    assert.doesNotMatch(html, />Unsuspend<\/button>/);
    assert.match(html, /<label for="suspend-reason">Reason/);
    assert.match(html, /<label for="revoke-reason">Reason/);
  });

  it('needs a reason', async () => {
    await admin.client.get(page);
    const answer = await admin.client.post(`${page}/suspend`, { reason: ' ', confirm: 'yes' });
    assert.equal(answer.status, 400);
    assert.match(await text(answer), /Give a reason: it is kept in the audit log/);
    assert.equal((await keyRow()).suspendedAt, null);
  });

  it('a developer gets 404 and an auditor 403 on the forms; nothing changes', async () => {
    const auditor = await signedInStaff(server, 'screens-key-auditor@example.test', 'auditor');
    assert.doesNotMatch(await text(await auditor.client.get(page)), />(Suspend|Unsuspend)<\/button>/);
    const before = await server.deps.prisma.auditEvent.count();
    for (const action of ['suspend', 'unsuspend']) {
      await developer.get('/portal');
      assert.equal((await developer.post(`${page}/${action}`, { reason: 'forged', confirm: 'yes' })).status, 404);
      assert.equal((await auditor.client.post(`${page}/${action}`, { reason: 'forged', confirm: 'yes' })).status, 403);
    }
    assert.equal((await keyRow()).suspendedAt, null);
    assert.equal(await server.deps.prisma.auditEvent.count(), before);
    assert.equal((await verify()).code, 'VALID');
  });

  it('suspends with a reason: checks answer SUSPENDED, the event names the admin, the page says why', async () => {
    assert.equal((await verify()).code, 'VALID', 'cached as valid first');
    const done = await act(admin, page, `${page}/suspend`, { reason: 'traffic spiked 100x' });
    assert.equal(done.status, 303);
    assert.ok((await keyRow()).suspendedAt);
    assert.deepEqual([(await verify()).valid, (await verify()).code], [false, 'SUSPENDED']);
    const [event, ...more] = await events('api_key.suspended', key.id);
    assert.equal(more.length, 0);
    assert.equal(event?.actorType, 'account');
    assert.equal(event?.actorId, admin.id);
    assert.ok(event?.requestId, 'the request id');
    assert.ok(event?.ip, 'the address');
    assert.equal((event?.data as { reason: string }).reason, 'traffic spiked 100x');
    const html = await text(await admin.client.follow(done));
    assert.match(html, new RegExp(`Key lk_${key.id} suspended`));
    assert.match(html, /<dt>Status<\/dt>\s*<dd>\s*<span class="badge badge-red">suspended<\/span>/);
    assert.match(html, /<dt>Suspended<\/dt>\s*<dd>[^]*?traffic spiked 100x[^]*?<\/dd>/);
    assert.match(html, /<button type="submit" class="button button-primary">Unsuspend<\/button>/);
    assert.doesNotMatch(html, />Suspend<\/button>/);
  });

  it('a second suspend: a clear message and no second event', async () => {
    await admin.client.get(page);
    const again = await admin.client.post(`${page}/suspend`, { reason: 'again', confirm: 'yes' });
    assert.match(await text(await admin.client.follow(again)), /Nothing changed: this key is already suspended/);
    assert.equal((await events('api_key.suspended', key.id)).length, 1);
  });

  it('unsuspends with a reason: checks answer VALID again; a repeat changes nothing', async () => {
    const done = await act(admin, page, `${page}/unsuspend`, { reason: 'customer load test, expected' });
    assert.match(await text(await admin.client.follow(done)), new RegExp(`Key lk_${key.id} is no longer suspended`));
    assert.equal((await keyRow()).suspendedAt, null);
    assert.equal((await verify()).code, 'VALID');
    const [event] = await events('api_key.unsuspended', key.id);
    assert.equal(event?.actorId, admin.id);
    assert.equal((event?.data as { reason: string }).reason, 'customer load test, expected');
    const again = await act(admin, page, `${page}/unsuspend`, { reason: 'again' });
    assert.match(await text(await admin.client.follow(again)), /Nothing changed: this key is not suspended/);
    assert.equal((await events('api_key.unsuspended', key.id)).length, 1);
  });

  it('a revoked key offers neither, and refuses a forged suspend or unsuspend with a message', async () => {
    await act(admin, page, `${page}/suspend`, { reason: 'suspended, then revoked' });
    await act(admin, page, `${page}/revoke`, { reason: 'done with it' });
    assert.doesNotMatch(await text(await admin.client.get(page)), />(Suspend|Unsuspend)<\/button>/);
    const unsuspendedBefore = (await events('api_key.unsuspended', key.id)).length;
    for (const action of ['suspend', 'unsuspend']) {
      const answer = await admin.client.post(`${page}/${action}`, { reason: 'late', confirm: 'yes' });
      assert.match(await text(await admin.client.follow(answer)), /Nothing changed: this key is revoked/, action);
    }
    assert.equal((await events('api_key.suspended', key.id)).length, 2);
    assert.equal((await events('api_key.unsuspended', key.id)).length, unsuspendedBefore);
  });
});

describe('applications, developers and teams', () => {
  let clientId: string;
  before(async () => {
    const created = await cliJson<{ client_id: string; client_secret: string }>(server, ['client', 'create', '--name', 'screens app', '--scopes', scope, '--owner', devAccount.email]);
    rememberSecret(created.client_secret);
    clientId = created.client_id;
  });

  it('revokes an application with a reason, once', async () => {
    assert.equal((await act(admin, `/admin/applications/${clientId}`, `/admin/applications/${clientId}/revoke`, { reason: 'abandoned' })).status, 303);
    assert.equal((await server.deps.prisma.oAuthClient.findUniqueOrThrow({ where: { id: clientId } })).status, 'revoked');
    const again = await act(admin, `/admin/applications/${clientId}`, `/admin/applications/${clientId}/revoke`, { reason: 'again' });
    assert.match(await text(await admin.client.follow(again)), /Nothing changed: this application is already revoked/);
    const revoked = await events('client.revoked', clientId);
    assert.equal(revoked.length, 1);
    assert.equal((revoked[0]!.data as { reason: string }).reason, 'abandoned');
  });

  it('suspends and unsuspends a team; a repeat changes nothing', async () => {
    const page = `/admin/teams/${devTeam}`;
    assert.match(await text(await admin.client.get(page)), /<button type="submit" class="button button-danger">Suspend<\/button>/);
    await act(admin, page, `${page}/suspend`, { reason: 'abuse report 17' });
    assert.equal((await server.deps.prisma.team.findUniqueOrThrow({ where: { id: devTeam } })).status, 'suspended');
    const again = await act(admin, page, `${page}/suspend`, { reason: 'again' });
    assert.match(await text(await admin.client.follow(again)), /Nothing changed: team is already suspended/);
    assert.equal((await events('team.suspended', devTeam)).length, 1);
    const html = await text(await admin.client.get(page));
    assert.match(html, />Unsuspend<\/button>/);
    await act(admin, page, `${page}/unsuspend`, { reason: 'resolved' });
    assert.equal((await server.deps.prisma.team.findUniqueOrThrow({ where: { id: devTeam } })).status, 'active');
  });

  it('ends a developer’s sessions; with none left, says so and records nothing', async () => {
    const page = `/admin/developers/${devAccount.id}`;
    assert.equal((await developer.get('/portal')).status, 200);
    await act(admin, page, `${page}/end-sessions`, { reason: 'shared laptop' });
    assert.equal((await developer.get('/portal')).status, 302, 'the developer is signed out');
    const again = await act(admin, page, `${page}/end-sessions`, { reason: 'again' });
    assert.match(await text(await admin.client.follow(again)), /Nothing changed: they have no live session/);
    const ended = await server.deps.prisma.auditEvent.findMany({ where: { type: 'session.ended', subjectId: devAccount.id, actorId: admin.id } });
    assert.equal(ended.length, 1);
    assert.equal((ended[0]!.data as { reason: string }).reason, 'shared laptop');
  });

  it('an admin cannot suspend themselves: a message, nothing changes', async () => {
    const page = `/admin/developers/${admin.id}`;
    const answer = await act(admin, page, `${page}/suspend`, { reason: 'oops' });
    assert.match(await text(await admin.client.follow(answer)), /Nothing changed: you cannot suspend your own account/);
    assert.equal((await server.deps.prisma.account.findUniqueOrThrow({ where: { id: admin.id } })).status, 'active');
  });
});

describe('requests', () => {
  let gated: string;
  let requester: PortalClient;
  before(async () => {
    gated = await createScope(server, { requiresApproval: true });
    requester = await signUpAndSignIn(server, null, 'screens-requester@example.test', STRONG_PASSWORD);
  });

  const ask = async (name: string) => {
    const answer = await requester.postForm('/portal/keys/new', '/portal/keys', { name, scopes: [gated], expires: '90d' });
    assert.equal(answer.status, 303);
    return answer.headers.get('location')!.split('/').at(-1)!;
  };

  it('lists pending requests; approving issues the credential, once', async () => {
    const id = await ask('needs approval');
    assert.match(await text(await admin.client.get('/admin/requests')), new RegExp(`href="/admin/requests/${id}"`));
    const done = await act(admin, `/admin/requests/${id}`, `/admin/requests/${id}/approve`, { note: 'ok for the pilot' });
    assert.equal(done.status, 303);
    const request = await server.deps.prisma.credentialRequest.findUniqueOrThrow({ where: { id } });
    assert.equal(request.status, 'approved');
    assert.equal(request.decidedById, admin.id);
    assert.equal(request.note, 'ok for the pilot');
    const again = await admin.client.post(`/admin/requests/${id}/approve`, { note: 'twice' });
    assert.match(await text(await admin.client.follow(again)), /Nothing changed: request is already approved/);
    assert.equal((await events('request.approved', id)).length, 1);
  });

  it('denying needs a note', async () => {
    const id = await ask('to deny');
    await admin.client.get(`/admin/requests/${id}`);
    const empty = await admin.client.post(`/admin/requests/${id}/deny`, { note: '' });
    assert.equal(empty.status, 400);
    assert.match(await text(empty), /Say why/);
    await act(admin, `/admin/requests/${id}`, `/admin/requests/${id}/deny`, { note: 'use the sandbox scope' });
    assert.equal((await server.deps.prisma.credentialRequest.findUniqueOrThrow({ where: { id } })).status, 'denied');
  });
});
