import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { approveRequest, requestCredential } from '../../src/credentials/requests.ts';
import { createScope } from '../helpers/factories.ts';
import { signUpAndSignIn, type PortalClient } from '../helpers/portal.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
let portal: PortalClient;

before(async () => {
  server = await startTestServer();
  portal = await signUpAndSignIn(server, null, 'overview@example.test');
});
after(() => server.close());

describe('the overview', () => {
  it('leads a new developer to a first key and to two-factor authentication', async () => {
    const page = await portal.get('/portal');
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /Get started/);
    assert.match(html, /href="\/portal\/keys\/new"/);
    assert.match(html, /Protect your account/);
    assert.match(html, /<span class="stat-value">0<\/span> live API keys/);
  });

  it('says when an approved request waits to be shown, until it has been', async () => {
    const scope = await createScope(server, { requiresApproval: true });
    const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email: 'overview@example.test' }, include: { personalTeam: true } });
    const { id } = await requestCredential(
      server.deps,
      { teamId: account.personalTeam!.id, kind: 'api_key', name: 'billing <b>job</b>', scopes: [scope], requestedById: account.id },
      { type: 'account', id: account.id },
    );
    await approveRequest(server.deps, id, {}, { type: 'cli', id: 'test' });
    const html = await (await portal.get('/portal')).text();
    assert.match(html, new RegExp(`was approved\\. <a href="/portal/requests/${id}">Show it now</a>`));
    assert.match(html, /billing &lt;b>job&lt;\/b>/, 'escaped');
    assert.match(html, /<span class="stat-value">1<\/span> live API keys/);

    const request = await portal.get(`/portal/requests/${id}`);
    assert.equal(request.status, 200);
    const shown = await portal.post(`/portal/requests/${id}/reveal`);
    assert.equal(shown.status, 200);
    assert.doesNotMatch(await (await portal.get('/portal')).text(), /was approved/);
  });
});
