import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { chainHash } from '../../src/audit/audit-log.ts';
import { mailDailyCheckpoint, verifyAuditLog, writeCheckpoint } from '../../src/audit/checkpoints.ts';
import type { Config } from '../../src/config.ts';
import { cli, cliJson } from '../helpers/cli.ts';
import { findPart, parseMail, startSmtpPeer, type SmtpPeer } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
let smtp: SmtpPeer;
let dir: string;
let baseConfig: Config;

const record = (count: number, type = 'test.event') =>
  Promise.all(Array.from({ length: count }, (_, n) => server.deps.audit.record({ type, actorType: 'system', subjectType: 'thing', subjectId: `t${n}`, data: { n } })));

interface Row {
  seq: string;
  at: Date;
  type: string;
  actor_type: string;
  actor_id: string | null;
  subject_type: string | null;
  subject_id: string | null;
  request_id: string | null;
  ip: string | null;
  data: unknown;
  prev_hash: string;
  hash: string;
}
// seq as text: pg returns a bigint as a string, PGlite as a number.
const rows = async (where = 'TRUE') => ((await server.deps.db.query(`SELECT * FROM audit_event WHERE ${where} ORDER BY seq`)) as Row[]).map((row) => ({ ...row, seq: String(row.seq), at: new Date(row.at) }));

/** Runs `sql` with the append-only triggers off: what a database superuser can do. */
async function behindTheTriggers(...sql: string[]) {
  await server.deps.db.query('ALTER TABLE audit_event DISABLE TRIGGER USER');
  await server.deps.db.query('ALTER TABLE audit_checkpoint DISABLE TRIGGER USER');
  try {
    for (const statement of sql) await server.deps.db.query(statement);
  } finally {
    await server.deps.db.query('ALTER TABLE audit_event ENABLE TRIGGER USER');
    await server.deps.db.query('ALTER TABLE audit_checkpoint ENABLE TRIGGER USER');
  }
}

const literal = (value: unknown) => (value === null ? 'NULL' : `'${String(value).replace(/'/g, "''")}'`);
const insertSql = (row: Row) =>
  `INSERT INTO audit_event (seq, at, type, actor_type, actor_id, subject_type, subject_id, request_id, ip, data, prev_hash, hash) VALUES (${row.seq}, ${literal(row.at.toISOString())}, ${literal(row.type)}, ${literal(row.actor_type)}, ${literal(row.actor_id)}, ${literal(row.subject_type)}, ${literal(row.subject_id)}, ${literal(row.request_id)}, ${literal(row.ip)}, ${literal(JSON.stringify(row.data))}::jsonb, ${literal(row.prev_hash)}, ${literal(row.hash)})`;
const restoreSql = (row: Row) => [`DELETE FROM audit_event WHERE seq = ${row.seq}`, insertSql(row)];

const verify = (checkpointFile?: string) => cli(server, ['audit', 'verify', ...(checkpointFile ? ['--checkpoint', checkpointFile] : []), '--json']);

before(async () => {
  smtp = await startSmtpPeer();
  dir = await mkdtemp(path.join(os.tmpdir(), 'latchkey-checkpoints-'));
  // Thresholds the server's own timer never reaches here: the tests decide when checkpoints are due.
  server = await startTestServer({ env: { SMTP_URL: smtp.url, LATCHKEY_AUDIT_CHECKPOINT_EVENTS: '100000000', LATCHKEY_AUDIT_CHECKPOINT_INTERVAL: '999d' } });
  baseConfig = server.deps.config;
  await record(20);
});
after(async () => {
  await server?.close();
  await smtp?.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  server.deps.config = baseConfig;
  server.deps.now = () => new Date();
});

