import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { appendAuditEvents, verifyAuditChain } from '../../src/audit/audit-log.ts';
import { cliJson } from '../helpers/cli.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;

before(async () => {
  server = await startTestServer();
  await server.deps.prisma.$transaction((tx) =>
    appendAuditEvents(tx, [
      { type: 'test.one', actorType: 'system', data: { b: 2, a: [1, { z: null, y: 'ü' }] } },
      { type: 'test.two', actorType: 'cli', actorId: 'someone', subjectType: 'thing', subjectId: 't1' },
    ], server.deps.now()),
  );
  await Promise.all([1, 2, 3].map((n) => server.deps.audit.record({ type: 'test.batched', actorType: 'system', data: { n } })));
});
after(() => server.close());

describe('audit log', () => {
  it('chains every event, in one order, whichever path wrote it', async () => {
    const result = await verifyAuditChain(server.deps.prisma);
    assert.equal(result.ok, true);
    const count = await server.deps.prisma.auditEvent.count();
    assert.equal(result.events, count);
    const verify = await cliJson(server, ['audit', 'verify']);
    assert.equal(verify.ok, true);
  });

  it('stores text jsonb would refuse (NUL, lone surrogates) without losing the batch', async () => {
    await Promise.all([
      server.deps.audit.record({ type: 'test.hostile', actorType: 'client', actorId: 'a\u0000b', data: { reason: 'x\u0000y\ud800z' } }),
      server.deps.audit.record({ type: 'test.neighbour', actorType: 'system' }),
    ]);
    const hostile = await server.deps.prisma.auditEvent.findFirstOrThrow({ where: { type: 'test.hostile' } });
    assert.equal(hostile.actorId, 'ab');
    assert.deepEqual(hostile.data, { reason: 'xy\ufffdz' });
    assert.ok(await server.deps.prisma.auditEvent.findFirst({ where: { type: 'test.neighbour' } }));
    assert.equal((await verifyAuditChain(server.deps.prisma)).ok, true);
  });

  it('exports a page at a time, by sequence number', async () => {
    const { exportAuditEvents } = await import('../../src/audit/audit-export.ts');
    const all = await exportAuditEvents(server.deps.prisma);
    assert.equal(all.next_after_seq, undefined);
    const first = await exportAuditEvents(server.deps.prisma, { limit: 2 });
    assert.deepEqual(first.events.map((e) => e.seq), all.events.slice(0, 2).map((e) => e.seq));
    assert.equal(first.next_after_seq, all.events[1]!.seq);
    const second = await cliJson(server, ['audit', 'export', '--after-seq', first.next_after_seq!]);
    // The rest, then the CLI export's own event (written before the page is read).
    assert.deepEqual(second.events.slice(0, -1).map((e: { seq: string }) => e.seq), all.events.slice(2).map((e) => e.seq));
    assert.equal(second.events.at(-1).type, 'audit.exported');
  });

  it('refuses UPDATE, DELETE and TRUNCATE at the database', async () => {
    const sql = ['UPDATE audit_event SET type = \'x\'', 'DELETE FROM audit_event', 'TRUNCATE audit_event'];
    for (const statement of sql) {
      await assert.rejects(server.deps.db.query(statement), /append-only/, statement);
    }
  });

  it('shows an edit made behind the triggers\' back as a broken link', async () => {
    const victim = await server.deps.prisma.auditEvent.findFirstOrThrow({ where: { type: 'test.two' } });
    await server.deps.db.query('ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_change');
    try {
      await server.deps.db.query(`UPDATE audit_event SET actor_id = 'someone-else' WHERE seq = ${victim.seq}`);
    } finally {
      await server.deps.db.query('ALTER TABLE audit_event ENABLE TRIGGER audit_event_no_change');
    }
    const result = await verifyAuditChain(server.deps.prisma);
    assert.equal(result.ok, false);
    assert.equal(result.brokenAt, victim.seq.toString());
  });
});
