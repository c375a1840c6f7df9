import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { appendAuditEvents, type AuditEventInput } from '../../src/audit/audit-log.ts';
import { CSV_COLUMNS } from '../../src/audit/audit-query.ts';
import { signedInStaff, type Staff } from '../helpers/admin.ts';
import { STRONG_PASSWORD } from '../helpers/portal.ts';
import { cliJson } from '../helpers/cli.ts';
import { createScope } from '../helpers/factories.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// The audit log screen over HTTP (issue 8 §1.2 Audit log, §2): filters as GET parameters,
// keyset pages with the `older` cursor, the filtered view exported as JSON Lines and CSV
// (streamed, attachment, no-store), refused filters beside their field, and the auditor's
// read-only view.
let server: TestServer;
let admin: Staff;
let auditor: Staff;
let keyId: string;
const hour = 3_600_000;
let base: number;

/** Events written by the real writer (audit_append), `at` as given: later batches get later times, as in life. */
async function seed(at: Date, events: AuditEventInput[]) {
  await server.deps.prisma.$transaction((tx) => appendAuditEvents(tx, events, at));
}

const rowsOf = (html: string) => [...html.matchAll(/<tr><td class="nowrap"><time datetime="([^"]+)">[^<]*<\/time><span class="muted small block">#(\d+)<\/span><\/td><td><code>([^<]+)<\/code>/g)].map((m) => ({ at: m[1]!, seq: Number(m[2]), type: m[3]! }));
const olderLink = (html: string) => /<a href="([^"]+)">Older events<\/a>/.exec(html)?.[1]?.replace(/&amp;/g, '&') ?? null;

before(async () => {
  server = await startTestServer();
  const scope = await createScope(server);
  [admin, auditor] = await Promise.all([signedInStaff(server, 'audit-admin@example.test', 'admin'), signedInStaff(server, 'audit-auditor@example.test', 'auditor')]);
  const key = await cliJson<{ id: string }>(server, ['key', 'create', '--name', 'audited key', '--scopes', scope]);
  keyId = key.id;
  await cliJson(server, ['key', 'revoke', key.id, '--reason', 'leaked in a <script>alert(1)</script> paste']);
  // 120 ticks an hour from now, then a failed attempt and a hostile cell two hours from now.
  base = server.deps.now().getTime();
  await seed(new Date(base + hour), Array.from({ length: 120 }, (_, i) => ({ type: 'test.tick', actorType: 'system' as const, subjectType: 'team', subjectId: 'ticker', data: { n: i } })));
  await seed(new Date(base + 2 * hour), [
    { type: 'client_auth.failed', actorType: 'anonymous', subjectType: 'client', subjectId: 'lkc_unknown', requestId: 'req-failed-1', data: { reason: 'invalid_client' } },
    { type: 'test.hostile', actorType: 'system', subjectType: 'note', subjectId: '=HYPERLINK("http://evil.example","x")', data: { text: '@SUM(1+1)' } },
  ]);
});
after(() => server?.close());

