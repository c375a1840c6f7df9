import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signedInStaff, staleStepUp, type Staff } from '../helpers/admin.ts';
import { cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';
import { verifyAs } from '../helpers/verify.ts';

// The Signing keys and Plans admin screens over HTTP (issue 8 §1.2 Signing keys, §1.4;
// issue 9 §1.1): Rotate now behind step-up, reason and confirmation, refused while a rotation
// is under way; plans listed and created; a key's plan changed on its page, and
// /v1/keys/verify answers with the new limits.
const API = 'https://orders.example.test';
let server: TestServer;
let admin: Staff;
let auditor: Staff;
let gateway: CreatedClient;
let scope: string;
let key: { id: string; key: string };

const hiddenFields = (html: string) =>
  Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].filter((m) => m[1] !== '_csrf').map((m) => [m[1]!, m[2]!.replace(/&quot;/g, '"').replace(/&amp;/g, '&')]));

/** Posts an admin form as a browser would: the step-up prompt answered with a recovery code when it shows, then the confirmation when one is asked. */
async function act(staff: Staff, page: string, action: string, fields: Record<string, string>): Promise<{ answer: Response; steps: string[] }> {
  const steps: string[] = [];
  await staff.client.get(page);
  let answer = await staff.client.post(action, fields);
  let html = await answer.clone().text();
  if (/name="step_up_code"/.test(html)) {
    steps.push('step-up');
    answer = await staff.client.post(action, { ...hiddenFields(html), step_up_code: staff.recoveryCodes.shift()! });
    html = await answer.clone().text();
  }
  if (/name="confirm" value="yes"/.test(html)) {
    steps.push('confirm');
    answer = await staff.client.post(action, hiddenFields(html));
  }
  return { answer, steps };
}

const flashOf = async (staff: Staff, answer: Response) => {
  assert.equal(answer.status, 303, `a redirect, not ${answer.status}`);
  const html = await (await staff.client.follow(answer)).text();
  return /<div class="flash flash-(\w+)" role="\w+">([^<]*)<\/div>/.exec(html)?.slice(1) ?? [];
};

before(async () => {
  server = await startTestServer();
  scope = await createScope(server);
  [admin, auditor] = await Promise.all([signedInStaff(server, 'keys-admin@example.test', 'admin'), signedInStaff(server, 'keys-auditor@example.test', 'auditor')]);
  gateway = await createClient(server, { scopes: [scope], audiences: [API] });
  key = await cliJson(server, ['key', 'create', '--name', 'orders reader', '--scopes', scope, '--audience', API]);
  rememberSecret(key.key);
});
after(() => server?.close());

