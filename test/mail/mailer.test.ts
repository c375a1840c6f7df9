import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/deps.ts';
import { createMailer, type MailMessage } from '../../src/mail/mailer.ts';
import {
  accountExistsMessage,
  passwordResetMessage,
  requestDecidedMessage,
  teamInviteMessage,
  verifyEmailMessage,
} from '../../src/mail/messages.ts';
import { findPart, linksIn, parseMail, startSmtpPeer, type SmtpPeer } from '../helpers/smtp.ts';

const FROM = 'Latchkey Test <no-reply@latchkey.test>';
// Long enough that quoted-printable folds it, with `=` that it must escape: linksIn must undo both.
const TOKEN = 'tok_' + 'Zq9'.repeat(30);
const LINK = `https://latchkey.test/portal/verify-email?token=${TOKEN}&next=%2Fportal`;

function capturedLogger() {
  const lines: string[] = [];
  const log = createLogger({ LOG_LEVEL: 'info' }, { write: (line: string) => void lines.push(line) });
  return { log, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

function config(env: Record<string, string>) {
  return loadConfig({ NODE_ENV: 'test', LATCHKEY_MAIL_FROM: FROM, ...env });
}

/** Asserts the message is From/To/Subject-correct multipart/alternative with the link in both parts. */
function assertWellFormed(raw: string, message: MailMessage, link: string) {
  const mail = parseMail(raw);
  assert.equal(mail.headers.get('from'), FROM);
  assert.equal(mail.headers.get('to'), message.to);
  assert.equal(mail.headers.get('subject'), message.subject);
  assert.match(mail.headers.get('message-id') ?? '', /^<.+@.+>$/);
  assert.equal(mail.type, 'multipart/alternative');
  const text = findPart(mail, 'text/plain');
  const html = findPart(mail, 'text/html');
  assert.ok(text && html, 'both a text/plain and a text/html part');
  assert.ok(text.body.includes(link), 'the text part carries the link');
  assert.ok(html.body.includes(`href="${link.replace(/&/g, '&#38;')}"`), 'the HTML part links to it');
  assert.deepEqual(linksIn(raw), [link]);
  return { text: text.body, html: html.body };
}

describe('mail through SMTP', () => {
  let peer: SmtpPeer;
  before(async () => {
    peer = await startSmtpPeer();
  });
  after(() => peer.close());

  it('delivers both parts from LATCHKEY_MAIL_FROM and logs no link', async () => {
    const { log, lines, records } = capturedLogger();
    const mailer = createMailer({ config: config({ SMTP_URL: peer.url }), log });
    const message = verifyEmailMessage({ to: 'ada@example.org', link: LINK, expiresInText: '24 hours' });
    mailer.send(message);
    await mailer.idle();
    await mailer.close();

    const mail = await peer.waitFor((m) => m.to.includes('ada@example.org'), 5_000);
    assert.deepEqual(mail.to, ['ada@example.org']);
    const { text } = assertWellFormed(mail.raw, message, LINK);
    assert.match(text, /expires in 24 hours/);

    const sent = records().filter((r) => r.msg === 'mail sent');
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.to_domain, 'example.org');
    assert.equal(sent[0]!.subject, 'Latchkey: verify your email address');
    assert.match(String(sent[0]!.message_id), /^<.+>$/);
    const all = lines.join('');
    assert.ok(!all.includes(TOKEN.slice(0, 20)), 'no token in the log');
    assert.ok(!all.includes('ada@'), 'no full address in the log');
  });

  it('retries a refused message with back-off and delivers it', async () => {
    const flaky = await startSmtpPeer({ rejectFirst: 2 });
    try {
      const { log, lines, records } = capturedLogger();
      const mailer = createMailer({ config: config({ SMTP_URL: flaky.url }), log, retryDelaysMs: [10, 20, 30] });
      const message = passwordResetMessage({ to: 'bob@example.net', link: LINK, expiresInText: '1 hour' });
      assert.doesNotThrow(() => mailer.send(message));
      await mailer.idle();
      await mailer.close();
      assert.equal(flaky.attempts(), 3);
      assert.equal(flaky.messages.length, 1);
      assertWellFormed(flaky.messages[0]!.raw, message, LINK);
      const retries = records().filter((r) => r.msg === 'mail not sent, will retry');
      assert.deepEqual(
        retries.map((r) => r.attempt),
        [1, 2],
      );
      assert.equal((retries[0]!.error as { responseCode?: number }).responseCode, 451);
      assert.equal(records().filter((r) => r.msg === 'mail sent').length, 1);
      assert.ok(!lines.join('').includes(TOKEN.slice(0, 20)));
    } finally {
      await flaky.close();
    }
  });

  it('gives up at once on a permanent refusal', async () => {
    const refusing = await startSmtpPeer({ rejectFirst: 10, rejectCode: 550 });
    try {
      const { log, records } = capturedLogger();
      const mailer = createMailer({ config: config({ SMTP_URL: refusing.url }), log, retryDelaysMs: [10, 10, 10] });
      mailer.send(verifyEmailMessage({ to: 'c@example.com', link: LINK, expiresInText: '1 day' }));
      await mailer.idle();
      await mailer.close();
      assert.equal(refusing.attempts(), 1);
      const failures = records().filter((r) => String(r.msg).startsWith('mail not sent'));
      assert.equal(failures.length, 1);
      assert.equal(failures[0]!.level, 50);
      assert.match(String(failures[0]!.msg), /giving up \(rejected permanently\)/);
    } finally {
      await refusing.close();
    }
  });
});

describe('mail to an unreachable relay', () => {
  // A port that accepts and closes at once, like a dead relay (and, unlike a closed port, one no
  // other process can take meanwhile).
  let dead: Server;
  let url: string;
  before(async () => {
    dead = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    url = `smtp://127.0.0.1:${(dead.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => dead.close(() => resolve())));

  it('never throws, tries 1 + 3 times, logs each failure by code, and idle() resolves', async () => {
    const { log, lines, records } = capturedLogger();
    const mailer = createMailer({ config: config({ SMTP_URL: url }), log, retryDelaysMs: [5, 10, 15] });
    const started = Date.now();
    assert.doesNotThrow(() => mailer.send(verifyEmailMessage({ to: 'd@example.com', link: LINK, expiresInText: '1 day' })));
    await mailer.idle();
    assert.ok(Date.now() - started >= 30, 'the back-off was waited');
    await mailer.close();
    const failures = records().filter((r) => String(r.msg).startsWith('mail not sent'));
    assert.deepEqual(
      failures.map((r) => [r.attempt, r.level, r.msg]),
      [
        [1, 40, 'mail not sent, will retry'],
        [2, 40, 'mail not sent, will retry'],
        [3, 40, 'mail not sent, will retry'],
        [4, 50, 'mail not sent, giving up'],
      ],
    );
    for (const failure of failures) assert.equal(typeof (failure.error as { code?: unknown }).code, 'string');
    assert.ok(!lines.join('').includes(TOKEN.slice(0, 20)));
  });

  it('close() drops a retry that is waiting, and later sends are refused without throwing', async () => {
    const { log, records } = capturedLogger();
    const mailer = createMailer({ config: config({ SMTP_URL: url }), log, retryDelaysMs: [60_000] });
    mailer.send(verifyEmailMessage({ to: 'e@example.com', link: LINK, expiresInText: '1 day' }));
    while (!records().some((r) => r.msg === 'mail not sent, will retry')) await new Promise((resolve) => setTimeout(resolve, 5));
    const started = Date.now();
    await mailer.close();
    assert.ok(Date.now() - started < 5_000, 'close did not wait for the retry');
    assert.ok(records().some((r) => r.msg === 'mail not sent, giving up (mailer closed)'));
    assert.doesNotThrow(() => mailer.send(verifyEmailMessage({ to: 'e@example.com', link: LINK, expiresInText: '1 day' })));
    assert.ok(records().some((r) => r.msg === 'mail not sent (mailer closed)'));
    await mailer.idle();
  });
});

describe('mail without SMTP_URL', () => {
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'latchkey-mail-'));
  });
  after(() => rm(dataDir, { recursive: true, force: true }));

  it('writes each message as a private .eml file and logs its name, not its links', async () => {
    const { log, lines, records } = capturedLogger();
    const clock = new Date('2026-12-01T10:15:00.123Z');
    const mailer = createMailer({ config: config({ LATCHKEY_DATA_DIR: dataDir }), log, now: () => clock });
    const first = verifyEmailMessage({ to: 'ada@example.org', link: LINK, expiresInText: '24 hours' });
    const second = passwordResetMessage({ to: 'ada@example.org', link: LINK.replace('verify-email', 'reset'), expiresInText: '1 hour' });
    mailer.send(first);
    mailer.send(second);
    await mailer.idle();
    await mailer.close();

    const dir = path.join(dataDir, 'mail');
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const allFiles = (await readdir(dir)).sort();
    const files = allFiles.filter((file) => file.endsWith('.eml'));
    assert.equal(files.length, 2);
    for (const file of files) {
      assert.match(file, /^20261201T101500\.123Z-[0-9a-f]{6}\.eml$/);
      assert.equal((await stat(path.join(dir, file))).mode & 0o777, 0o600);
      // Beside it, the text part as a person reads it: the link whole, on one line.
      const readable = path.join(dir, file.replace(/\.eml$/, '.txt'));
      assert.equal((await stat(readable)).mode & 0o777, 0o600);
      assert.match(await readFile(readable, 'utf8'), /^To: ada@example\.org\nSubject: Latchkey: /);
    }
    assert.equal(allFiles.length, 4, 'an .eml and a .txt per message, nothing else');
    const texts = await Promise.all(allFiles.filter((f) => f.endsWith('.txt')).map((f) => readFile(path.join(dir, f), 'utf8')));
    assert.ok(texts.some((text) => text.includes(LINK)), 'the whole link in the readable copy');
    const raws = await Promise.all(files.map((file) => readFile(path.join(dir, file), 'utf8')));
    const verify = raws.find((raw) => parseMail(raw).headers.get('subject') === first.subject);
    const reset = raws.find((raw) => parseMail(raw).headers.get('subject') === second.subject);
    assert.ok(verify && reset);
    assert.match(verify, /\r\n\r\n/, 'CRLF line ends, as on the wire');
    assertWellFormed(verify, first, LINK);
    assertWellFormed(reset, second, LINK.replace('verify-email', 'reset'));

    const written = records().filter((r) => r.msg === 'mail sent');
    assert.deepEqual(written.map((r) => path.basename(String(r.file))).sort(), files);
    assert.deepEqual(written.map((r) => r.subject).sort(), [second.subject, first.subject].sort());
    const all = lines.join('');
    assert.ok(!all.includes(TOKEN.slice(0, 20)), 'no token in the log');
    assert.ok(!all.includes('verify-email'), 'no link in the log');
  });

  it('logs a failure to write and still resolves idle()', async () => {
    const { log, records } = capturedLogger();
    // A data dir that is a file: mkdir fails on every try.
    const blocked = path.join(dataDir, 'not-a-dir');
    await writeFile(blocked, '');
    const mailer = createMailer({ config: config({ LATCHKEY_DATA_DIR: blocked }), log, retryDelaysMs: [1, 1, 1] });
    mailer.send(verifyEmailMessage({ to: 'f@example.com', link: LINK, expiresInText: '1 day' }));
    await mailer.idle();
    await mailer.close();
    const failures = records().filter((r) => String(r.msg).startsWith('mail not sent'));
    assert.equal(failures.length, 4);
    assert.equal((failures[3]!.error as { code?: unknown }).code, 'ENOTDIR');
  });
});

describe('messages', () => {
  const link = 'https://latchkey.test/portal/x?token=abc&y=1';
  const builders: [string, MailMessage][] = [
    ['verify', verifyEmailMessage({ to: 'a@example.com', link, expiresInText: '24 hours' })],
    ['reset', passwordResetMessage({ to: 'a@example.com', link, expiresInText: '1 hour' })],
    ['exists', accountExistsMessage({ to: 'a@example.com', signInLink: 'https://latchkey.test/portal/sign-in', resetLink: link })],
    ['invite', teamInviteMessage({ to: 'a@example.com', teamName: 'Payments', invitedBy: 'grace@example.com', link, expiresInText: '7 days' })],
    ['approved', requestDecidedMessage({ to: 'a@example.com', kind: 'API key', name: 'billing', approved: true, link })],
    ['declined', requestDecidedMessage({ to: 'a@example.com', kind: 'application', name: 'crm', approved: false, note: 'use the sandbox', link })],
  ];

  for (const [name, message] of builders) {
    it(`${name}: subject, both parts, link as button and as text`, () => {
      assert.match(message.subject, /^Latchkey: \S/);
      assert.equal(message.to, 'a@example.com');
      assert.ok(message.text.includes(link));
      assert.ok(!message.text.includes('<'), 'plain text has no markup');
      const href = link.replace(/&/g, '&#38;');
      assert.ok(message.html.includes(`<a href="${href}" style="display:inline-block`), 'a button-like anchor');
      assert.ok(message.html.includes(`>${href}</a>`), 'the URL as text');
      assert.ok(!message.html.includes('&y=1'), 'ampersands escaped');
    });
  }

  it('account exists: both links, and nothing that confirms a sign-up happened', () => {
    const [, message] = builders[2]!;
    assert.deepEqual(
      [...message.text.matchAll(/https:\S+/g)].map((m) => m[0]),
      ['https://latchkey.test/portal/sign-in', link],
    );
  });

  it('request decided: outcome and the reviewer note in both parts', () => {
    const approved = builders[4]![1];
    const declined = builders[5]![1];
    assert.equal(approved.subject, 'Latchkey: your API key request “billing” was approved');
    assert.equal(declined.subject, 'Latchkey: your application request “crm” was declined');
    assert.match(declined.text, /Note from the reviewer: use the sandbox/);
    assert.match(declined.html, /Note from the reviewer: use the sandbox/);
    assert.doesNotMatch(approved.text, /Note from the reviewer/);
  });

  it('escapes what people typed, and keeps the subject on one line', () => {
    const message = teamInviteMessage({
      to: 'a@example.com',
      teamName: '<script>alert(1)</script>\r\nBcc: victim@example.com',
      invitedBy: 'Mallory "M" <m@example.com>',
      link,
      expiresInText: '7 days',
    });
    assert.doesNotMatch(message.subject, /[\r\n]/);
    assert.doesNotMatch(message.html, /<script>/);
    assert.match(message.html, /&#60;script&#62;alert\(1\)&#60;\/script&#62;/);
    assert.match(message.html, /Mallory &#34;M&#34; &#60;m@example.com&#62;/);
  });

  it('refuses a link that is not an absolute http(s) URL', () => {
    for (const bad of ['/portal/verify?token=x', 'javascript:alert(1)', 'not a url']) {
      assert.throws(() => verifyEmailMessage({ to: 'a@example.com', link: bad, expiresInText: '1 day' }), TypeError);
    }
  });
});