describe('the audit log screen', () => {
  it('lists the newest events first, in the admin navigation, with actor, subject link, outcome and escaped details', async () => {
    const answer = await admin.client.get('/admin/audit');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    const html = await answer.text();
    assert.match(html, /<a href="\/admin\/audit" aria-current="page">Audit log<\/a>/);
    assert.match(html, /<a href="\/admin\/signing-keys">Signing keys<\/a>/);
    assert.match(html, /<a href="\/admin\/plans">Plans<\/a>/);
    const rows = rowsOf(html);
    assert.equal(rows.length, 50);
    assert.deepEqual(rows.map((r) => r.seq), [...rows.map((r) => r.seq)].sort((a, b) => b - a), 'newest first');
    assert.equal(rows[0]!.type, 'test.hostile');
    assert.match(html, /<span class="badge badge-red">failure<\/span>/);
    assert.match(html, /request <code>req-failed-1<\/code>/);
    assert.match(html, /<a href="\/admin\/applications\/lkc_unknown">client <code>lkc_unknown<\/code><\/a>/);
    // Filtered to the key: its revocation, by the operator, with the reason escaped.
    const keyPage = await (await admin.client.get(`/admin/audit?subjectType=api_key&subjectId=${keyId}&type=api_key.revoked`)).text();
    assert.equal(rowsOf(keyPage).length, 1);
    assert.match(keyPage, new RegExp(`<a href="/admin/keys/${keyId}">api key <code>${keyId}</code></a>`));
    assert.match(keyPage, /reason: leaked in a &lt;script>alert\(1\)&lt;\/script> paste/);
    assert.doesNotMatch(keyPage, /<script>alert/);
  });

  it('pages through with the older cursor (keyset): no event twice, none missed, then no Older link', async () => {
    let url: string | null = '/admin/audit?type=test.tick';
    const seen: number[] = [];
    let pages = 0;
    while (url) {
      assert.match(url, /^\/admin\/audit\?type=test\.tick(&older=\d+)?$/, 'the cursor is a sequence number, never an offset');
      const html = await (await admin.client.get(url)).text();
      const rows = rowsOf(html);
      assert.ok(rows.every((r) => r.type === 'test.tick'));
      seen.push(...rows.map((r) => r.seq));
      if (pages > 0) assert.match(html, /<a href="\/admin\/audit\?type=test\.tick">Newest events<\/a>/);
      url = olderLink(html);
      pages += 1;
    }
    assert.equal(pages, 3);
    assert.equal(seen.length, 120);
    assert.equal(new Set(seen).size, 120);
    assert.deepEqual(seen, [...seen].sort((a, b) => b - a));
  });

  it('filters by actor (email or id), event types, subject, outcome and time range', async () => {
    const count = async (query: string) => {
      const answer = await admin.client.get(`/admin/audit?${query}`);
      assert.equal(answer.status, 200, query);
      return rowsOf(await answer.text());
    };
    assert.deepEqual((await count('outcome=failure')).map((r) => r.type), ['client_auth.failed']);
    assert.ok((await count('outcome=success')).every((r) => r.type !== 'client_auth.failed'));
    assert.deepEqual((await count('type=client_auth.failed,test.hostile')).map((r) => r.type), ['test.hostile', 'client_auth.failed']);
    assert.deepEqual((await count('subjectType=client&subjectId=lkc_unknown')).map((r) => r.type), ['client_auth.failed']);
    // From is inclusive, to exclusive; a time as the screen shows it ("… UTC") is accepted.
    const at2 = new Date(base + 2 * hour).toISOString();
    assert.equal((await count(`from=${encodeURIComponent(at2)}`)).length, 2);
    assert.equal((await count(`from=${encodeURIComponent(`${at2.slice(0, 19).replace('T', ' ')} UTC`)}`)).length, 2);
    assert.equal((await count(`type=test.tick&to=${encodeURIComponent(at2)}`)).length, 50);
    assert.equal((await count(`from=${encodeURIComponent(new Date(base + hour).toISOString())}&to=${encodeURIComponent(at2)}&type=test.hostile`)).length, 0);
    // The admin's own sign-in is theirs: by email or by id.
    const account = await server.deps.prisma.account.findUniqueOrThrow({ where: { email: admin.email } });
    const byEmail = await count(`actor=${encodeURIComponent(admin.email.toUpperCase())}`);
    const byId = await count(`actor=${account.id}`);
    assert.ok(byEmail.length > 0);
    assert.deepEqual(byEmail, byId);
    const html = await (await admin.client.get(`/admin/audit?actor=${account.id}`)).text();
    assert.match(html, new RegExp(`<a href="/admin/developers/${account.id}">${admin.email.replace('.', '\\.')}</a>`));
  });

  it('refuses bad filters beside the field, with what was typed kept; never a 500', async () => {
    const cases: [string, string, RegExp][] = [
      ['from=yesterday', 'from', /Enter a UTC time such as/],
      ['to=2026-13-45', 'to', /Enter a UTC time such as/],
      ['from=2026-12-02&to=2026-12-01', 'to', /The end must be after the start\./],
      ['outcome=maybe', 'outcome', /Choose Any, Success or Failure\./],
      ['actor=nobody%40example.test', 'actor', /No account has this email\./],
      [`subjectId=${'x'.repeat(300)}`, 'subjectId', /Use at most 200 characters\./],
      [`type=${Array.from({ length: 51 }, (_, i) => `t${i}`).join(',')}`, 'type', /Give 1 to 50 event types/],
    ];
    for (const [query, field, message] of cases) {
      const answer = await admin.client.get(`/admin/audit?${query}`);
      assert.equal(answer.status, 400, query);
      const html = await answer.text();
      assert.match(html, new RegExp(`id="field-${field}-error">${message.source}`), query);
      assert.match(html, new RegExp(`aria-invalid="true" aria-describedby="[^"]*field-${field}-error"`), query);
      assert.equal(rowsOf(html).length, 0, 'nothing read');
    }
    const typed = await (await admin.client.get('/admin/audit?from=%22%3E%3Cb%3Ex')).text();
    assert.match(typed, /value="&quot;>&lt;b>x"/, 'what was typed is kept, escaped');
    const broken = await admin.client.get('/admin/audit?older=12abc');
    assert.equal(broken.status, 400);
    assert.match(await broken.text(), /That page address is broken/);
    const huge = await admin.client.get('/admin/audit?older=99999999999999999999');
    assert.equal(huge.status, 400);
  });
});

