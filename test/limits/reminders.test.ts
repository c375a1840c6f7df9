import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiKey, rotateApiKey } from '../../src/credentials/api-keys.ts';
import { rotateClientSecret } from '../../src/credentials/clients.ts';
import { sendReminders } from '../../src/limits/reminders.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { introspectAs } from '../helpers/oauth.ts';
import { discover, rememberSecret, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';
import { parseMail, startSmtpPeer, type ReceivedMail, type SmtpPeer } from '../helpers/smtp.ts';

const API = 'https://api.example.test';
const CLI = { type: 'cli' as const };
const OWNER = 'owner@reminders.example';
const DAY = 86_400_000;
const HOUR = 3_600_000;

let smtp: SmtpPeer;
let server: TestServer;
let meta: Discovery;
let scope: string;
let caller: CreatedClient;
let teamId: string;
let clock: Date;
const t0 = new Date();

before(async () => {
  smtp = await startSmtpPeer();
  server = await startTestServer({ env: { SMTP_URL: smtp.url, LATCHKEY_ALERT_INTERVAL: '1h' } });
  clock = t0;
  server.deps.now = () => clock;
  meta = await discover(server);
  scope = await createScope(server);
  caller = await createClient(server, { scopes: [scope], audiences: [API] });
  const owner = await server.deps.prisma.account.create({ data: { email: OWNER } });
  const team = await server.deps.prisma.team.create({ data: { name: 'reminders team' } });
  await server.deps.prisma.membership.create({ data: { teamId: team.id, accountId: owner.id, role: 'owner' } });
  teamId = team.id;
});
after(async () => {
  await server?.close();
  await smtp?.close();
});

const subjectOf = (mail: ReceivedMail) => (parseMail(mail.raw).headers.get('subject') ?? '').replace(/\s+/g, '');
/** Reminder mails (alerts, also sent when a rotated-out secret is used, say "Latchkey alert:"). */
const reminderMails = () => smtp.messages.filter((m) => !subjectOf(m).startsWith('Latchkeyalert:'));
const sent = async () =>
  (await server.deps.prisma.sentReminder.findMany({ orderBy: [{ sentAt: 'asc' }, { kind: 'asc' }] })).map((r) => `${r.credentialId} ${r.kind} ${r.threshold}`);

async function sweepTwice(): Promise<number> {
  const first = await sendReminders(server.deps);
  // Run again (a second round, or another node): nothing is sent twice.
  assert.equal(await sendReminders(server.deps), 0);
  await server.deps.mailer.idle();
  return first;
}

describe('expiry and rotation reminders', () => {
  it('mails owners 14 and 3 days ahead and when a rotated-out secret is used in its last day, each once', async () => {
    const keyA = await createApiKey(server.deps, { name: 'expires in 10 days', scopes: [scope], audiences: [API], teamId, expiresInMs: 10 * DAY }, CLI);
    const keyB = await createApiKey(server.deps, { name: 'expires in 2 days', scopes: [scope], audiences: [API], teamId, expiresInMs: 2 * DAY }, CLI);
    const keyC = await createApiKey(server.deps, { name: 'rotated', scopes: [scope], audiences: [API], teamId }, CLI);
    // Without a team there is no one to remind.
    await createApiKey(server.deps, { name: 'operator key', scopes: [scope], audiences: [API], expiresInMs: 5 * DAY }, CLI);
    for (const key of [keyA, keyB, keyC]) rememberSecret(key.key);
    await rotateApiKey(server.deps, keyC.id, { graceMs: 2 * DAY }, CLI);
    const appD = await createClient(server, { scopes: [scope], audiences: [API], owner: teamId });
    const rotated = await rotateClientSecret(server.deps, appD.client_id, { graceMs: 10 * DAY }, CLI);
    rememberSecret(rotated.client_secret);

    assert.equal(await sweepTwice(), 4);
    assert.deepEqual(new Set(await sent()), new Set([`${keyA.id} expiry 14`, `${keyB.id} expiry 3`, `${keyC.id} grace_end 3`, `${appD.client_id} grace_end 14`]));
    await smtp.waitFor(() => reminderMails().length >= 4);
    assert.ok(reminderMails().every((m) => m.to.join() === OWNER), 'owners only, not admins');
    assert.ok(reminderMails().some((m) => subjectOf(m).includes(`APIkeylk_${keyA.id}(“expiresin10days”)expiresin10days`)));

    // 12 hours before the rotated key's grace ends, a service still uses it.
    clock = new Date(t0.getTime() + 36 * HOUR);
    assert.equal((await introspectAs(meta.introspection_endpoint, caller, keyC.key)).body.active, true);
    await server.deps.usage.flush();
    assert.equal(await sweepTwice(), 1);
    assert.ok((await sent()).includes(`${keyC.id} grace_use 0`));

    // Half a day before key A expires and the application's previous secret lapses, which is still used.
    clock = new Date(t0.getTime() + 9.5 * DAY);
    assert.equal((await introspectAs(meta.introspection_endpoint, appD, keyA.key)).status, 200);
    await server.deps.usage.flush();
    assert.equal(await sweepTwice(), 3);
    const all = await sent();
    for (const expected of [`${keyA.id} expiry 3`, `${appD.client_id} grace_end 3`, `${appD.client_id} grace_use 0`]) assert.ok(all.includes(expected), expected);
    assert.equal(all.length, 8);

    await smtp.waitFor(() => reminderMails().length >= 8);
    await server.deps.mailer.idle();
    assert.equal(reminderMails().length, 8, 'one mail per reminder');
    const graceUse = reminderMails().filter((m) => subjectOf(m).includes('arotated-outsecretisstillinuse'));
    assert.equal(graceUse.length, 2);

    // Past every deadline: nothing more to say.
    clock = new Date(t0.getTime() + 11 * DAY);
    assert.equal(await sweepTwice(), 0);
  });
});
