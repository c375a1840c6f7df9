import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { appendAuditEvents, chainHash, type AuditEventInput } from '../../src/audit/audit-log.ts';
import { auditFilterSchema, csvCell, CSV_COLUMNS, queryAuditEvents, streamAuditEvents, type AuditEventView } from '../../src/audit/audit-query.ts';
import { cli } from '../helpers/cli.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
let dir: string;
const T0 = Date.parse('2030-01-01T00:00:00Z');
const hour = 3_600_000;

/** Events of this test, apart from those the server wrote at start. */
const mine = { type: ['q.created', 'q.revoked', 'q.failed', 'q.sign_in_failed'] };

async function append(at: number, events: AuditEventInput[]) {
  await server.deps.prisma.$transaction((tx) => appendAuditEvents(tx, events, new Date(at)));
}

before(async () => {
  server = await startTestServer();
  dir = await mkdtemp(path.join(os.tmpdir(), 'latchkey-audit-query-'));
  for (let i = 0; i < 12; i++) {
    await append(T0 + i * hour, [
      { type: 'q.created', actorType: 'account', actorId: i % 2 ? 'alice' : 'bob', subjectType: 'api_key', subjectId: `k${i % 3}`, data: { i } },
      ...(i % 4 === 0 ? [{ type: 'q.failed', actorType: 'client' as const, actorId: 'app1', subjectType: 'client', subjectId: 'app1', data: { i, error: 'invalid_client' } }] : []),
    ]);
  }
  await append(T0 + 12 * hour, [
    { type: 'q.revoked', actorType: 'cli', actorId: '+cmd', subjectType: 'api_key', subjectId: '@k0', data: { reason: '=HYPERLINK("http://evil","x")' } },
    { type: 'q.sign_in_failed', actorType: 'anonymous', actorId: '-1', ip: '\tx', data: { note: 'comma, "quote"\nnewline' } },
  ]);
});
after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const filter = (input: Record<string, unknown>) => auditFilterSchema.parse({ type: mine.type.join(','), ...input });

async function all(input: Record<string, unknown>): Promise<AuditEventView[]> {
  const events: AuditEventView[] = [];
  for await (const event of streamAuditEvents(server.deps, filter(input))) events.push(event);
  return events;
}

describe('audit query', () => {
  const cases: [string, Record<string, unknown>, (e: AuditEventView) => boolean][] = [
    ['actor', { actor: 'alice' }, (e) => e.actorId === 'alice'],
    ['actor type', { actorType: 'client' }, (e) => e.actorType === 'client'],
    ['event type', { type: 'q.revoked' }, (e) => e.type === 'q.revoked'],
    ['several types', { type: 'q.revoked, q.failed' }, (e) => e.type === 'q.revoked' || e.type === 'q.failed'],
    ['subject', { subjectType: 'api_key', subjectId: 'k1' }, (e) => e.subjectType === 'api_key' && e.subjectId === 'k1'],
    ['outcome failure', { outcome: 'failure' }, (e) => e.type.endsWith('failed')],
    ['outcome success', { outcome: 'success' }, (e) => !e.type.endsWith('failed')],
    ['time range', { from: new Date(T0 + 2 * hour).toISOString(), to: new Date(T0 + 5 * hour).toISOString() }, (e) => Date.parse(e.at) >= T0 + 2 * hour && Date.parse(e.at) < T0 + 5 * hour],
    ['combined', { actor: 'bob', subjectId: 'k0', to: new Date(T0 + 7 * hour).toISOString() }, (e) => e.actorId === 'bob' && e.subjectId === 'k0' && Date.parse(e.at) < T0 + 7 * hour],
  ];
  for (const [what, input, matches] of cases) {
    it(`filters by ${what}, newest first, a keyset page at a time`, async () => {
      const everything = await all({});
      const expected = everything.filter(matches).map((e) => e.seq).reverse();
      assert.ok(expected.length > 0 && expected.length < everything.length, `${what}: ${expected.length} of ${everything.length}`);
      const seen: string[] = [];
      let older: string | undefined;
      for (let pages = 0; pages < 20; pages++) {
        const page = await queryAuditEvents(server.deps, filter(input), { older, limit: 2 });
        seen.push(...page.events.map((e) => e.seq));
        older = page.older;
        if (!older) break;
      }
      assert.deepEqual(seen, expected);
    });
  }

  it('says what an outcome is: failure when the type ends in "failed"', async () => {
    const [failed] = (await queryAuditEvents(server.deps, filter({ type: 'q.sign_in_failed' }))).events;
    const [revoked] = (await queryAuditEvents(server.deps, filter({ type: 'q.revoked' }))).events;
    assert.equal(failed!.outcome, 'failure');
    assert.equal(revoked!.outcome, 'success');
  });

  it('refuses filters that make no sense, in words', () => {
    for (const [input, message] of [
      [{ outcome: 'maybe' }, /outcome/],
      [{ from: 'yesterday' }, /ISO date/],
      [{ from: '2030-01-02T00:00:00Z', to: '2030-01-01T00:00:00Z' }, /--from must be before --to/],
      [{ actorType: 'robot' }, /actorType/],
    ] as const) {
      const parsed = auditFilterSchema.safeParse(input);
      assert.equal(parsed.success, false);
      assert.match(JSON.stringify(parsed.error!.issues), message);
    }
  });

  it('streams by keyset pages: an event appended mid-export still arrives, in order', async () => {
    const stream = streamAuditEvents(server.deps, filter({}), 3);
    const first = await stream.next();
    assert.equal(first.done, false);
    await append(T0 + 20 * hour, [{ type: 'q.created', actorType: 'system', data: { late: true } }]);
    const rest: AuditEventView[] = [];
    for await (const event of stream) rest.push(event);
    assert.deepEqual(rest.at(-1)!.data, { late: true }, 'pages are read as the stream is consumed, not up front');
    const seqs = [first.value!.seq, ...rest.map((e) => e.seq)].map(BigInt);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => (a < b ? -1 : 1)));
  });

  it('finds events in a time range when their times are slightly out of chain order', async () => {
    // Y commits after X but carries an earlier time (its transaction began first).
    await append(T0 + 40 * hour, [{ type: 'q.created', actorType: 'system', subjectId: 'X' }]);
    await append(T0 + 40 * hour - 30_000, [{ type: 'q.created', actorType: 'system', subjectId: 'Y' }]);
    await append(T0 + 41 * hour, [{ type: 'q.created', actorType: 'system', subjectId: 'Z' }]);
    const range = { from: new Date(T0 + 39 * hour).toISOString(), to: new Date(T0 + 40 * hour - 29_000).toISOString() };
    const page = await queryAuditEvents(server.deps, filter(range));
    assert.deepEqual(page.events.map((e) => e.subjectId), ['Y']);
    assert.deepEqual((await all(range)).map((e) => e.subjectId), ['Y']);
    const wider = { from: new Date(T0 + 40 * hour - 31_000).toISOString(), to: new Date(T0 + 40 * hour + 1).toISOString() };
    assert.deepEqual((await queryAuditEvents(server.deps, filter(wider))).events.map((e) => e.subjectId), ['Y', 'X']);
  });
});

