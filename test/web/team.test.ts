import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { linkFromMail, PortalClient, signUpAndSignIn } from '../helpers/portal.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startSmtpPeer, type SmtpPeer } from '../helpers/smtp.ts';

let server: TestServer;
let smtp: SmtpPeer;
let alice: PortalClient;
let bob: PortalClient;
let carol: PortalClient;
let acmeId: string;

const accountId = async (email: string) => (await server.deps.prisma.account.findUniqueOrThrow({ where: { email } })).id;
const personalTeamOf = async (email: string) => (await server.deps.prisma.team.findFirstOrThrow({ where: { personalAccount: { email } } })).id;
const roleIn = async (teamId: string, email: string) =>
  (await server.deps.prisma.membership.findFirst({ where: { teamId, account: { email } } }))?.role ?? null;

before(async () => {
  smtp = await startSmtpPeer();
  server = await startTestServer({ env: { SMTP_URL: smtp.url } });
  [alice, bob, carol] = await Promise.all([
    signUpAndSignIn(server, smtp, 'alice@example.com'),
    signUpAndSignIn(server, smtp, 'bob@example.com'),
    signUpAndSignIn(server, smtp, 'carol@example.com'),
  ]);
});
after(async () => {
  await server?.close();
  await smtp?.close();
});