describe('the export', () => {
  it('streams the filtered view as JSON Lines: an attachment, not stored, each line one event', async () => {
    const answer = await admin.client.get('/admin/audit/export?format=jsonl&type=test.tick');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('content-type'), 'application/x-ndjson; charset=utf-8');
    assert.match(answer.headers.get('content-disposition') ?? '', /^attachment; filename="latchkey-audit-\d{8}T\d{6}Z\.jsonl"$/);
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    assert.equal(answer.headers.get('content-length'), null, 'streamed, not built first');
    const lines = (await answer.text()).split('\n');
    assert.equal(lines.pop(), '', 'every line ends with a newline');
    const events = lines.map((line) => JSON.parse(line));
    assert.equal(events.length, 120);
    assert.deepEqual(events.map((e) => e.data.n), Array.from({ length: 120 }, (_, i) => i), 'oldest first, as a log reads');
    assert.deepEqual(Object.keys(events[0]).sort(), [...CSV_COLUMNS].sort());
  });

  it('exports CSV with its header and formula cells neutralised', async () => {
    const answer = await admin.client.get('/admin/audit/export?format=csv&type=test.hostile,client_auth.failed');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('content-type'), 'text/csv; charset=utf-8');
    assert.match(answer.headers.get('content-disposition') ?? '', /^attachment; filename="latchkey-audit-\d{8}T\d{6}Z\.csv"$/);
    const lines = (await answer.text()).split('\r\n');
    assert.equal(lines[0], CSV_COLUMNS.join(','));
    assert.equal(lines.length, 4, 'header, two events, and the final line break');
    const hostile = lines.find((line) => line.includes('test.hostile'))!;
    assert.ok(hostile.includes(`"'=HYPERLINK(""http://evil.example"",""x"")"`), hostile);
    assert.doesNotMatch(hostile, /(^|,)"?[=+@\t\r-]/, 'no cell starts with a formula character');
  });

  it('is linked from the screen with the same filters; an empty view is an empty file (CSV: the header)', async () => {
    const html = await (await admin.client.get('/admin/audit?type=test.tick&outcome=failure')).text();
    assert.match(html, /<a class="button button-secondary" href="\/admin\/audit\/export\?type=test\.tick&amp;outcome=failure&amp;format=jsonl">Export JSON Lines<\/a>/);
    assert.match(html, /<a class="button button-secondary" href="\/admin\/audit\/export\?type=test\.tick&amp;outcome=failure&amp;format=csv">Export CSV<\/a>/);
    assert.match(html, /No events match these filters/);
    const jsonl = await admin.client.get('/admin/audit/export?type=test.tick&outcome=failure&format=jsonl');
    assert.equal(jsonl.status, 200);
    assert.equal(await jsonl.text(), '');
    const csv = await admin.client.get('/admin/audit/export?type=test.tick&outcome=failure&format=csv');
    assert.equal(await csv.text(), `${CSV_COLUMNS.join(',')}\r\n`);
  });

  it('refuses a bad format or bad filters with a 400 page, not a file', async () => {
    const format = await admin.client.get('/admin/audit/export?format=xlsx');
    assert.equal(format.status, 400);
    assert.match(format.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await format.text(), /choose the export format/);
    const filter = await admin.client.get('/admin/audit/export?format=csv&from=soon');
    assert.equal(filter.status, 400);
    assert.equal(filter.headers.get('content-disposition'), null);
    assert.match(await filter.text(), /id="field-from-error"/);
  });
});

