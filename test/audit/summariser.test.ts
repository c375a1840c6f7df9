import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { AuditEventInput } from '../../src/audit/audit-log.ts';
import { AuditSummariser } from '../../src/audit/summariser.ts';

/** A summariser whose writes are collected (what reaches the audit writer is what this tests). */
function summariser() {
  const written: AuditEventInput[] = [];
  const junk = new AuditSummariser({ record: async (event) => void written.push(event) }, () => new Date('2026-12-01T00:00:00Z'), 60_000, pino({ enabled: false }));
  return { junk, written };
}

describe('junk summaries by peer', () => {
  it('count an IPv6 /64 as one source, keeping the first real address and naming the /64', async () => {
    const { junk, written } = summariser();
    const failed = (ip: string) => junk.count({ type: 'client_auth.failed', actorType: 'anonymous', ip, data: { method: 'none' } });
    for (let i = 1; i <= 100; i++) failed(`2001:db8:1:2::${i.toString(16)}`);
    failed('2001:db8:1:3::1');
    failed('2001:db8:1:4::1');
    failed('2001:db8:1:4::1');
    await junk.flush();
    const byIp = Object.fromEntries(written.map((event) => [event.ip, event.data]));
    assert.equal(written.length, 3);
    assert.deepEqual(byIp['2001:db8:1:2::1'], { method: 'none', network: '2001:db8:1:2::/64', count: 100, first: '2026-12-01T00:00:00.000Z', last: '2026-12-01T00:00:00.000Z' });
    assert.equal((byIp['2001:db8:1:3::1'] as { count: number }).count, 1);
    assert.deepEqual(byIp['2001:db8:1:4::1'], { method: 'none', count: 2, first: '2026-12-01T00:00:00.000Z', last: '2026-12-01T00:00:00.000Z' }, 'one address: no network named');
  });
});
