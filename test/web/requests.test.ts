import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { approveRequest, denyRequest, requestCredential } from '../../src/credentials/requests.ts';
import { verifyApiKey } from '../../src/credentials/api-keys.ts';
import { createScope } from '../helpers/factories.ts';
import { signUpAndSignIn, type PortalClient } from '../helpers/portal.ts';
import { startSmtpPeer, type SmtpPeer } from '../helpers/smtp.ts';
import { rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
let smtp: SmtpPeer;
let gated: string;
let alice: { client: PortalClient; accountId: string; teamId: string; email: string };
let bob: { client: PortalClient; accountId: string; teamId: string; email: string };

async function developer(label: string) {
  const email = `${label}-${randomBytes(4).toString('hex')}@example.test`;
  const client = await signUpAndSignIn(server, smtp, email);
  const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email } });
  const team = await server.deps.prisma.team.findFirstOrThrow({ where: { personalAccountId: account.id } });
  return { client, accountId: account.id, teamId: team.id, email };
}

/** Alice's request, made as the keys and applications pages make it. */
async function aliceRequests(kind: 'api_key' | 'client' = 'api_key', name = `req <b>${randomBytes(3).toString('hex')}</b>`) {
  const { id } = await requestCredential(
    server.deps,
    { teamId: alice.teamId, kind, name, scopes: [gated], requestedById: alice.accountId },
    { type: 'account', id: alice.accountId },
  );
  return { id, name };
}

const secretOf = (html: string) => /id="secret-value"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*id="secret-value"/.exec(html)?.slice(1).find(Boolean);

before(async () => {
  smtp = await startSmtpPeer();
  server = await startTestServer({ env: { SMTP_URL: smtp.url } });
  gated = await createScope(server, { requiresApproval: true });
  alice = await developer('alice');
  bob = await developer('bob');
});

after(async () => {
  await server?.close();
  await smtp?.close();
});

describe('portal requests pages', () => {
  test('the list shows the team’s requests, escaped, and not other teams’', async () => {
    const { id, name } = await aliceRequests();
    const page = await alice.client.get('/portal/requests');
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.ok(html.includes(`href="/portal/requests/${id}"`));
    assert.ok(html.includes(name.replace('<b>', '&lt;b>').replace('</b>', '&lt;/b>')), 'the name, escaped');
    assert.ok(!html.includes('<b>'), 'no markup from the name');
    assert.match(html, /badge-amber">pending</);
    assert.ok(html.includes(gated));
    assert.match(html, /aria-current="page"[^>]*>Requests|href="\/portal\/requests" aria-current="page"/);

    const other = await (await bob.client.get('/portal/requests')).text();
    assert.ok(!other.includes(id), 'bob does not see alice’s request');
    assert.ok(other.includes('No requests'));
  });

  test('approved: the key is shown once through a POST, then the page says it was shown', async () => {
    const { id } = await aliceRequests();
    const pending = await (await alice.client.get(`/portal/requests/${id}`)).text();
    assert.ok(!pending.includes('Show the key'));
    assert.ok(pending.includes('not decided yet'));

    const { credential_id } = await approveRequest(server.deps, id, { note: 'fine' }, { type: 'cli' });
    const ready = await alice.client.get(`/portal/requests/${id}`);
    const readyHtml = await ready.text();
    assert.equal(ready.status, 200);
    assert.match(readyHtml, /<button[^>]*>Show the key<\/button>/);
    assert.ok(readyHtml.includes(`action="/portal/requests/${id}/reveal"`));
    assert.ok(readyHtml.includes('fine'), 'the note');

    // Without the CSRF token: refused, and the secret is still waiting.
    const forged = await alice.client.post(`/portal/requests/${id}/reveal`, {}, { csrf: false });
    assert.equal(forged.status, 403);
    assert.ok((await server.deps.prisma.credentialRequest.findUniqueOrThrow({ where: { id } })).resultSecretEncrypted);

    const shown = await alice.client.post(`/portal/requests/${id}/reveal`);
    assert.equal(shown.status, 200);
    assert.equal(shown.headers.get('cache-control'), 'no-store');
    const secret = secretOf(await shown.text());
    assert.ok(secret, 'the key is on the page');
    rememberSecret(secret);
    assert.equal((await verifyApiKey(server.deps, secret)).result, 'VALID');
    assert.match(secret, new RegExp(`^lk_${credential_id}_`));

    const again = await alice.client.post(`/portal/requests/${id}/reveal`);
    assert.equal(again.status, 303);
    const after = await (await alice.client.follow(again)).text();
    assert.ok(!after.includes(secret), 'not shown twice');
    assert.ok(after.includes('shown already'));
    assert.ok(after.includes(`href="/portal/keys/${credential_id}"`));
    assert.ok(!/>Show the key</.test(after));
    const events = await server.deps.prisma.auditEvent.findMany({ where: { subjectId: id, type: 'request.secret_revealed' } });
    assert.equal(events.length, 1);
    assert.equal(events[0]!.actorId, alice.accountId);
  });

  test('an application: "Show the secret", with the client id and a link to it', async () => {
    const { id } = await aliceRequests('client');
    const { credential_id } = await approveRequest(server.deps, id, {}, { type: 'cli' });
    assert.match(await (await alice.client.get(`/portal/requests/${id}`)).text(), /<button[^>]*>Show the secret<\/button>/);
    const shown = await (await alice.client.post(`/portal/requests/${id}/reveal`)).text();
    const secret = secretOf(shown);
    assert.ok(secret);
    rememberSecret(secret);
    assert.match(secret, /^lks_/);
    assert.ok(shown.includes(credential_id));
    assert.ok(shown.includes(`href="/portal/applications/${credential_id}"`));
  });

  test('denied: the page gives the reason and offers nothing to show', async () => {
    const { id } = await aliceRequests();
    await denyRequest(server.deps, id, { reason: 'use <sandbox> first' }, { type: 'cli' });
    const html = await (await alice.client.get(`/portal/requests/${id}`)).text();
    assert.match(html, /badge-red">denied</);
    assert.ok(html.includes('Reason'));
    assert.ok(html.includes('use &lt;sandbox> first'));
    assert.ok(!html.includes('Show the key'));
    const reveal = await alice.client.post(`/portal/requests/${id}/reveal`);
    assert.equal(reveal.status, 303);
  });

  test('another team’s developer gets 404 on the page and on the reveal, and the secret stays', async () => {
    const { id } = await aliceRequests();
    await approveRequest(server.deps, id, {}, { type: 'cli' });
    const page = await bob.client.get(`/portal/requests/${id}`);
    assert.equal(page.status, 404);
    assert.ok(!(await page.text()).includes(id.slice(4)));
    await bob.client.get('/portal/requests'); // a CSRF token of bob's own
    const reveal = await bob.client.post(`/portal/requests/${id}/reveal`);
    assert.equal(reveal.status, 404);
    assert.ok((await server.deps.prisma.credentialRequest.findUniqueOrThrow({ where: { id } })).resultSecretEncrypted, 'not consumed');
    // Unknown and malformed ids look the same.
    assert.equal((await bob.client.get('/portal/requests/lkr_0000000000000000')).status, 404);
    assert.equal((await bob.client.get('/portal/requests/nonsense')).status, 404);
    // Signed out: to the sign-in page, never the request.
    const anonymous = await fetch(`${server.url}/portal/requests/${id}`, { redirect: 'manual' });
    assert.equal(anonymous.status, 302);
    assert.match(anonymous.headers.get('location')!, /^\/portal\/sign-in/);
  });
});