describe('teams and invitations', () => {
  it('shows the personal team with its owner', async () => {
    const page = await alice.get('/portal/team');
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /alice@example\.com/);
    assert.match(html, /Send invitation/);
    assert.match(html, /Create team/);
    assert.doesNotMatch(html, /Leave team/, 'a personal team cannot be left');
  });

  it('creates a team with the creator as owner and switches to it; a bad name is refused beside the field', async () => {
    const bad = await alice.postForm('/portal/team', '/portal/team/create', { name: '   ' });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /Enter a team name/);
    const made = await alice.post('/portal/team/create', { name: 'Acme <script>' });
    assert.equal(made.status, 303);
    const team = await server.deps.prisma.team.findFirstOrThrow({ where: { name: 'Acme <script>' } });
    acmeId = team.id;
    assert.equal(await roleIn(acmeId, 'alice@example.com'), 'owner');
    const html = await (await alice.follow(made)).text();
    assert.match(html, /Acme &lt;script>/);
    assert.doesNotMatch(html, /Acme <script>/);
    assert.ok(await server.deps.prisma.auditEvent.findFirst({ where: { type: 'team.created', subjectId: acmeId } }));
  });

  it('refuses a bad invitation address with a message beside the field', async () => {
    const bad = await alice.postForm('/portal/team', '/portal/team/invitations', { email: 'not-an-address', role: 'member' });
    assert.equal(bad.status, 400);
    const html = await bad.text();
    assert.match(html, /Enter an email address/);
    assert.match(html, /value="not-an-address"/);
    assert.equal(await server.deps.prisma.linkToken.count({ where: { teamId: acmeId } }), 0);
  });

  it('invites by mail; the invited person joins, others are refused, the link works once', async () => {
    const before = smtp.messages.length;
    const sent = await alice.postForm('/portal/team', '/portal/team/invitations', { email: 'Bob@Example.com', role: 'member' });
    assert.equal(sent.status, 303);
    const link = await linkFromMail(server, smtp, 'bob@example.com', 'invitations/accept', { after: before });
    const token = new URL(link).searchParams.get('token')!;
    const stored = await server.deps.prisma.linkToken.findFirstOrThrow({ where: { teamId: acmeId, purpose: 'team_invite' } });
    assert.equal(stored.email, 'bob@example.com');
    assert.ok(!Buffer.from(stored.digest).toString('latin1').includes(token.split('.')[1]!));
    const invited = await server.deps.prisma.auditEvent.findFirstOrThrow({ where: { type: 'team.member_invited', subjectId: acmeId } });
    assert.doesNotMatch(JSON.stringify(invited.data), new RegExp(token.split('.')[1]!));
    assert.match(await (await alice.get('/portal/team')).text(), /Pending invitations[\s\S]*bob@example\.com/);

    // Signed out: an explanation with sign-in and sign-up links that carry the invitation.
    const anonymous = new PortalClient(server.url);
    const signedOut = await anonymous.get(new URL(link).pathname + new URL(link).search);
    assert.equal(signedOut.status, 200);
    const signedOutHtml = await signedOut.text();
    assert.match(signedOutHtml, /href="\/portal\/sign-in\?next=%2Fportal%2Finvitations%2Faccept%3Ftoken%3D/);
    assert.match(signedOutHtml, /href="\/portal\/sign-up\?invite=/);

    // Someone else, signed in: the page shows, the join is refused, the link stays good.
    const carolPage = await carol.get(new URL(link).pathname + new URL(link).search);
    assert.equal(carolPage.status, 200);
    assert.match(await carolPage.text(), /Join team/);
    const refused = await carol.post('/portal/invitations/accept', { token });
    assert.equal(refused.status, 403);
    assert.match(await refused.text(), /sent to another address/);
    assert.equal(await roleIn(acmeId, 'carol@example.com'), null);

    // The invited person (address matched without case).
    await bob.get(new URL(link).pathname + new URL(link).search);
    const joined = await bob.post('/portal/invitations/accept', { token });
    assert.equal(joined.status, 303);
    assert.equal(joined.headers.get('location'), '/portal/team');
    assert.equal(await roleIn(acmeId, 'bob@example.com'), 'member');
    const teamPage = await (await bob.follow(joined)).text();
    assert.match(teamPage, /Acme &lt;script>/, 'the session switched to the team');
    assert.doesNotMatch(teamPage, /Send invitation/, 'members do not invite');
    assert.ok(await server.deps.prisma.auditEvent.findFirst({ where: { type: 'team.member_joined', subjectId: acmeId, actorId: await accountId('bob@example.com') } }));

    // Used: a second time, and for anyone, the link says it is not valid.
    const again = await bob.post('/portal/invitations/accept', { token });
    assert.equal(again.status, 410);
    assert.match(await again.text(), /not valid/);
    assert.equal((await anonymous.get(new URL(link).pathname + new URL(link).search)).status, 410);
    // Tampered.
    const tampered = await bob.get(`/portal/invitations/accept?token=${encodeURIComponent(token.slice(0, -2) + 'xx')}`);
    assert.equal(tampered.status, 410);
  });

  it('switches teams only among the person’s own (404 otherwise)', async () => {
    await bob.get('/portal/team');
    const toPersonal = await bob.post('/portal/team/switch', { team: await personalTeamOf('bob@example.com') });
    assert.equal(toPersonal.status, 303);
    assert.equal(toPersonal.headers.get('location'), '/portal');
    assert.match(await (await bob.get('/portal/team')).text(), /<h1>bob@example\.com<\/h1>/);
    const back = await bob.post('/portal/team/switch', { team: acmeId });
    assert.equal(back.status, 303);
    assert.match(await (await bob.get('/portal/team')).text(), /<h1>Acme &lt;script><\/h1>/);
    assert.equal((await bob.post('/portal/team/switch', { team: await personalTeamOf('alice@example.com') })).status, 404);
    assert.equal((await bob.post('/portal/team/switch', { team: 'not-a-team' })).status, 404);
  });

  it('a member cannot invite, change roles, remove or withdraw invitations (404)', async () => {
    const aliceId = await accountId('alice@example.com');
    await alice.postForm('/portal/team', '/portal/team/invitations', { email: 'dave@example.com', role: 'owner' });
    const invitation = await server.deps.prisma.linkToken.findFirstOrThrow({ where: { teamId: acmeId, email: 'dave@example.com', usedAt: null } });
    await bob.get('/portal/team');
    assert.equal((await bob.post('/portal/team/invitations', { email: 'eve@example.com', role: 'owner' })).status, 404);
    assert.equal((await bob.post(`/portal/team/members/${aliceId}/role`, { role: 'member' })).status, 404);
    assert.equal((await bob.get(`/portal/team/members/${aliceId}/remove`)).status, 404);
    await bob.get('/portal/team');
    assert.equal((await bob.post(`/portal/team/members/${aliceId}/remove`)).status, 404);
    assert.equal((await bob.post(`/portal/team/invitations/${invitation.id}/cancel`)).status, 404);
    assert.equal((await bob.post('/portal/team/rename', { name: 'Mine' })).status, 404);
    assert.equal(await roleIn(acmeId, 'alice@example.com'), 'owner');
    assert.equal(await server.deps.prisma.linkToken.count({ where: { teamId: acmeId, email: 'eve@example.com' } }), 0);
    // Carol, a stranger, cannot touch Acme's invitation either.
    await carol.get('/portal/team');
    assert.equal((await carol.post(`/portal/team/invitations/${invitation.id}/cancel`)).status, 404);
    assert.equal((await server.deps.prisma.linkToken.findUniqueOrThrow({ where: { id: invitation.id } })).usedAt, null);
    // The owner can.
    await alice.get('/portal/team');
    assert.equal((await alice.post(`/portal/team/invitations/${invitation.id}/cancel`)).status, 303);
    assert.notEqual((await server.deps.prisma.linkToken.findUniqueOrThrow({ where: { id: invitation.id } })).usedAt, null);
  });

  it('keeps the last owner: no demotion, no leaving; a clear message', async () => {
    const aliceId = await accountId('alice@example.com');
    await alice.get('/portal/team');
    const demote = await alice.post(`/portal/team/members/${aliceId}/role`, { role: 'member' });
    assert.equal(demote.status, 303);
    assert.match(await (await alice.follow(demote)).text(), /at least one owner/);
    assert.equal(await roleIn(acmeId, 'alice@example.com'), 'owner');
    await alice.get('/portal/team/leave');
    const leave = await alice.post('/portal/team/leave');
    assert.match(await (await alice.follow(leave)).text(), /at least one owner/);
    assert.equal(await roleIn(acmeId, 'alice@example.com'), 'owner');
  });

  it('refuses a form without its CSRF token (403), changing nothing', async () => {
    await bob.get('/portal/team');
    const response = await bob.post('/portal/team/leave', {}, { csrf: false });
    assert.equal(response.status, 403);
    assert.equal(await roleIn(acmeId, 'bob@example.com'), 'member');
  });

  it('the owner promotes, then removes a member after a confirmation; the member can also leave', async () => {
    const bobId = await accountId('bob@example.com');
    await alice.get('/portal/team');
    assert.equal((await alice.post(`/portal/team/members/${bobId}/role`, { role: 'owner' })).status, 303);
    assert.equal(await roleIn(acmeId, 'bob@example.com'), 'owner');
    const confirm = await alice.get(`/portal/team/members/${bobId}/remove`);
    assert.equal(confirm.status, 200);
    assert.match(await confirm.text(), /button-danger"[^>]*>Remove</);
    assert.equal((await alice.post(`/portal/team/members/${bobId}/remove`)).status, 303);
    assert.equal(await roleIn(acmeId, 'bob@example.com'), null);
    assert.ok(await server.deps.prisma.auditEvent.findFirst({ where: { type: 'team.member_removed', subjectId: acmeId } }));
    // Bob's session falls back to his personal team.
    assert.match(await (await bob.get('/portal/team')).text(), /<h1>bob@example\.com<\/h1>/);
  });

  it('throttles invitations per inviting account (20 an hour; the server is no mail relay)', async () => {
    const dave = await signUpAndSignIn(server, smtp, 'dave@example.com');
    const made = await dave.postForm('/portal/team', '/portal/team/create', { name: 'Relay' });
    assert.equal(made.status, 303);
    const relayId = (await server.deps.prisma.team.findFirstOrThrow({ where: { name: 'Relay' } })).id;
    const answers = await Promise.all(
      Array.from({ length: 25 }, (_, i) => dave.postForm('/portal/team', '/portal/team/invitations', { email: `target${i}@example.net`, role: 'member' })),
    );
    const statuses = answers.map((a) => a.status);
    assert.equal(statuses.filter((s) => s === 303).length, 20, statuses.join(','));
    const blocked = answers.find((a) => a.status === 429)!;
    assert.ok(Number(blocked.headers.get('retry-after')) > 0);
    assert.match(await blocked.text(), /Too many attempts, try again in \d+ minutes?/);
    assert.equal(await server.deps.prisma.linkToken.count({ where: { teamId: relayId, purpose: 'team_invite' } }), 20);
  });

  it('shows the team’s activity', async () => {
    const page = await alice.get('/portal/activity');
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /role="img"/);
    assert.match(html, /Team member invited/);
    assert.match(html, /alice@example\.com/);
    assert.doesNotMatch(html, /style="/);
  });
});
