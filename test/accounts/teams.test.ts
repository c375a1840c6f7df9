import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createAccount } from '../../src/accounts/accounts.ts';
import { hashPassword } from '../../src/accounts/passwords.ts';
import { acceptInvitation, changeMemberRole, createTeam, inviteMember } from '../../src/accounts/teams.ts';
import type { Actor } from '../../src/actor.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
let passwordHash: string;

before(async () => {
  server = await startTestServer();
  passwordHash = await hashPassword('a quiet harbour at seven bells');
});
after(() => server?.close());

async function newAccount(email: string) {
  const now = server.deps.now();
  return server.deps.prisma.$transaction((tx) => createAccount(tx, { email, passwordHash, emailVerifiedAt: now, now }));
}
const actorFor = (id: string): Actor => ({ type: 'account', id, ip: '192.0.2.10' });

/** The link token from the invitation mail, read from the mailer's outbox file by the test server's deps. */
async function invite(teamId: string, owner: { id: string; email: string }, email: string): Promise<string> {
  const sent: string[] = [];
  const send = server.deps.mailer.send.bind(server.deps.mailer);
  server.deps.mailer.send = (message) => {
    sent.push(JSON.stringify(message));
    return send(message);
  };
  try {
    const result = await inviteMember(server.deps, { teamId, email, role: 'member', invitedBy: owner }, actorFor(owner.id));
    assert.ok(result.ok, JSON.stringify(result));
  } finally {
    server.deps.mailer.send = send;
  }
  const token = /token=([A-Za-z0-9._%-]+)/.exec(sent.join(''))?.[1];
  assert.ok(token, 'an invitation link');
  return decodeURIComponent(token);
}

describe('teams: refusals', () => {
  it("refuses changing the role of a personal team's owner (as removeMember does)", async () => {
    const { account, team } = await newAccount('solo@example.test');
    // Another owner, so the last-owner rule is not what refuses.
    const other = await newAccount('co-owner@example.test');
    await server.deps.prisma.membership.create({ data: { teamId: team.id, accountId: other.account.id, role: 'owner', createdAt: server.deps.now() } });
    const result = await changeMemberRole(server.deps, team.id, account.id, 'member', actorFor(other.account.id));
    assert.deepEqual(result, { ok: false, field: undefined, error: 'A personal team keeps its owner.' });
    const membership = await server.deps.prisma.membership.findUniqueOrThrow({ where: { teamId_accountId: { teamId: team.id, accountId: account.id } } });
    assert.equal(membership.role, 'owner');
    // The other owner of that team can still be changed.
    assert.ok((await changeMemberRole(server.deps, team.id, other.account.id, 'member', actorFor(account.id))).ok);
  });

  it('refuses an invitation to a team that is not active, leaving the link unspent', async () => {
    const owner = (await newAccount('boss@example.test')).account;
    const joiner = (await newAccount('joiner@example.test')).account;
    const team = await createTeam(server.deps, { name: 'Soon suspended', ownerId: owner.id }, actorFor(owner.id));
    const token = await invite(team.id, owner, joiner.email);
    await server.deps.prisma.team.update({ where: { id: team.id }, data: { status: 'suspended' } });
    const refused = await acceptInvitation(server.deps, token, joiner, actorFor(joiner.id));
    assert.equal(refused.ok, false);
    assert.equal(await server.deps.prisma.membership.count({ where: { teamId: team.id, accountId: joiner.id } }), 0);
    // Active again: the same link works.
    await server.deps.prisma.team.update({ where: { id: team.id }, data: { status: 'active' } });
    assert.ok((await acceptInvitation(server.deps, token, joiner, actorFor(joiner.id))).ok);
    assert.equal(await server.deps.prisma.membership.count({ where: { teamId: team.id, accountId: joiner.id } }), 1);
  });
});