describe('the export is itself audited', () => {
  const newEvents = async (after: bigint) => server.deps.prisma.auditEvent.findMany({ where: { seq: { gt: after } }, orderBy: { seq: 'asc' } });
  const head = async () => (await server.deps.prisma.auditEvent.findFirstOrThrow({ orderBy: { seq: 'desc' }, select: { seq: true } })).seq;

  it('records one audit.exported event, committed before the file, with the admin, request, address, format and filters, and no secret', async () => {
    const start = await head();
    const from = new Date(base + hour).toISOString();
    const answer = await admin.client.get(`/admin/audit/export?format=csv&actor=${encodeURIComponent(admin.email)}&type=test.tick,test.hostile&from=${encodeURIComponent(from)}`);
    assert.equal(answer.status, 200);
    const events = await newEvents(start);
    assert.equal(events.length, 1, 'recorded when the answer starts, before its body is read');
    // The file holds none: its own event is by the admin, outside the filtered types.
    assert.equal((await answer.text()).split('\r\n').length, 2);
    const [event] = events;
    assert.equal(event!.type, 'audit.exported');
    assert.equal(event!.actorType, 'account');
    assert.equal(event!.actorId, admin.id);
    assert.equal(event!.requestId, answer.headers.get('x-request-id'));
    assert.match(event!.ip ?? '', /^(::ffff:)?127\.0\.0\.1$|^::1$/);
    assert.equal(event!.subjectType, 'audit_log');
    // The email typed as actor is recorded as the account id it names.
    assert.deepEqual(event!.data, { format: 'csv', filters: { actor: admin.id, type: ['test.tick', 'test.hostile'], from } });
    const text = JSON.stringify({ ...event, seq: String(event!.seq) });
    for (const secret of [...admin.client.cookies.values(), STRONG_PASSWORD, admin.secret, ...admin.recoveryCodes]) assert.ok(!text.includes(secret), 'no secret in the event');
  });

  it('audits an auditor’s export too, and a refused one not at all', async () => {
    const start = await head();
    assert.equal((await auditor.client.get('/admin/audit/export?format=jsonl')).status, 200);
    assert.equal((await admin.client.get('/admin/audit/export?format=csv&from=soon')).status, 400);
    const events = await newEvents(start);
    assert.deepEqual(events.map((e) => [e.type, e.actorId, e.data]), [['audit.exported', auditor.id, { format: 'jsonl', filters: {} }]]);
  });

  it('refuses an export another site starts (a cross-site link carries the session cookie): no file, no event', async () => {
    const start = await head();
    for (const headers of [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { referer: 'https://evil.example/page' }] as Record<string, string>[]) {
      const answer = await admin.client.get('/admin/audit/export?format=jsonl&type=test.tick', headers);
      assert.equal(answer.status, 403, JSON.stringify(headers));
      assert.equal(answer.headers.get('content-disposition'), null);
      assert.match(await answer.text(), /Start the export from the audit log page/);
    }
    assert.deepEqual(await newEvents(start), []);
    // From its own page (same-origin), as the link on the audit screen does.
    const own = await admin.client.get('/admin/audit/export?format=jsonl&type=test.tick', { 'sec-fetch-site': 'same-origin', referer: `${server.issuer}/admin/audit` });
    assert.equal(own.status, 200);
    assert.equal((await newEvents(start)).length, 1);
  });

  it('refuses the export, with no file, when its event cannot be written', async () => {
    const record = server.deps.audit.record;
    server.deps.audit.record = () => Promise.reject(new Error('audit write failed'));
    try {
      const answer = await admin.client.get('/admin/audit/export?format=jsonl&type=test.tick');
      assert.equal(answer.status, 500);
      assert.equal(answer.headers.get('content-disposition'), null);
      assert.match(answer.headers.get('content-type') ?? '', /text\/html/);
      assert.doesNotMatch(await answer.text(), /test\.tick/);
    } finally {
      server.deps.audit.record = record;
    }
  });
});

describe('links and roles', () => {
  it('links each detail page’s recent events to the audit screen filtered by its subject', async () => {
    const html = await (await admin.client.get(`/admin/keys/${keyId}`)).text();
    assert.match(html, new RegExp(`<a href="/admin/audit\\?subjectType=api_key&amp;subjectId=${keyId}">All its events in the audit log</a>`));
  });

  it('an auditor reads the screen and exports, and finds no form that changes anything', async () => {
    const answer = await auditor.client.get('/admin/audit?type=test.tick');
    assert.equal(answer.status, 200);
    const html = await answer.text();
    assert.equal(rowsOf(html).length, 50);
    assert.match(html, /signed in as an auditor/);
    const posts = [...html.matchAll(/<form method="post" action="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(posts.filter((action) => action !== '/portal/sign-out'), [], 'only Sign out posts');
    const exported = await auditor.client.get('/admin/audit/export?format=csv&type=test.tick');
    assert.equal(exported.status, 200);
    assert.equal((await exported.text()).split('\r\n').length, 122);
  });
});