describe('signing keys', () => {
  it('lists every key with its life cycle; the auditor sees no Rotate now', async () => {
    const html = await (await admin.client.get('/admin/signing-keys')).text();
    const current = await server.deps.prisma.signingKey.findFirstOrThrow({ where: { state: 'current' } });
    assert.match(html, new RegExp(`<code class="kid">${current.kid}</code></td><td>ES256</td><td><span class="badge badge-green">current</span>`));
    for (const head of ['Key id (kid)', 'Algorithm', 'State', 'Created (UTC)', 'Activates (UTC)', 'Retires (UTC)', 'Leaves JWKS (UTC)']) assert.match(html, new RegExp(`<th scope="col">${head.replace(/[()]/g, '\\$&')}</th>`));
    assert.match(html, /<button type="submit" class="button button-primary">Rotate now<\/button>/);
    const read = await (await auditor.client.get('/admin/signing-keys')).text();
    assert.match(read, new RegExp(`<code class="kid">${current.kid}</code>`));
    assert.doesNotMatch(read, /Rotate now<\/button>/);
    assert.doesNotMatch(read, /name="reason"/);
  });

  it('a reason is required: the message sits beside the field, nothing is created', async () => {
    const answer = await admin.client.postForm('/admin/signing-keys', '/admin/signing-keys/rotate', { reason: '  ' });
    assert.equal(answer.status, 400);
    assert.match(await answer.text(), /id="field-reason-error">Give a reason: it is kept in the audit log\./);
    assert.equal(await server.deps.prisma.signingKey.count(), 1);
  });

  it('Rotate now: step-up, confirmation, then a next key is published, audited with the admin, reason and request id', async () => {
    await staleStepUp(server, admin.id);
    const before = await server.deps.prisma.signingKey.findFirstOrThrow({ where: { state: 'current' } });
    const { answer, steps } = await act(admin, '/admin/signing-keys', '/admin/signing-keys/rotate', { reason: 'quarterly rotation' });
    assert.deepEqual(steps, ['step-up', 'confirm']);
    const [kind, text] = await flashOf(admin, answer);
    assert.equal(kind, 'success');
    const next = await server.deps.prisma.signingKey.findFirstOrThrow({ where: { state: 'next' } });
    assert.match(text!, new RegExp(`Key ${next.kid} is published; it starts signing at .* and replaces ${before.kid}\\.`));
    const event = await server.deps.prisma.auditEvent.findFirstOrThrow({ where: { type: 'signing_key.created', subjectId: next.kid } });
    assert.equal(event.actorId, admin.id);
    assert.ok(event.requestId);
    assert.equal((event.data as Record<string, unknown>).reason, 'quarterly rotation');
    const html = await (await admin.client.get('/admin/signing-keys')).text();
    assert.match(html, new RegExp(`<code class="kid">${next.kid}</code></td><td>ES256</td><td><span class="badge badge-blue">next</span>`));
    assert.match(html, new RegExp(`A rotation is under way: key <code>${next.kid}</code> is published`));
    assert.doesNotMatch(html, /Rotate now<\/button>/, 'no button while one is under way');
  });

  it('a second rotation while one is under way: a clear message, nothing created, no event', async () => {
    const [keys, events] = [await server.deps.prisma.signingKey.count(), await server.deps.prisma.auditEvent.count({ where: { type: 'signing_key.created' } })];
    const answer = await admin.client.post('/admin/signing-keys/rotate', { reason: 'again', confirm: 'yes' });
    const [kind, text] = await flashOf(admin, answer);
    assert.equal(kind, 'error');
    assert.match(text!, /^Nothing changed: a rotation is already under way \(key [\w-]+ becomes current at \d{4}-/);
    assert.equal(await server.deps.prisma.signingKey.count(), keys);
    assert.equal(await server.deps.prisma.auditEvent.count({ where: { type: 'signing_key.created' } }), events);
  });
});

describe('plans', () => {
  it('creates a plan; bad rate, bad quota and a taken name are refused beside the field', async () => {
    const empty = await (await admin.client.get('/admin/plans')).text();
    assert.match(empty, /No plans yet/);
    const bad = await admin.client.postForm('/admin/plans', '/admin/plans', { name: 'has space', rate: '100 per minute', quota: '5/week' });
    assert.equal(bad.status, 400);
    const html = await bad.text();
    assert.match(html, /id="field-name-error">Use 1 to 64 of A-Z/);
    assert.match(html, /id="field-rate-error">Rate must be N\/DURATION such as 100\/1m/);
    assert.match(html, /id="field-quota-error">Quota must be N\/day or N\/month/);
    assert.match(html, /value="100 per minute"/, 'what was typed is kept');
    assert.equal(await server.deps.prisma.plan.count(), 0);
    const created = await admin.client.postForm('/admin/plans', '/admin/plans', { name: 'pro', rate: '50/1m', quota: '10000/day' });
    assert.deepEqual(await flashOf(admin, created), ['success', 'Plan pro created: give it to a key or an application on its page.']);
    const taken = await admin.client.postForm('/admin/plans', '/admin/plans', { name: 'pro', rate: '5/1s' });
    assert.equal(taken.status, 400);
    assert.match(await taken.text(), /id="field-name-error">A plan named pro already exists\. Choose another name\./);
    const list = await (await auditor.client.get('/admin/plans')).text();
    assert.match(list, /<td><code>pro<\/code><\/td><td>50\/1m<\/td><td>10000\/day<\/td><td>0<\/td><td>0<\/td>/);
    assert.doesNotMatch(list, /Create plan/, 'the auditor gets no form');
    const event = await server.deps.prisma.auditEvent.findFirstOrThrow({ where: { type: 'plan.created' } });
    assert.equal(event.actorId, admin.id);
  });

  it('changes a key’s plan on its page; /v1/keys/verify then answers with the plan’s rate limit, and with an override', async () => {
    const before = await verifyAs(server.url, gateway, { key: key.key });
    assert.equal(before.body.code, 'VALID');
    assert.equal(before.body.ratelimit, undefined, 'no plan, no limit');
    const page = await (await admin.client.get(`/admin/keys/${key.id}`)).text();
    assert.match(page, /<h2 id="limits-heading">Plan and limits<\/h2>/);
    assert.match(page, new RegExp(`<a class="button button-secondary" href="/admin/keys/${key.id}/plan">Change plan</a>`));
    const { answer, steps } = await act(admin, `/admin/keys/${key.id}/plan`, `/admin/keys/${key.id}/plan`, { plan: 'pro', rate: '', quota: '', reason: 'upgraded, ticket 42' });
    assert.deepEqual(steps, []);
    assert.deepEqual(await flashOf(admin, answer), ['success', 'Plan pro (rate 50/1m, quota 10000/day): applies on every node within a second.']);
    const limited = await verifyAs(server.url, gateway, { key: key.key });
    assert.equal(limited.body.code, 'VALID');
    assert.equal(limited.body.ratelimit.limit, 50);
    assert.equal(limited.body.quota.limit, 10_000);
    const event = await server.deps.prisma.auditEvent.findFirstOrThrow({ where: { type: 'api_key.plan_changed', subjectId: key.id } });
    assert.equal(event.actorId, admin.id);
    assert.equal((event.data as Record<string, unknown>).reason, 'upgraded, ticket 42');
    // An override of the rate keeps the plan's quota.
    const override = await act(admin, `/admin/keys/${key.id}/plan`, `/admin/keys/${key.id}/plan`, { plan: 'pro', rate: '3/1m', quota: '' });
    assert.equal(override.answer.status, 303);
    const overridden = await verifyAs(server.url, gateway, { key: key.key });
    assert.equal(overridden.body.ratelimit.limit, 3);
    assert.equal(overridden.body.quota.limit, 10_000);
    const shown = await (await auditor.client.get(`/admin/keys/${key.id}`)).text();
    assert.match(shown, /<dt>Plan<\/dt><dd><a href="\/admin\/plans">pro<\/a><\/dd><dt>Rate limit<\/dt><dd>3\/1m<span class="muted small"> \(this key's own\)<\/span>/);
    assert.doesNotMatch(shown, /Change plan/, 'the auditor cannot change it');
    const planPage = await (await auditor.client.get(`/admin/keys/${key.id}/plan`)).text();
    assert.doesNotMatch(planPage, /Save plan/);
    // Back to no plan: no limits.
    await act(admin, `/admin/keys/${key.id}/plan`, `/admin/keys/${key.id}/plan`, { plan: '', rate: '', quota: '' });
    assert.equal((await verifyAs(server.url, gateway, { key: key.key })).body.ratelimit, undefined);
  });

  it('refuses an unknown plan and bad overrides beside the field; nothing changes', async () => {
    const before = await server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: key.id }, select: { planId: true, rateLimit: true, quotaLimit: true } });
    const answer = await admin.client.postForm(`/admin/keys/${key.id}/plan`, `/admin/keys/${key.id}/plan`, { plan: 'gold', rate: '0/1m', quota: 'lots' });
    assert.equal(answer.status, 400);
    const html = await answer.text();
    assert.match(html, /id="field-plan-error">Choose a plan from the list, or No plan\./);
    assert.match(html, /id="field-rate-error">Rate must be N\/DURATION/);
    assert.match(html, /id="field-quota-error">Quota must be N\/day or N\/month/);
    assert.deepEqual(await server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: key.id }, select: { planId: true, rateLimit: true, quotaLimit: true } }), before);
    assert.equal((await admin.client.get('/admin/keys/lk_nope/plan')).status, 404);
    assert.equal((await admin.client.get('/admin/applications/not-a-client/plan')).status, 404);
  });

  it('changes an application’s plan on its page', async () => {
    const app = await createClient(server, { name: 'order sync', scopes: [scope] });
    const page = await (await admin.client.get(`/admin/applications/${app.client_id}`)).text();
    assert.match(page, new RegExp(`href="/admin/applications/${app.client_id}/plan">Change plan</a>`));
    const { answer } = await act(admin, `/admin/applications/${app.client_id}/plan`, `/admin/applications/${app.client_id}/plan`, { plan: 'pro', rate: '', quota: '1000/month' });
    assert.deepEqual(await flashOf(admin, answer), ['success', 'Plan pro (rate 50/1m, quota 1000/month): applies on every node within a second.']);
    const row = await server.deps.prisma.oAuthClient.findUniqueOrThrow({ where: { id: app.client_id }, include: { plan: true } });
    assert.equal(row.plan?.name, 'pro');
    assert.equal(row.quotaLimit, 1000);
    const list = await (await admin.client.get('/admin/plans')).text();
    assert.match(list, /<td><code>pro<\/code><\/td><td>50\/1m<\/td><td>10000\/day<\/td><td>0<\/td><td>1<\/td>/);
  });
});