/** RFC 4180, enough for the test: quoted cells with "" and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell), rows.push(row), (row = []), (cell = ''), i++;
    } else cell += c;
  }
  assert.equal(cell + row.join(''), '', 'the export ends with a line break');
  return rows;
}

describe('audit export (CLI)', () => {
  it('writes the filtered view as JSON Lines that parse back and re-verify', async () => {
    const result = await cli(server, ['audit', 'export', '--format', 'jsonl', '--actor', 'alice', '--type', 'q.created']);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as AuditEventView);
    const expected = await all({ actor: 'alice', type: 'q.created' });
    assert.deepEqual(lines, expected);
    for (const event of lines) {
      assert.equal(chainHash(event.prevHash, { ...event, at: new Date(event.at) }), event.hash, 'an export carries what the chain hashes');
    }
  });

  it('writes CSV to a file, quoted per RFC 4180, with formulas neutralised', async () => {
    const file = path.join(dir, 'export.csv');
    const result = await cli(server, ['audit', 'export', '--format', 'csv', '--out', file, '--from', new Date(T0 + 12 * hour).toISOString(), '--type', mine.type.join(',')]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '');
    const [header, ...rows] = parseCsv(await readFile(file, 'utf8'));
    assert.deepEqual(header, [...CSV_COLUMNS]);
    const byType = Object.fromEntries(rows.map((r) => [r[2], Object.fromEntries(header!.map((h, i) => [h, r[i]]))]));
    const revoked = byType['q.revoked']!;
    assert.equal(revoked.actorId, "'+cmd");
    assert.equal(revoked.subjectId, "'@k0");
    assert.deepEqual(JSON.parse(revoked.data!), { reason: '=HYPERLINK("http://evil","x")' }, 'a formula inside JSON text is not at the start of a cell');
    const failed = byType['q.sign_in_failed']!;
    assert.equal(failed.actorId, "'-1");
    assert.equal(failed.ip, "'\tx");
    assert.equal(failed.outcome, 'failure');
    assert.deepEqual(JSON.parse(failed.data!), { note: 'comma, "quote"\nnewline' });
    for (const row of rows) for (const cell of row) assert.doesNotMatch(cell, /^[=+\-@\t\r]/);
  });

  it('neutralises every formula prefix', () => {
    assert.deepEqual(['=1+1', '+1', '-1', '@SUM(A1)', '\tx', '\rx', 'ok', null].map(csvCell), ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "\"'\rx\"", 'ok', '']);
  });

  it('refuses bad flags with exit 2 and one line', async () => {
    for (const argv of [
      ['--format', 'xml'],
      ['--format', 'csv', '--outcome', 'maybe'],
      ['--format', 'csv', '--from', 'yesterday'],
      ['--format', 'jsonl', '--json'],
      ['--actor', 'alice'],
      ['--format', 'csv', '--from', '2030-01-02T00:00:00Z', '--to', '2030-01-01T00:00:00Z'],
    ]) {
      const result = await cli(server, ['audit', 'export', ...argv]);
      assert.equal(result.code, 2, argv.join(' '));
      assert.match(result.stderr, /^latchkey: [^\n]+\n$/, argv.join(' '));
    }
  });
});