describe('writing checkpoints', () => {
  it('writes the first one, then only when N events or M minutes have passed, and never twice for one head', async () => {
    const first = await writeCheckpoint(server.deps);
    const again = await writeCheckpoint(server.deps);
    const head = (await rows()).at(-1)!;
    if (first) assert.equal(first.seq, head.seq);
    assert.equal(again, null, 'nothing new: no checkpoint');

    server.deps.config = { ...baseConfig, LATCHKEY_AUDIT_CHECKPOINT_EVENTS: 5 };
    await record(3);
    assert.equal(await writeCheckpoint(server.deps), null, '3 events < 5');
    await record(2);
    const byCount = await writeCheckpoint(server.deps);
    assert.equal(byCount?.seq, (await rows()).at(-1)!.seq);

    server.deps.config = { ...baseConfig, LATCHKEY_AUDIT_CHECKPOINT_INTERVAL: 5 * 60_000 };
    await record(1);
    server.deps.now = () => new Date(Date.now() + 4 * 60_000);
    assert.equal(await writeCheckpoint(server.deps), null, '4 minutes < 5');
    server.deps.now = () => new Date(Date.now() + 5 * 60_000);
    const byTime = await writeCheckpoint(server.deps);
    assert.equal(byTime?.seq, (await rows()).at(-1)!.seq);
    assert.equal(byTime?.at, server.deps.now().toISOString().slice(0, 17) + byTime!.at.slice(17), 'signed at deps.now()');
  });

  it('stores one checkpoint when several nodes sign the same head at once', async () => {
    await record(1);
    const results = await Promise.all([1, 2, 3].map(() => writeCheckpoint(server.deps, { force: true })));
    const head = (await rows()).at(-1)!.seq;
    assert.deepEqual(results.map((r) => r?.seq), [head, head, head]);
    const stored = (await server.deps.db.query(`SELECT count(*)::int AS n FROM audit_checkpoint WHERE seq = ${head}`)) as { n: number }[];
    assert.equal(stored[0]!.n, 1);
  });

  it('is append-only like the events', async () => {
    for (const sql of ['UPDATE audit_checkpoint SET hash = \'x\'', 'DELETE FROM audit_checkpoint', 'TRUNCATE audit_checkpoint']) {
      await assert.rejects(server.deps.db.query(sql), /append-only/, sql);
    }
  });

  it('downloads the latest checkpoint: JWS on stdout, to a file with --out, as JSON with --json', async () => {
    await record(1);
    const fresh = await cliJson(server, ['audit', 'checkpoint', '--new']);
    const printed = await cli(server, ['audit', 'checkpoint']);
    assert.equal(printed.code, 0);
    assert.equal(printed.stdout, `${fresh.jws}\n`);
    assert.match(fresh.jws, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const file = path.join(dir, 'latest.jws');
    const written = await cliJson(server, ['audit', 'checkpoint', '--out', file]);
    assert.equal(written.file, file);
    assert.equal((await readFile(file, 'utf8')).trim(), fresh.jws);
    const header = JSON.parse(Buffer.from(fresh.jws.split('.')[0], 'base64url').toString());
    assert.equal(header.typ, 'latchkey-audit-checkpoint');
    const payload = JSON.parse(Buffer.from(fresh.jws.split('.')[1], 'base64url').toString());
    assert.deepEqual(Object.keys(payload).sort(), ['at', 'hash', 'iss', 'mac', 'seq']);
    assert.equal(payload.iss, server.issuer);
  });
});

describe('audit verify', () => {
  it('is ok on an intact log and checks every stored checkpoint', async () => {
    const result = await verify();
    assert.equal(result.code, 0, result.stderr);
    const body = result.json();
    assert.equal(body.ok, true);
    const stored = (await server.deps.db.query('SELECT count(*)::int AS n FROM audit_checkpoint')) as { n: number }[];
    assert.equal(body.checkpoints, stored[0]!.n);
    assert.ok(body.checkpoints >= 3);
  });

  it('names an altered event', async () => {
    const victim = (await rows())[5]!;
    await behindTheTriggers(`UPDATE audit_event SET subject_id = 'someone-else' WHERE seq = ${victim.seq}`);
    try {
      const result = await verify();
      assert.equal(result.code, 1);
      assert.equal(result.stderr, `latchkey: audit log broken: event ${victim.seq} was altered: its hash does not match its content\n`);
    } finally {
      await behindTheTriggers(...restoreSql(victim));
    }
    assert.equal((await verify()).code, 0);
  });

  it('names an event altered with its own hash recomputed', async () => {
    const [victim, next] = (await rows()).slice(6, 8) as [Row, Row];
    const data = { n: 'changed' };
    const hash = chainHash(victim.prev_hash, { at: victim.at, type: victim.type, actorType: victim.actor_type, actorId: victim.actor_id, subjectType: victim.subject_type, subjectId: victim.subject_id, requestId: victim.request_id, ip: victim.ip, data });
    await behindTheTriggers(`UPDATE audit_event SET data = '${JSON.stringify(data)}'::jsonb, hash = '${hash}' WHERE seq = ${victim.seq}`);
    try {
      const result = (await verifyAuditLog(server.deps));
      assert.equal(result.ok, false);
      assert.equal(result.problem, 'altered');
      assert.equal(result.brokenAt, victim.seq);
      assert.match(result.message!, new RegExp(`event ${victim.seq} was altered and its hash recomputed: event ${next.seq} still links to the original`));
    } finally {
      await behindTheTriggers(...restoreSql(victim));
    }
  });

  it('names a deleted event', async () => {
    const victim = (await rows())[8]!;
    await behindTheTriggers(`DELETE FROM audit_event WHERE seq = ${victim.seq}`);
    try {
      const result = await verify();
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`^latchkey: audit log broken: event ${victim.seq} is missing: event \\d+ follows an event that is gone\\n$`));
    } finally {
      await behindTheTriggers(insertSql(victim));
    }
    assert.equal((await verify()).code, 0);
  });

  it('names events moved out of order', async () => {
    const [a, b] = (await rows()).slice(9, 11) as [Row, Row];
    await behindTheTriggers(`UPDATE audit_event SET seq = -1 WHERE seq = ${a.seq}`, `UPDATE audit_event SET seq = ${a.seq} WHERE seq = ${b.seq}`, `UPDATE audit_event SET seq = ${b.seq} WHERE seq = -1`);
    try {
      const result = await verifyAuditLog(server.deps);
      assert.equal(result.problem, 'reordered');
      assert.equal(result.brokenAt, a.seq);
      assert.match(result.message!, new RegExp(`event ${a.seq} is out of order: it was written right after event ${b.seq}`));
    } finally {
      await behindTheTriggers(`DELETE FROM audit_event WHERE seq IN (${a.seq}, ${b.seq})`, insertSql(a), insertSql(b));
    }
    assert.equal((await verify()).code, 0);
  });

  it('sees a rewrite that recomputed every hash after it, by the stored checkpoints', async () => {
    const all = await rows();
    const from = 3;
    let prev = all[from - 1]!.hash;
    const rewritten = all.slice(from).map((row, i) => {
      const data = i === 0 ? { n: 'rewritten' } : row.data;
      const hash = chainHash(prev, { at: row.at, type: row.type, actorType: row.actor_type, actorId: row.actor_id, subjectType: row.subject_type, subjectId: row.subject_id, requestId: row.request_id, ip: row.ip, data });
      const next = { ...row, data, prev_hash: prev, hash };
      prev = hash;
      return next;
    });
    // Old hashes first, so the unique index on hash never sees a clash mid-way.
    await behindTheTriggers(...all.slice(from).map((row) => `DELETE FROM audit_event WHERE seq = ${row.seq}`), ...rewritten.map(insertSql));
    try {
      const result = await verifyAuditLog(server.deps);
      assert.equal(result.ok, false);
      assert.equal(result.problem, 'rewritten');
      assert.match(result.message!, /^the chain was rewritten between the start and event \d+: checkpoint \d+ \(signed [^)]+\) vouches for a different hash$/);
    } finally {
      await behindTheTriggers(...all.slice(from).map((row) => `DELETE FROM audit_event WHERE seq = ${row.seq}`), ...all.slice(from).map(insertSql));
    }
    assert.equal((await verify()).code, 0);
  });

  it('detects the newest events deleted after a checkpoint, with the checkpoint file an admin kept', async () => {
    const file = path.join(dir, 'kept.jws');
    await record(4, 'test.newest');
    const kept = await cliJson(server, ['audit', 'checkpoint', '--new', '--out', file]);
    const all = await rows();
    const cut = all.length - 4;
    const gone = all.slice(cut);
    const storedGone = (await server.deps.db.query(`SELECT * FROM audit_checkpoint WHERE seq >= ${gone[0]!.seq}`)) as Record<string, unknown>[];
    // The attacker deletes the newest events and every stored checkpoint that names them.
    await behindTheTriggers(`DELETE FROM audit_event WHERE seq >= ${gone[0]!.seq}`, `DELETE FROM audit_checkpoint WHERE seq >= ${gone[0]!.seq}`);
    try {
      assert.equal((await verify()).code, 0, 'the chain alone cannot tell');
      const result = await verify(file);
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `latchkey: audit log broken: the log ends at event ${all[cut - 1]!.seq} but the checkpoint file (event ${kept.seq}, signed ${kept.at}) vouches for event ${kept.seq}: the newest events were deleted\n`,
      );
    } finally {
      await behindTheTriggers(
        ...gone.map(insertSql),
        ...storedGone.map((c) => `INSERT INTO audit_checkpoint (seq, hash, at, kid, jws) VALUES (${c.seq}, ${literal(c.hash)}, ${literal((c.at as Date).toISOString())}, ${literal(c.kid)}, ${literal(c.jws)})`),
      );
    }
    const restored = await verify(file);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(restored.json().checkpoints, storedGone.length + 1 + (await server.deps.prisma.auditCheckpoint.count({ where: { seq: { lt: BigInt(gone[0]!.seq) } } })));
  });

  it('detects the newest events deleted by the stored checkpoint alone, when it was left', async () => {
    await record(2, 'test.newest');
    const checkpoint = await writeCheckpoint(server.deps, { force: true });
    const victim = (await rows()).at(-1)!;
    assert.equal(checkpoint!.seq, victim.seq);
    await behindTheTriggers(`DELETE FROM audit_event WHERE seq = ${victim.seq}`);
    try {
      const result = await verifyAuditLog(server.deps);
      assert.equal(result.problem, 'truncated');
      assert.equal(result.brokenAt, victim.seq);
    } finally {
      await behindTheTriggers(insertSql(victim));
    }
  });

  it('refuses a checkpoint whose signature was tampered with, or that is no checkpoint', async () => {
    const { jws } = await cliJson(server, ['audit', 'checkpoint']);
    const [header, payload, signature] = jws.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, seq: '1' })).toString('base64url')}.${signature}`;
    const cases: [string, string, RegExp][] = [
      ['forged payload', forged, /^latchkey: checkpoint refused: the signature does not verify\n$/],
      ['flipped signature', `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`, /^latchkey: checkpoint refused: the signature does not verify\n$/],
      ['not a JWS', 'hello', /^latchkey: checkpoint refused: not a compact JWS\n$/],
      ['another typ', `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'x', typ: 'at+jwt' })).toString('base64url')}.${payload}.${signature}`, /not an audit checkpoint/],
      ['unknown key', `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'nope', typ: 'latchkey-audit-checkpoint' })).toString('base64url')}.${payload}.${signature}`, /a key this server does not have \(kid nope\)/],
      ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none', kid: JSON.parse(Buffer.from(header, 'base64url').toString()).kid, typ: 'latchkey-audit-checkpoint' })).toString('base64url')}.${payload}.`, /signature does not verify/],
    ];
    for (const [what, text, expected] of cases) {
      const file = path.join(dir, `${what.replace(/\W/g, '-')}.jws`);
      await writeFile(file, text);
      const result = await verify(file);
      assert.equal(result.code, 1, what);
      assert.equal(result.stdout, '', what);
      assert.match(result.stderr, expected, what);
    }
    // Whoever owns the database can add a signing key of their own, but not make the MAC that
    // binds a checkpoint to LATCHKEY_SECRET.
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = 'inserted-by-a-database-owner';
    await server.deps.prisma.signingKey.create({
      data: { kid, alg: 'ES256', publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }, privateJwkEncrypted: null, state: 'retired', createdAt: new Date(), activatesAt: new Date() },
    });
    const selfSigned = await new CompactSign(new TextEncoder().encode(JSON.stringify({ ...claims, seq: '1' })))
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'latchkey-audit-checkpoint' })
      .sign(privateKey);
    const file = path.join(dir, 'self-signed.jws');
    await writeFile(file, selfSigned);
    const result = await verify(file);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^latchkey: checkpoint refused: it was not made with this server's LATCHKEY_SECRET\n$/);
    await server.deps.prisma.signingKey.delete({ where: { kid } });

    const missing = await verify(path.join(dir, 'no-such-file'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--checkpoint: cannot read .*no-such-file \(ENOENT\)/);
  });

  it('refuses a stored checkpoint whose row was edited', async () => {
    const last = (await server.deps.prisma.auditCheckpoint.findFirstOrThrow({ orderBy: { seq: 'desc' } }));
    await behindTheTriggers(`UPDATE audit_checkpoint SET hash = '${'0'.repeat(64)}' WHERE seq = ${last.seq}`);
    try {
      const result = await verifyAuditLog(server.deps);
      assert.equal(result.ok, false);
      assert.match(result.message!, new RegExp(`stored checkpoint ${last.seq} .* was altered`));
    } finally {
      await behindTheTriggers(`UPDATE audit_checkpoint SET hash = '${last.hash}' WHERE seq = ${last.seq}`);
    }
  });
});

