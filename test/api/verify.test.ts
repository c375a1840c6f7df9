import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { after, before, beforeEach, describe, it } from 'node:test';
import { VERIFY_CODES } from '../../src/credentials/key-verification.ts';
import { createAccount as createAccountRow } from '../../src/accounts/accounts.ts';
import { base62 } from '../../src/lib/random.ts';
import { cli, cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { authAs, introspectAs, postForm } from '../helpers/oauth.ts';
import { discover, rememberSecret, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';
import { verifyAs } from '../helpers/verify.ts';

const API = 'https://api.example.test';
const OTHER_API = 'https://other.example.test';

let server: TestServer;
let meta: Discovery;
let scope: string;
let otherScope: string;
let gateway: CreatedClient;
let otherGateway: CreatedClient;
let planCount = 0;

// The injected clock (deps.now): windows and quota periods follow it, so no test sleeps.
let clock = Date.parse('2027-03-15T10:00:10.000Z');
const realNow = () => new Date(clock);

interface Key {
  id: string;
  key: string;
  expires_at: string | null;
}

async function newKey(argv: string[] = []): Promise<Key> {
  const key = await cliJson<Key>(server, ['key', 'create', '--name', 'k', '--scopes', `${scope} ${otherScope}`, '--audience', API, ...argv]);
  rememberSecret(key.key);
  return key;
}

async function newPlan(rate: string, quota?: string): Promise<string> {
  const name = `plan-${++planCount}`;
  await cliJson(server, ['plan', 'create', name, '--rate', rate, ...(quota ? ['--quota', quota] : [])]);
  return name;
}

const verify = (body: unknown, caller: { client_id: string; client_secret?: string } | null = gateway, headers: Record<string, string> = {}) => verifyAs(server.url, caller, body, headers);

/** A well-formed key (valid checksum) with the given id and secret. */
const withChecksum = (body: string) => `${body}${base62(crc32(body), 6)}`;

const reached = new Set<string>();

before(async () => {
  server = await startTestServer();
  server.deps.now = realNow;
  meta = await discover(server);
  scope = await createScope(server);
  otherScope = await createScope(server);
  gateway = await createClient(server, { scopes: [scope], audiences: [API] });
  otherGateway = await createClient(server, { scopes: [scope], audiences: [OTHER_API] });
});
after(() => server.close());

describe('POST /v1/keys/verify', () => {
  beforeEach(() => {
    // Each test starts inside a fresh minute, 10 s after it began.
    clock = (Math.floor(clock / 60_000) + 2) * 60_000 + 10_000;
  });

  it('VALID: the key, its owner, scopes and expiry; no limit fields without a plan', async () => {
    const admin = server.deps.config.LATCHKEY_ADMIN_EMAIL;
    const key = await newKey(['--owner', admin, '--expires-in', '30d']);
    const answer = await verify({ key: key.key, scopes: [scope] });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
    const team = await server.deps.prisma.team.findFirstOrThrow({ where: { personalAccount: { email: admin } } });
    assert.deepEqual(answer.body, { valid: true, code: 'VALID', key_id: key.id, owner: team.id, scopes: [scope, otherScope], expires_at: key.expires_at });
    reached.add(answer.body.code);
  });

  it('counts one use, or `cost`, in usage', async () => {
    const key = await newKey();
    await verify({ key: key.key });
    await verify({ key: key.key, cost: 5 });
    await server.deps.usage.flush();
    const row = await server.deps.prisma.usageDaily.findFirstOrThrow({ where: { credentialType: 'api_key', credentialId: key.id } });
    assert.equal(row.succeeded, 6);
  });

  it('NOT_FOUND: another audience, a wrong secret, an unknown id and a malformed key get the same bytes', async () => {
    const key = await newKey();
    // Seen once by its own audience, so every case below finds its record cached (same path).
    assert.equal((await verify({ key: key.key })).body.code, 'VALID');
    const revoked = await newKey();
    await cliJson(server, ['key', 'revoke', revoked.id]);
    const cases = {
      'another audience': await verify({ key: key.key }, otherGateway),
      'another audience, revoked': await verify({ key: revoked.key }, otherGateway),
      'wrong secret': await verify({ key: withChecksum(`lk_${key.id}_${'A'.repeat(43)}`) }),
      'unknown id': await verify({ key: withChecksum(`lk_ZZZZZZZZZZZZ_${'B'.repeat(43)}`) }),
      malformed: await verify({ key: 'lk_nope' }),
    };
    const expected = JSON.stringify({ valid: false, code: 'NOT_FOUND', key_id: null, owner: null, scopes: [], expires_at: null });
    for (const [name, answer] of Object.entries(cases)) {
      assert.equal(answer.status, 200, name);
      assert.equal(answer.text, expected, name);
      assert.equal(answer.headers.get('content-length'), String(expected.length), name);
    }
    reached.add('NOT_FOUND');
  });

  it('REVOKED and EXPIRED name the key (the caller may see it)', async () => {
    const revoked = await newKey();
    await cliJson(server, ['key', 'revoke', revoked.id]);
    const revokedAnswer = await verify({ key: revoked.key });
    assert.equal(revokedAnswer.body.code, 'REVOKED');
    assert.equal(revokedAnswer.body.valid, false);
    assert.equal(revokedAnswer.body.key_id, revoked.id);

    const expiring = await newKey(['--expires-in', '1h']);
    assert.equal((await verify({ key: expiring.key })).body.code, 'VALID');
    clock += 3_600_000;
    const expired = await verify({ key: expiring.key });
    assert.equal(expired.body.code, 'EXPIRED');
    assert.equal(expired.body.expires_at, expiring.expires_at);
    reached.add('REVOKED').add('EXPIRED');
  });

  it('INSUFFICIENT_SCOPE when any required scope is missing; counts toward no limit', async () => {
    const key = await newKey(['--plan', await newPlan('1/1m')]);
    const answer = await verify({ key: key.key, scopes: [scope, 'not-granted'] });
    assert.equal(answer.body.code, 'INSUFFICIENT_SCOPE');
    assert.equal(answer.body.valid, false);
    assert.equal(answer.body.ratelimit, undefined);
    // The one use the plan allows is still there.
    assert.equal((await verify({ key: key.key, scopes: [scope] })).body.code, 'VALID');
    reached.add('INSUFFICIENT_SCOPE');
  });

  it('RATE_LIMITED past the rate, with remaining and reset (the end of the clock-aligned window)', async () => {
    const key = await newKey(['--plan', await newPlan('3/1m')]);
    const windowEnd = (Math.floor(clock / 60_000) + 1) * 60_000;
    for (const remaining of [2, 1, 0]) {
      const answer = await verify({ key: key.key });
      assert.equal(answer.body.code, 'VALID');
      assert.deepEqual(answer.body.ratelimit, { limit: 3, remaining, reset: windowEnd });
      assert.equal(answer.body.quota, undefined, 'no quota in this plan');
    }
    clock += 20_000;
    const refused = await verify({ key: key.key });
    assert.equal(refused.status, 200);
    assert.equal(refused.body.valid, false);
    assert.equal(refused.body.code, 'RATE_LIMITED');
    assert.deepEqual(refused.body.ratelimit, { limit: 3, remaining: 0, reset: windowEnd });
    assert.equal(refused.body.key_id, key.id);
    reached.add('RATE_LIMITED');

    clock = windowEnd;
    const next = await verify({ key: key.key, cost: 2 });
    assert.equal(next.body.code, 'VALID');
    assert.deepEqual(next.body.ratelimit, { limit: 3, remaining: 1, reset: windowEnd + 60_000 });
  });

  it('QUOTA_EXCEEDED past the daily quota, reset at the next UTC midnight', async () => {
    const key = await newKey(['--plan', await newPlan('100/1s', '2/day')]);
    clock = Date.parse('2027-04-01T23:59:30.000Z');
    const midnight = Date.parse('2027-04-02T00:00:00.000Z');
    for (const remaining of [1, 0]) {
      const answer = await verify({ key: key.key });
      assert.equal(answer.body.code, 'VALID');
      assert.deepEqual(answer.body.quota, { limit: 2, remaining, reset: midnight });
      assert.equal(answer.body.ratelimit.limit, 100);
    }
    const refused = await verify({ key: key.key });
    assert.equal(refused.body.code, 'QUOTA_EXCEEDED');
    assert.equal(refused.body.valid, false);
    assert.deepEqual(refused.body.quota, { limit: 2, remaining: 0, reset: midnight });
    reached.add('QUOTA_EXCEEDED');

    clock = midnight + 1_000;
    const nextDay = await verify({ key: key.key });
    assert.equal(nextDay.body.code, 'VALID');
    assert.deepEqual(nextDay.body.quota, { limit: 2, remaining: 1, reset: midnight + 86_400_000 });
  });

  it('a monthly quota resets on the first of the next month; a key override beats its plan', async () => {
    const key = await newKey(['--plan', await newPlan('100/1s', '1000/month')]);
    const set = await cliJson(server, ['key', 'set-plan', key.id, '--plan', `plan-${planCount}`, '--quota', '1/month']);
    assert.deepEqual(set, { id: key.id, plan: `plan-${planCount}`, rate: '100/1s', quota: '1/month' });
    clock = Date.parse('2027-02-28T12:00:00.000Z');
    const first = await verify({ key: key.key });
    assert.deepEqual(first.body.quota, { limit: 1, remaining: 0, reset: Date.parse('2027-03-01T00:00:00.000Z') });
    assert.equal((await verify({ key: key.key })).body.code, 'QUOTA_EXCEEDED');
    clock = Date.parse('2027-03-01T00:00:00.000Z');
    assert.equal((await verify({ key: key.key })).body.code, 'VALID');
  });

  it('rotating a key keeps its quota: the successor (and the old key in its grace window) share one allowance', async () => {
    const key = await newKey(['--plan', await newPlan('100/1s', '2/month')]);
    clock = Date.parse('2027-05-10T12:00:00.000Z');
    for (let i = 0; i < 2; i++) assert.equal((await verify({ key: key.key })).body.code, 'VALID');
    const successor = await cliJson<Key>(server, ['key', 'rotate', key.id, '--grace', '24h']);
    rememberSecret(successor.key);
    assert.equal((await verify({ key: successor.key })).body.code, 'QUOTA_EXCEEDED');
    assert.equal((await verify({ key: key.key })).body.code, 'QUOTA_EXCEEDED');
    const third = await cliJson<Key>(server, ['key', 'rotate', successor.id, '--grace', '1h']);
    rememberSecret(third.key);
    assert.equal((await verify({ key: third.key })).body.code, 'QUOTA_EXCEEDED', 'a line of rotations, not just one step');
  });

  it('set-plan --none lifts the limits at once', async () => {
    const key = await newKey(['--plan', await newPlan('1/1m')]);
    assert.equal((await verify({ key: key.key })).body.code, 'VALID');
    assert.equal((await verify({ key: key.key })).body.code, 'RATE_LIMITED');
    assert.deepEqual(await cliJson(server, ['key', 'set-plan', key.id, '--none']), { id: key.id, plan: null, rate: null, quota: null });
    const answer = await verify({ key: key.key });
    assert.equal(answer.body.code, 'VALID');
    assert.equal(answer.body.ratelimit, undefined);
  });

  it('standard introspection counts toward usage but not toward the plan (LATCHKEY_INTROSPECTION_LIMITS unset)', async () => {
    const key = await newKey(['--plan', await newPlan('1/1m')]);
    for (let i = 0; i < 3; i++) assert.equal((await introspectAs(meta.introspection_endpoint, gateway, key.key)).body.active, true);
    assert.equal((await verify({ key: key.key })).body.code, 'VALID', 'the plan still has its one use');
  });

  it("SUSPENDED for a key of a suspended team, VALID again once it is unsuspended", async () => {
    const { account } = await server.deps.prisma.$transaction((tx) => createAccountRow(tx, { email: 'suspended-owner@example.test', passwordHash: null, now: new Date() }));
    const accountId = account.id;
    const key = await newKey(['--owner', 'suspended-owner@example.test']);
    const teamId = (await server.deps.prisma.team.findFirstOrThrow({ where: { personalAccountId: accountId } })).id;
    assert.equal((await verify({ key: key.key })).body.code, 'VALID');
    await cliJson(server, ['team', 'suspend', teamId, '--reason', 'verify test']);
    const answer = await verify({ key: key.key });
    assert.equal(answer.body.code, 'SUSPENDED');
    assert.equal(answer.body.valid, false);
    reached.add('SUSPENDED');
    await cliJson(server, ['team', 'unsuspend', teamId, '--reason', 'verify test']);
    assert.equal((await verify({ key: key.key })).body.code, 'VALID');
  });

  it('every code of the contract is reached', () => {
    assert.deepEqual([...reached].sort(), [...VERIFY_CODES].sort());
  });
});

describe('POST /v1/keys/verify errors (RFC 9457 problem details)', () => {
  const problem = (answer: { status: number; headers: Headers; body: Record<string, any> }, status: number, error: string) => {
    assert.equal(answer.status, status);
    assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(answer.body.status, status);
    assert.equal(answer.body.error, error);
    assert.equal(answer.body.type, 'about:blank');
    assert.equal(typeof answer.body.title, 'string');
    assert.equal(typeof answer.body.detail, 'string');
  };

  it('bad JSON is 400', async () => {
    for (const body of ['{"key":', 'not json', '', '[1,2]', '"lk_x"']) problem(await verify(body), 400, 'invalid_request');
  });

  it('missing or wrong client authentication is 401 with WWW-Authenticate', async () => {
    const key = await newKey();
    const missing = await verify({ key: key.key }, null);
    problem(missing, 401, 'invalid_client');
    assert.match(missing.headers.get('www-authenticate') ?? '', /^Basic realm="latchkey"/);
    const wrong = await verify({ key: key.key }, { client_id: gateway.client_id, client_secret: 'lks_wrong' });
    problem(wrong, 401, 'invalid_client');
    assert.match(wrong.headers.get('www-authenticate') ?? '', /^Basic/);
    // A key is not a client credential.
    problem(await verify({ key: key.key }, null, { authorization: `Bearer ${key.key}` }), 401, 'invalid_client');
  });

  it('invalid fields are 400 naming them; a form body is 415; GET is 405', async () => {
    const key = await newKey();
    for (const body of [{}, { key: key.key, cost: 0 }, { key: key.key, cost: 1001 }, { key: key.key, cost: 1.5 }, { key: key.key, scopes: 'a' }, { key: 7 }]) {
      const answer = await verify(body);
      problem(answer, 400, 'invalid_request');
      assert.match(answer.body.detail, /invalid parameter (key|cost|scopes)/);
    }
    problem(await verify(`key=${key.key}`, gateway, { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'invalid_request');
    const get = await fetch(`${server.url}/v1/keys/verify`, { headers: authAs(gateway) });
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
  });

  it('client_secret_post clients authenticate in the JSON body', async () => {
    const postClient = await createClient(server, { scopes: [scope], audiences: [API], authMethod: 'client_secret_post' });
    const key = await newKey();
    const answer = await verify({ key: key.key, client_id: postClient.client_id, client_secret: postClient.client_secret }, null);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.code, 'VALID');
  });
});

describe("an application's plan at the token endpoint", () => {
  it('429 with Retry-After and an RFC 6749 body past the rate; no audit row per refusal', async () => {
    const plan = await newPlan('2/1m');
    const app = await createClient(server, { scopes: [scope], audiences: [API] });
    const set = await cliJson(server, ['client', 'set-plan', app.client_id, '--plan', plan]);
    assert.deepEqual(set, { id: app.client_id, plan, rate: '2/1m', quota: null });
    const token = () => postForm(meta.token_endpoint, { grant_type: 'client_credentials' }, authAs(app));
    assert.equal((await token()).status, 200);
    assert.equal((await token()).status, 200);
    await server.deps.audit.idle();
    const before = await server.deps.prisma.auditEvent.count();
    const refused = await token();
    assert.equal(refused.status, 429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal(refused.body.error, 'too_many_requests');
    assert.equal(typeof refused.body.error_description, 'string');
    assert.equal(refused.body.access_token, undefined);
    await server.deps.audit.idle();
    assert.equal(await server.deps.prisma.auditEvent.count(), before);

    clock = (Math.floor(clock / 60_000) + 1) * 60_000;
    assert.equal((await token()).status, 200, 'the next window issues again');
  });

  it('client create --plan applies from the first request', async () => {
    const plan = await newPlan('1/1h');
    const app = await createClient(server, { scopes: [scope], audiences: [API], plan });
    const token = () => postForm(meta.token_endpoint, { grant_type: 'client_credentials' }, authAs(app));
    assert.equal((await token()).status, 200);
    assert.equal((await token()).status, 429);
  });
});

describe('plan CLI', () => {
  it('plan create prints {"name","rate","quota"} and is audited', async () => {
    assert.deepEqual(await cliJson(server, ['plan', 'create', 'gold', '--rate', '100/60s', '--quota', '10000/day']), { name: 'gold', rate: '100/1m', quota: '10000/day' });
    assert.deepEqual(await cliJson(server, ['plan', 'create', 'free', '--rate', '10/1h']), { name: 'free', rate: '10/1h', quota: null });
    const event = await server.deps.prisma.auditEvent.findFirstOrThrow({ where: { type: 'plan.created' }, orderBy: { seq: 'desc' } });
    assert.deepEqual(event.data, { name: 'free', rate: '10/1h', quota: null });
    const list = await cliJson<{ plans: { name: string }[] }>(server, ['plan', 'list']);
    assert.ok(list.plans.some((p) => p.name === 'gold'));
  });

  it('refuses bad input with exit 2, a taken name and an unknown plan with exit 1', async () => {
    for (const argv of [
      ['plan', 'create', 'x1', '--rate', '100'],
      ['plan', 'create', 'x2', '--rate', '0/1m'],
      ['plan', 'create', 'x3', '--rate', '10/1w'],
      ['plan', 'create', 'x4', '--rate', '10/1m', '--quota', '5/week'],
      ['plan', 'create', 'x5'],
      ['plan', 'create', 'bad name', '--rate', '10/1m'],
    ]) {
      const result = await cli(server, [...argv, '--json']);
      assert.equal(result.code, 2, `${argv.join(' ')}: ${result.stderr}`);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /^latchkey: .*(--rate|--quota|NAME)/);
    }
    await cliJson(server, ['plan', 'create', 'taken', '--rate', '1/1s']);
    assert.equal((await cli(server, ['plan', 'create', 'taken', '--rate', '1/1s'])).code, 1);
    const unknown = await cli(server, ['key', 'create', '--name', 'n', '--scopes', scope, '--plan', 'no-such-plan']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /plan no-such-plan not found/);
    assert.equal((await cli(server, ['key', 'set-plan', 'lk_unknown', '--none'])).code, 1);
    assert.equal((await cli(server, ['key', 'set-plan', 'x', '--plan', 'taken', '--none'])).code, 2);
  });

  it('a rotated key keeps its plan', async () => {
    const key = await newKey(['--plan', await newPlan('1/1m')]);
    const successor = await cliJson<Key>(server, ['key', 'rotate', key.id]);
    rememberSecret(successor.key);
    assert.equal((await verify({ key: successor.key })).body.ratelimit?.limit, 1);
  });
});
