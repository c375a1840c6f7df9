import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/deps.ts';
import { databaseDown, databaseReachable, databaseUnreachable, warnUnlessOutage } from '../../src/lib/failure-log.ts';

function logger() {
  const lines: { level: number; msg: string; refused?: number }[] = [];
  const log = createLogger({ LOG_LEVEL: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

describe('the outage log (issue 9 §1.8: no log flood while the database is down)', () => {
  it('says so once when the outage is met, once a minute while it lasts, and once when it ends', () => {
    const { log, lines } = logger();
    const start = 1_000_000;
    assert.equal(databaseDown(log), false);
    for (let i = 0; i < 1_000; i++) databaseUnreachable(log, refused, start + i);
    assert.deepEqual(lines.map((l) => l.msg), ['database unreachable: credential endpoints and pages answer 503 until it is back']);
    assert.equal(lines[0]!.level, 50);
    assert.equal(databaseDown(log), true);

    databaseUnreachable(log, refused, start + 60_000);
    assert.equal(lines.length, 2);
    assert.equal(lines[1]!.msg, 'database still unreachable');
    assert.equal(lines[1]!.refused, 1_000, 'the refusals since the last line');

    databaseReachable(log, start + 61_000);
    databaseReachable(log, start + 62_000);
    assert.deepEqual(lines.slice(2).map((l) => l.msg), ['database reachable again']);
    assert.equal(databaseDown(log), false);

    // A second outage is a new transition.
    databaseUnreachable(log, refused, start + 70_000);
    assert.equal(lines.length, 4);
    assert.match(lines[3]!.msg, /^database unreachable/);
  });

  it('keeps one state per node (logger)', () => {
    const a = logger();
    const b = logger();
    databaseUnreachable(a.log, refused);
    assert.equal(databaseDown(a.log), true);
    assert.equal(databaseDown(b.log), false);
    databaseReachable(b.log);
    assert.equal(b.lines.length, 0, 'nothing to say for a node that was never down');
  });

  it('background jobs: a warning for a real failure, the outage lines for an unreachable database', () => {
    const { log, lines } = logger();
    warnUnlessOutage(log, new Error('boom'), 'expiry sweep failed');
    for (let i = 0; i < 50; i++) warnUnlessOutage(log, refused, 'expiry sweep failed');
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg]),
      [
        [40, 'expiry sweep failed'],
        [50, 'database unreachable: credential endpoints and pages answer 503 until it is back'],
      ],
    );
  });
});