describe('the daily checkpoint mail', () => {
  it('sends each admin the checkpoint that closed the day before, once a day however many nodes try', async () => {
    const latest = await cliJson(server, ['audit', 'checkpoint']);
    server.deps.now = () => new Date(Date.now() - 2 * 86_400_000);
    assert.equal(await mailDailyCheckpoint(server.deps), 0, 'no checkpoint before that day began: nothing to mail');
    const day = new Date('2031-03-04T10:00:00Z');
    server.deps.now = () => day;
    const sent = await Promise.all([1, 2, 3].map(() => mailDailyCheckpoint(server.deps)));
    const admins = await server.deps.prisma.account.count({ where: { role: 'admin', status: 'active' } });
    assert.ok(admins >= 1);
    assert.equal(sent.reduce((a, b) => a + b, 0), admins);
    await server.deps.mailer.idle();
    const mails = smtp.messages.filter((m) => m.raw.includes('audit checkpoint for 2031-03-03'));
    assert.equal(mails.length, admins);
    const text = findPart(parseMail(mails[0]!.raw), 'text/plain')!.body;
    assert.ok(text.replace(/\s/g, '').includes(latest.jws), 'the mail carries the signed checkpoint');
    assert.match(text, /latchkey audit verify --checkpoint FILE/);

    server.deps.now = () => new Date('2031-03-04T23:59:00Z');
    assert.equal(await mailDailyCheckpoint(server.deps), 0, 'same day: no second mail');
    server.deps.now = () => new Date('2031-03-05T00:01:00Z');
    assert.equal(await mailDailyCheckpoint(server.deps), admins, 'next day: one more');
  });
});
