import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { createApiKey, rotateApiKey } from '../../src/credentials/api-keys.ts';
import { rotateClientSecret } from '../../src/credentials/clients.ts';
import { utcHour } from '../../src/credentials/usage.ts';
import { base62 } from '../../src/lib/random.ts';
import { pruneAlertData } from '../../src/limits/alerts.ts';
import { networkOf } from '../../src/limits/networks.ts';
import { cli, cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { basicAuth, introspectAs, postForm } from '../helpers/oauth.ts';
import { discover, rememberSecret, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';
import { signUpAndSignIn } from '../helpers/portal.ts';
import { parseMail, startSmtpPeer, type ReceivedMail, type SmtpPeer } from '../helpers/smtp.ts';

const API = 'https://api.example.test';
const CLI = { type: 'cli' as const };
const OWNER = 'owner@alerts.example';
const ADMIN = 'admin@localhost.localdomain';

let smtp: SmtpPeer;
let server: TestServer;
let meta: Discovery;
let scope: string;
let caller: CreatedClient;
let teamId: string;
/** The injectable clock every alert and reminder reads (deps.now). */
let clock: Date;

before(async () => {
  smtp = await startSmtpPeer();
  server = await startTestServer({
    env: {
      SMTP_URL: smtp.url,
      LATCHKEY_ALERT_SPIKE_FLOOR: '20',
      LATCHKEY_ALERT_BURST: '5/10m',
      // Tests drive evaluation themselves; X-Forwarded-For gives each request its network.
      LATCHKEY_ALERT_INTERVAL: '1h',
      LATCHKEY_TRUST_PROXY: 'true',
    },
  });
  clock = new Date();
  server.deps.now = () => clock;
  meta = await discover(server);
  scope = await createScope(server);
  caller = await createClient(server, { scopes: [scope], audiences: [API] });
  const owner = await server.deps.prisma.account.create({ data: { email: OWNER } });
  const team = await server.deps.prisma.team.create({ data: { name: 'alerts team' } });
  await server.deps.prisma.membership.create({ data: { teamId: team.id, accountId: owner.id, role: 'owner' } });
  teamId = team.id;
});
after(async () => {
  await server?.close();
  await smtp?.close();
});

const subjectOf = (mail: ReceivedMail) => parseMail(mail.raw).headers.get('subject') ?? '';
// Compared without white space: the test's MIME parser drops the space at an encoded word's fold.
const about = (mail: ReceivedMail, text: string) => subjectOf(mail).replace(/\s+/g, '').includes(text.replace(/\s+/g, ''));
const mailsAbout = (text: string) => smtp.messages.filter((m) => about(m, text));
const alertEvents = (type: string, subjectId: string) => server.deps.prisma.auditEvent.findMany({ where: { type, subjectId } });

async function newKey(name: string, extra: { expiresInMs?: number } = {}) {
  const issued = await createApiKey(server.deps, { name, scopes: [scope], audiences: [API], teamId, ...extra }, CLI);
  rememberSecret(issued.key);
  return issued;
}

/** Waits for one mail per recipient about `text`, then checks that no more arrive. */
async function expectOneMailEach(text: string, recipients: string[]) {
  for (const to of recipients) await smtp.waitFor((m) => m.to.includes(to) && about(m, text)).catch((e) => { throw new Error(`${e.message}: ${smtp.messages.map(subjectOf).join(" | ")}`); });
  await server.deps.mailer.idle();
  const mails = mailsAbout(text);
  assert.deepEqual(mails.map((m) => m.to.join(',')).sort(), [...recipients].sort(), `one mail each about "${text}"`);
}

describe('networks', () => {
  it('groups IPv4 by /24 and IPv6 by /48', () => {
    assert.equal(networkOf('203.0.113.9'), '203.0.113.0/24');
    assert.equal(networkOf('::ffff:198.51.100.7'), '198.51.100.0/24');
    assert.equal(networkOf('2001:db8:abcd:12::1'), '2001:db8:abcd::/48');
    assert.equal(networkOf('2001:db8::1'), '2001:db8:0::/48');
    assert.equal(networkOf('::1'), '0:0:0::/48');
    assert.equal(networkOf('not an address'), undefined);
  });
});

describe('anomaly alerts', () => {
  it('a spike under the injectable clock raises exactly one alert event and one mail per recipient', async () => {
    const key = await newKey('spiky');
    const hour = utcHour(clock).getTime() + 3 * 3_600_000;
    // A quiet day before: one check an hour for 24 hours.
    for (let i = 24; i >= 1; i--) {
      clock = new Date(hour - i * 3_600_000 + 60_000);
      server.deps.usage.touch(key.id);
      await server.deps.usage.flush();
    }
    clock = new Date(hour + 5 * 60_000);
    // 30 checks in this hour: above the floor (20) and above 10 × the mean (1).
    for (let i = 0; i < 30; i++) assert.equal((await introspectAs(meta.introspection_endpoint, caller, key.key)).body.active, true);
    await server.deps.usage.flush();
    const row = await server.deps.prisma.usageHourly.findUnique({ where: { credentialType_credentialId_hour: { credentialType: 'api_key', credentialId: key.id, hour: new Date(hour) } } });
    assert.equal(row?.succeeded, 30);

    assert.equal(await server.deps.alerts.evaluateSpikes(), 1);
    // Evaluated again (by this node or another): the same hour does not alert twice.
    assert.equal(await server.deps.alerts.evaluateSpikes(), 0);
    const events = await alertEvents('alert.spike', key.id);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.subjectType, 'api_key');
    assert.deepEqual(
      { uses: (events[0]!.data as any).uses, hourlyMean: (events[0]!.data as any).hourlyMean, teamId: (events[0]!.data as any).teamId },
      { uses: 30, hourlyMean: 1, teamId },
    );
    await expectOneMailEach(`unusual traffic on API key lk_${key.id}`, [OWNER, ADMIN]);
    const mail = mailsAbout(`unusual traffic on API key lk_${key.id}`)[0]!;
    assert.ok(!mail.raw.includes(key.key.slice(16)), 'no secret in the mail');

    // Below the factor: a key used steadily at the same rate does not alert.
    const steady = await newKey('steady');
    for (let i = 24; i >= 1; i--) {
      clock = new Date(hour - i * 3_600_000 + 60_000);
      for (let j = 0; j < 25; j++) server.deps.usage.touch(steady.id);
      await server.deps.usage.flush();
    }
    clock = new Date(hour + 6 * 60_000);
    for (let j = 0; j < 30; j++) server.deps.usage.touch(steady.id);
    await server.deps.usage.flush();
    assert.equal(await server.deps.alerts.evaluateSpikes(), 0);
    assert.equal((await alertEvents('alert.spike', steady.id)).length, 0);
  });

  it('a burst of failed checks of one key, and of one application, alerts once each', async () => {
    const key = await newKey('stolen');
    // A revoked key still presented: every check of it fails (a made-up secret would fail its checksum as junk).
    await cliJson(server, ['key', 'revoke', key.id, '--reason', 'burst test']);
    for (let i = 0; i < 7; i++) assert.equal((await introspectAs(meta.introspection_endpoint, caller, key.key)).body.active, false);
    await server.deps.usage.flush();
    await server.deps.usage.flush();
    const events = await alertEvents('alert.burst', key.id);
    assert.equal(events.length, 1);
    // The count the flush that crossed the threshold saw: all 7 failures were in it.
    assert.equal((events[0]!.data as any).failed, 7);
    await expectOneMailEach(`many failed checks of API key lk_${key.id}`, [OWNER, ADMIN]);

    const app = await createClient(server, { scopes: [scope], audiences: [API], owner: teamId });
    for (let i = 0; i < 6; i++) {
      const answer = await postForm(meta.introspection_endpoint, { token: key.key }, { authorization: basicAuth(app.client_id, 'lks_wrong-secret') });
      assert.equal(answer.status, 401);
    }
    await server.deps.usage.flush();
    assert.equal((await alertEvents('alert.burst', app.client_id)).length, 1);
    await expectOneMailEach(`many failed checks of application ${app.client_id}`, [OWNER, ADMIN]);
  });

  it('first use from a new network alerts; the first network ever and a known network do not', async () => {
    const key = await newKey('travelling');
    const from = (ip: string) => postForm(meta.introspection_endpoint, { token: key.key }, { authorization: basicAuth(caller.client_id, caller.client_secret!), 'x-forwarded-for': ip });
    assert.equal((await from('198.51.100.7')).body.active, true);
    await server.deps.usage.flush();
    assert.equal((await alertEvents('alert.new_network', key.id)).length, 0, 'a credential’s first networks are not news');
    assert.equal((await from('203.0.113.9')).body.active, true);
    await server.deps.usage.flush();
    const events = await alertEvents('alert.new_network', key.id);
    assert.equal(events.length, 1);
    assert.equal((events[0]!.data as any).network, '203.0.113.0/24');
    // The same /24 again, from another address: known now.
    assert.equal((await from('203.0.113.77')).body.active, true);
    await server.deps.usage.flush();
    assert.equal((await alertEvents('alert.new_network', key.id)).length, 1);
    await expectOneMailEach(`API key lk_${key.id} (“travelling”) used from a new network`, [OWNER, ADMIN]);
    const networks = await server.deps.prisma.credentialNetwork.findMany({ where: { credentialId: key.id }, orderBy: { network: 'asc' } });
    assert.deepEqual(networks.map((n) => n.network), ['198.51.100.0/24', '203.0.113.0/24']);
  });

  it('use of a rotated-out key or previous client secret in its grace window alerts once', async () => {
    const key = await newKey('rotating');
    await rotateApiKey(server.deps, key.id, { graceMs: 24 * 3_600_000 }, CLI);
    for (let i = 0; i < 3; i++) assert.equal((await introspectAs(meta.introspection_endpoint, caller, key.key)).body.active, true);
    await server.deps.usage.flush();
    assert.equal((await introspectAs(meta.introspection_endpoint, caller, key.key)).body.active, true);
    await server.deps.usage.flush();
    assert.equal((await alertEvents('alert.rotated_secret', key.id)).length, 1);
    await expectOneMailEach(`the rotated-out secret of API key lk_${key.id}`, [OWNER, ADMIN]);

    const app = await createClient(server, { scopes: [scope], audiences: [API], owner: teamId });
    const rotated = await rotateClientSecret(server.deps, app.client_id, { graceMs: 24 * 3_600_000 }, CLI);
    rememberSecret(rotated.client_secret);
    // The application still authenticates with its previous secret (at /introspect, as a caller).
    const other = await newKey('introspected');
    for (let i = 0; i < 3; i++) assert.equal((await introspectAs(meta.introspection_endpoint, app, other.key)).status, 200);
    await server.deps.usage.flush();
    assert.equal((await alertEvents('alert.rotated_secret', app.client_id)).length, 1);
    // The new secret raises nothing more.
    assert.equal((await introspectAs(meta.introspection_endpoint, { client_id: app.client_id, client_secret: rotated.client_secret }, other.key)).status, 200);
    await server.deps.usage.flush();
    assert.equal((await alertEvents('alert.rotated_secret', app.client_id)).length, 1);
    await expectOneMailEach(`the rotated-out secret of application ${app.client_id}`, [OWNER, ADMIN]);
    const client = await server.deps.prisma.oAuthClient.findUniqueOrThrow({ where: { id: app.client_id } });
    assert.ok(client.previousSecretUsedAt, 'the use of the previous secret is recorded');
  });

  it('under the team’s auto-suspend policy an alert suspends the key, reversibly', async () => {
    assert.equal((await cli(server, ['team', 'alert-policy', teamId, '--auto-suspend', 'maybe'])).code, 2);
    assert.equal((await cli(server, ['team', 'alert-policy', '00000000-0000-4000-8000-000000000000', '--auto-suspend', 'on'])).code, 1);
    assert.deepEqual(await cliJson(server, ['team', 'alert-policy', teamId, '--auto-suspend', 'on']), { team_id: teamId, auto_suspend_on_alert: true });
    try {
      const key = await newKey('suspendable');
      await rotateApiKey(server.deps, key.id, { graceMs: 3_600_000 }, CLI);
      assert.equal((await introspectAs(meta.introspection_endpoint, caller, key.key)).body.active, true);
      await server.deps.usage.flush();
      const events = await alertEvents('alert.rotated_secret', key.id);
      assert.equal(events.length, 1);
      assert.equal((events[0]!.data as any).suspended, true);
      assert.equal((await alertEvents('api_key.suspended', key.id)).length, 1);
      assert.equal((await introspectAs(meta.introspection_endpoint, caller, key.key)).body.active, false, 'a suspended key is refused');
      await cliJson(server, ['key', 'unsuspend', key.id, '--reason', 'checked: our own deploy']);
      assert.equal((await introspectAs(meta.introspection_endpoint, caller, key.key)).body.active, true, 'unsuspended, it works again');
      assert.equal((await server.deps.prisma.apiKey.findUniqueOrThrow({ where: { id: key.id } })).revokedAt, null, 'never revoked');
    } finally {
      await cliJson(server, ['team', 'alert-policy', teamId, '--auto-suspend', 'off']);
    }
  });

  it("a stranger cannot make another audience's key fail, alert or suspend by its public id", async () => {
    await cliJson(server, ['team', 'alert-policy', teamId, '--auto-suspend', 'on']);
    try {
      const key = await newKey('targeted');
      const stranger = await createClient(server, { scopes: [scope], audiences: ['https://elsewhere.example.test'] });
      // The victim's id with a made-up secret that passes the checksum: a wrong secret.
      const body = `lk_${key.id}_${'x'.repeat(43)}`;
      const forged = `${body}${base62(crc32(body), 6)}`;
      for (let i = 0; i < 8; i++) assert.equal((await introspectAs(meta.introspection_endpoint, stranger, forged)).body.active, false);
      await server.deps.usage.flush();
      await server.deps.usage.flush();
      assert.equal((await alertEvents('alert.burst', key.id)).length, 0, 'no burst alert for failures the owner cannot see');
      assert.equal((await server.deps.prisma.auditEvent.count({ where: { type: 'api_key.check_failed', subjectId: key.id } })), 0);
      assert.equal((await introspectAs(meta.introspection_endpoint, caller, key.key)).body.active, true, 'the key still works');

      // The owner's own audience failing is a burst: alerted, but never suspended for it.
      for (let i = 0; i < 6; i++) await introspectAs(meta.introspection_endpoint, caller, forged);
      await server.deps.usage.flush();
      await server.deps.usage.flush();
      assert.equal((await alertEvents('alert.burst', key.id)).length, 1);
      assert.equal((await alertEvents('api_key.suspended', key.id)).length, 0, 'guessing at a key does not switch it off');
      assert.equal((await introspectAs(meta.introspection_endpoint, caller, key.key)).body.active, true);
    } finally {
      await cliJson(server, ['team', 'alert-policy', teamId, '--auto-suspend', 'off']);
    }
  });
});

describe('retention', () => {
  it('forgets hourly usage after a week, and keeps alert rows for their windows', async () => {
    const prisma = server.deps.prisma;
    const [hours, alerts, failureWindows] = [await prisma.usageHourly.count(), await prisma.credentialAlert.count(), await prisma.failureWindow.count()];
    assert.ok(hours > 0 && alerts > 0 && failureWindows > 0);
    // Burst counts are read for the current and the previous window only (10 minutes here): kept an hour.
    await pruneAlertData(server.deps, new Date(clock.getTime() + 30 * 60_000));
    assert.equal(await prisma.failureWindow.count(), failureWindows);
    await pruneAlertData(server.deps, new Date(clock.getTime() + 2 * 3_600_000));
    assert.equal(await prisma.failureWindow.count(), 0);
    await pruneAlertData(server.deps, new Date(clock.getTime() + 8 * 86_400_000));
    assert.equal(await prisma.usageHourly.count(), 0);
    assert.equal(await prisma.credentialAlert.count(), alerts);
    await pruneAlertData(server.deps, new Date(clock.getTime() + 40 * 86_400_000));
    assert.equal(await prisma.credentialAlert.count(), 0);
    assert.equal(await prisma.credentialNetwork.count(), 0);
  });
});

describe('portal activity', () => {
  it('lists the team’s recent alerts, and no other team’s', async () => {
    const email = 'dev@alerts.example';
    const dev = await signUpAndSignIn(server, smtp, email);
    const empty = await (await dev.get('/portal/activity')).text();
    assert.match(empty, /Recent alerts/);
    assert.match(empty, /No alerts/);
    const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email }, include: { personalTeam: true } });
    const own = await createApiKey(server.deps, { name: 'watched', scopes: [scope], audiences: [API], teamId: account.personalTeam!.id }, CLI);
    rememberSecret(own.key);
    assert.equal(await server.deps.alerts.raise({ kind: 'new_network', type: 'api_key', id: own.id, window: 'portal test', figures: { network: '192.0.2.0/24' } }), true);
    assert.equal(await server.deps.alerts.raise({ kind: 'new_network', type: 'api_key', id: own.id, window: 'portal test', figures: { network: '192.0.2.0/24' } }), false, 'raised once');
    const page = await dev.get('/portal/activity');
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.doesNotMatch(html, /No alerts/);
    assert.match(html, /New network/);
    assert.match(html, new RegExp(`API key lk_${own.id}`));
    assert.match(html, /Used from 192\.0\.2\.0\/24/);
    // The other team's alerts (spike, bursts…) are not this team's business.
    assert.doesNotMatch(html, /Traffic spike|Burst of failed checks/);
  });
});
