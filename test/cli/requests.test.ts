import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createAccount } from '../../src/accounts/accounts.ts';
import { approveRequest, requestCredential, revealApprovedSecret, scopesNeedingApproval } from '../../src/credentials/requests.ts';
import { verifyApiKey } from '../../src/credentials/api-keys.ts';
import { cli, cliJson } from '../helpers/cli.ts';
import { createScope } from '../helpers/factories.ts';
import { parseMail, startSmtpPeer, type SmtpPeer } from '../helpers/smtp.ts';
import { rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
let smtp: SmtpPeer;
let plain: string;
let gated: string;
let developer: { accountId: string; teamId: string; email: string };

const portalActor = () => ({ type: 'account' as const, id: developer.accountId });

async function newDeveloper(): Promise<{ accountId: string; teamId: string; email: string }> {
  const email = `dev-${randomBytes(4).toString('hex')}@example.test`;
  const { account, team } = await server.deps.prisma.$transaction((tx) =>
    createAccount(tx, { email, passwordHash: null, emailVerifiedAt: new Date(), now: new Date() }),
  );
  return { accountId: account.id, teamId: team.id, email };
}

/** As the portal does it: a request for a key with a scope that needs approval. */
async function request(kind: 'api_key' | 'client' = 'api_key', name = `req-${randomBytes(3).toString('hex')}`) {
  const { id } = await requestCredential(
    server.deps,
    { teamId: developer.teamId, kind, name, scopes: [plain, gated], requestedById: developer.accountId, expiresInSeconds: kind === 'api_key' ? 86_400 : undefined },
    portalActor(),
  );
  return { id, name };
}

const events = (subjectId: string, type: string) => server.deps.prisma.auditEvent.findMany({ where: { subjectType: 'request', subjectId, type } });

before(async () => {
  smtp = await startSmtpPeer();
  server = await startTestServer({ env: { SMTP_URL: smtp.url } });
  plain = await createScope(server);
  gated = await createScope(server, { requiresApproval: true });
  developer = await newDeveloper();
});

after(async () => {
  await server?.close();
  await smtp?.close();
});

describe('credential requests from the CLI', () => {
  test('scope create --requires-approval marks the scope in the catalog', async () => {
    assert.deepEqual(await scopesNeedingApproval(server.deps, [plain, gated, 'nope']), [gated]);
    assert.deepEqual(await scopesNeedingApproval(server.deps, [plain]), []);
  });

  test('a request for an unknown scope is refused and nothing is stored', async () => {
    const before = await server.deps.prisma.credentialRequest.count();
    await assert.rejects(
      requestCredential(server.deps, { teamId: developer.teamId, kind: 'api_key', name: 'x', scopes: ['no-such-scope'], requestedById: developer.accountId }, portalActor()),
      /unknown scope/,
    );
    assert.equal(await server.deps.prisma.credentialRequest.count(), before);
  });

  test('request list --json shows a pending request with its team and requester', async () => {
    const { id, name } = await request();
    assert.match(id, /^lkr_[0-9A-Za-z]{16}$/);
    const result = await cli(server, ['request', 'list', '--status', 'pending', '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trimEnd().split('\n').length, 1);
    const { requests } = result.json<{ requests: Record<string, any>[] }>();
    const listed = requests.find((r) => r.id === id);
    assert.ok(listed, 'the new request is listed');
    assert.deepEqual(Object.keys(listed).sort(), ['created_at', 'id', 'kind', 'name', 'requested_by', 'scopes', 'status', 'team']);
    assert.equal(listed.kind, 'api_key');
    assert.equal(listed.name, name);
    assert.deepEqual(listed.scopes, [plain, gated]);
    assert.equal(listed.team.id, developer.teamId);
    assert.equal(listed.requested_by, developer.email);
    assert.equal(listed.status, 'pending');
    assert.ok(!Number.isNaN(Date.parse(listed.created_at)));
    const created = await events(id, 'request.created');
    assert.equal(created.length, 1);
    assert.deepEqual((created[0]!.data as any).scopes, [plain, gated]);

    const approvedOnly = await cliJson<{ requests: { id: string }[] }>(server, ['request', 'list', '--status', 'approved']);
    assert.ok(!approvedOnly.requests.some((r) => r.id === id));
  });

  test('approve issues the key to the team, mails the requester, and the key is shown once', async () => {
    const { id, name } = await request();
    const out = await cliJson(server, ['request', 'approve', id, '--note', 'ok for the pilot']);
    assert.deepEqual(Object.keys(out).sort(), ['credential_id', 'id', 'status']);
    assert.equal(out.id, id);
    assert.equal(out.status, 'approved');

    const key = await server.deps.prisma.apiKey.findUnique({ where: { id: out.credential_id } });
    assert.ok(key, 'the key exists');
    assert.equal(key.teamId, developer.teamId);
    assert.deepEqual(key.scopes, [plain, gated]);
    assert.ok(key.expiresAt && Math.abs(key.expiresAt.getTime() - Date.now() - 86_400_000) < 60_000, 'expiry from the request');

    const stored = await server.deps.prisma.credentialRequest.findUniqueOrThrow({ where: { id } });
    assert.equal(stored.status, 'approved');
    assert.equal(stored.resultId, out.credential_id);
    assert.ok(stored.decidedAt);
    assert.equal(stored.note, 'ok for the pilot');
    assert.ok(stored.resultSecretEncrypted && !stored.resultSecretEncrypted.startsWith('lk_'), 'stored encrypted');

    const mail = await smtp.waitFor((m) => m.to.includes(developer.email) && m.raw.includes(id));
    const parsed = parseMail(mail.raw);
    assert.match(parsed.headers.get('subject')!, /approved/);
    assert.ok(parsed.headers.get('subject')!.includes(name));
    const text = parsed.parts.find((p) => p.type === 'text/plain')!.body;
    assert.ok(text.includes(`${server.issuer}/portal/requests/${id}`));
    assert.ok(text.includes('ok for the pilot'));

    const revealed = await revealApprovedSecret(server.deps, id, developer.accountId, portalActor());
    assert.ok(revealed);
    rememberSecret(revealed.secret);
    assert.equal(revealed.kind, 'api_key');
    assert.equal(revealed.credentialId, out.credential_id);
    assert.equal((await verifyApiKey(server.deps, revealed.secret)).result, 'VALID');
    assert.equal(await revealApprovedSecret(server.deps, id, developer.accountId, portalActor()), null, 'a second reveal gets nothing');
    assert.equal((await server.deps.prisma.credentialRequest.findUniqueOrThrow({ where: { id } })).resultSecretEncrypted, null);
    assert.equal((await events(id, 'request.secret_revealed')).length, 1);
    assert.ok(!JSON.stringify((await events(id, 'request.secret_revealed'))[0]!.data).includes(revealed.secret));
  });

  test('approving twice is a conflict with one approval event and one credential', async () => {
    const { id, name } = await request();
    await cliJson(server, ['request', 'approve', id]);
    const again = await cli(server, ['request', 'approve', id, '--json']);
    assert.equal(again.code, 1);
    assert.equal(again.stdout, '');
    assert.match(again.stderr, /^latchkey: request is already approved\n$/);
    assert.equal((await events(id, 'request.approved')).length, 1);
    assert.equal(await server.deps.prisma.apiKey.count({ where: { name, teamId: developer.teamId } }), 1);
  });

  test('concurrent approvals: exactly one wins, the loser leaves no live credential', async () => {
    const { id, name } = await request('client');
    const results = await Promise.allSettled([
      approveRequest(server.deps, id, {}, { type: 'cli' }),
      approveRequest(server.deps, id, {}, { type: 'cli' }),
      approveRequest(server.deps, id, {}, { type: 'cli' }),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) if (r.status === 'rejected') assert.match(String(r.reason), /already approved/);
    assert.equal((await events(id, 'request.approved')).length, 1);
    const live = await server.deps.prisma.oAuthClient.findMany({ where: { name, teamId: developer.teamId, status: 'active' } });
    assert.equal(live.length, 1);
    assert.equal(live[0]!.id, (await server.deps.prisma.credentialRequest.findUniqueOrThrow({ where: { id } })).resultId);
    const revealed = await revealApprovedSecret(server.deps, id, developer.accountId, portalActor());
    assert.ok(revealed);
    rememberSecret(revealed.secret);
    assert.match(revealed.secret, /^lks_/);
  });

  test('deny with a reason mails the requester; deciding again is a conflict', async () => {
    const { id, name } = await request();
    const out = await cliJson(server, ['request', 'deny', id, '--reason', 'use the sandbox scope']);
    assert.deepEqual(out, { id, status: 'denied' });
    const stored = await server.deps.prisma.credentialRequest.findUniqueOrThrow({ where: { id } });
    assert.equal(stored.status, 'denied');
    assert.equal(stored.note, 'use the sandbox scope');
    assert.equal(stored.resultId, null);
    assert.equal(await server.deps.prisma.apiKey.count({ where: { name } }), 0);
    const denied = await events(id, 'request.denied');
    assert.equal(denied.length, 1);
    assert.equal((denied[0]!.data as any).reason, 'use the sandbox scope');

    const mail = await smtp.waitFor((m) => m.to.includes(developer.email) && m.raw.includes(id));
    const parsed = parseMail(mail.raw);
    assert.match(parsed.headers.get('subject')!, /declined/);
    assert.ok(parsed.parts.find((p) => p.type === 'text/plain')!.body.includes('use the sandbox scope'));

    const approve = await cli(server, ['request', 'approve', id]);
    assert.equal(approve.code, 1);
    assert.match(approve.stderr, /request is already denied/);
    assert.equal(await revealApprovedSecret(server.deps, id, developer.accountId, portalActor()), null);
  });

  test('validation errors exit 2; an unknown id is not found', async () => {
    const { id } = await request();
    for (const argv of [
      ['request', 'deny', id],
      ['request', 'deny', id, '--reason', '   '],
      ['request', 'list', '--status', 'maybe'],
      ['request', 'approve'],
    ]) {
      const result = await cli(server, [...argv, '--json']);
      assert.equal(result.code, 2, `${argv.join(' ')}: ${result.stderr}`);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /^latchkey: .+\n$/);
    }
    assert.equal((await server.deps.prisma.credentialRequest.findUniqueOrThrow({ where: { id } })).status, 'pending');
    const unknown = await cli(server, ['request', 'approve', 'lkr_0000000000000000']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /request not found/);
  });
});
