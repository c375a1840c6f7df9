import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose';
import { verifyAuditChain } from '../../src/audit/audit-log.ts';
import { loadConfig } from '../../src/config.ts';
import type { Deps } from '../../src/context.ts';
import { closeDeps, createLogger, openDeps } from '../../src/deps.ts';
import {
  advanceSigningKeys,
  ensureSigningKey,
  listSigningKeys,
  loadSigningKeys,
  PUBLICATION_MARGIN_MS,
  publicKeysForVerification,
  REMOVAL_LEEWAY_MS,
  rotateSigningKeys,
  signWithCurrentKey,
} from '../../src/signing/signing-keys.ts';
import { cli } from '../helpers/cli.ts';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';
import { TEST_SECRET } from '../helpers/server.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const MINUTE = 60_000;
const T0 = new Date('2026-12-01T00:00:00.000Z');

let database: TestDatabase;
let deps: Deps;
let clock: number;
const at = (ms: number) => (clock = T0.getTime() + ms);

before(async () => {
  database = await testDatabase();
  const env = {
    LATCHKEY_SECRET: TEST_SECRET,
    LATCHKEY_DATA_DIR: database.dataDir,
    NODE_ENV: 'test',
    LATCHKEY_ACCESS_TOKEN_TTL: '10m',
    LATCHKEY_JWKS_CACHE_TTL: '1h',
    LATCHKEY_SIGNING_ROTATION: '30d',
    ...(database.url ? { DATABASE_URL: database.url } : {}),
  };
  deps = await openDeps(loadConfig(env), createLogger({ LOG_LEVEL: 'silent' }));
  deps.now = () => new Date(clock);
});
after(async () => {
  await closeDeps(deps);
  await database.drop();
});
beforeEach(async () => {
  // Each case starts from a fresh first key at T0.
  await deps.prisma.signingKey.deleteMany();
  at(0);
});

const states = async () => Object.fromEntries((await deps.prisma.signingKey.findMany()).map((row) => [row.kid, row.state]));
const publishedKids = async () => (await publicKeysForVerification(deps)).keys.map((key) => key.kid).sort();

describe('signing keys: the schedule, under an injected clock', () => {
  it('creates exactly one first key, current at once, however many nodes start together', async () => {
    await Promise.all([ensureSigningKey(deps), ensureSigningKey(deps), ensureSigningKey(deps)]);
    const rows = await deps.prisma.signingKey.findMany();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.state, 'current');
    assert.equal(rows[0]!.alg, 'ES256');
    assert.deepEqual(rows[0]!.activatesAt, T0);
  });

  it('publishes a successor after the rotation period, lets it sign after the pre-publication window, removes the old key once its tokens expired', async () => {
    await ensureSigningKey(deps);
    const first = (await loadSigningKeys(deps)).current.kid;

    // Nothing due before the period has passed; the schedule knows when to look again.
    at(30 * DAY - 1);
    const idle = await advanceSigningKeys(deps);
    assert.deepEqual(idle.changes, []);
    assert.deepEqual(idle.nextDueAt, new Date(T0.getTime() + 30 * DAY));

    // The period has passed: a `next` key, published (in JWKS) but not signing.
    at(30 * DAY);
    const created = await advanceSigningKeys(deps);
    assert.equal(created.changes.length, 1);
    assert.equal(created.changes[0]!.event, 'created');
    const second = created.changes[0]!.kid;
    assert.deepEqual(await states(), { [first]: 'current', [second]: 'next' });
    const activatesAt = new Date(T0.getTime() + 30 * DAY + HOUR + PUBLICATION_MARGIN_MS);
    assert.deepEqual(created.nextDueAt, activatesAt);
    assert.deepEqual(await publishedKids(), [first, second].sort());
    const set = await loadSigningKeys(deps);
    assert.equal(set.current.kid, first, 'a next key does not sign');
    assert.deepEqual(set.published.map((key) => key.kid), [first, second]);

    // Still inside the window: nothing changes, however often the timer fires.
    at(30 * DAY + HOUR + PUBLICATION_MARGIN_MS - 1);
    assert.deepEqual((await advanceSigningKeys(deps)).changes, []);

    // Window over: the successor signs, the first key retires but stays published.
    at(30 * DAY + HOUR + PUBLICATION_MARGIN_MS);
    const switched = await advanceSigningKeys(deps);
    assert.deepEqual(switched.changes.map((change) => change.event).sort(), ['activated', 'retired']);
    assert.deepEqual(await states(), { [first]: 'retired', [second]: 'current' });
    assert.equal((await loadSigningKeys(deps)).current.kid, second);
    assert.deepEqual(await publishedKids(), [first, second].sort());
    const retired = await deps.prisma.signingKey.findUniqueOrThrow({ where: { kid: first } });
    // Retired + access-token lifetime + leeway: the last token it signed has expired by then.
    assert.equal(retired.removesAt!.getTime() - retired.retiredAt!.getTime(), 10 * MINUTE + REMOVAL_LEEWAY_MS);
    assert.deepEqual(switched.nextDueAt, retired.removesAt);

    // Its tokens have all expired: unpublished, private part wiped, public JWK kept.
    at(30 * DAY + HOUR + PUBLICATION_MARGIN_MS + 10 * MINUTE + REMOVAL_LEEWAY_MS);
    const removed = await advanceSigningKeys(deps);
    assert.deepEqual(removed.changes, [{ kid: first, event: 'removed' }]);
    const row = await deps.prisma.signingKey.findUniqueOrThrow({ where: { kid: first } });
    assert.equal(row.state, 'removed');
    assert.equal(row.privateJwkEncrypted, null);
    assert.equal((row.publicJwk as { kid: string }).kid, first);
    assert.equal('d' in (row.publicJwk as object), false);
    assert.deepEqual(await publishedKids(), [second]);
    assert.deepEqual((await publicKeysForVerification(deps, { includeRemoved: true })).keys.map((key) => key.kid).sort(), [first, second].sort());
    // The next rotation is due one period after the successor began to sign.
    assert.deepEqual(removed.nextDueAt, new Date(T0.getTime() + 60 * DAY + HOUR + PUBLICATION_MARGIN_MS));

    // Every step is audited by the system, and the chain holds.
    const events = await deps.prisma.auditEvent.findMany({ where: { subjectType: 'signing_key', subjectId: { in: [first, second] } }, orderBy: { seq: 'asc' } });
    assert.deepEqual(
      events.map((event) => `${event.type} ${event.subjectId === first ? 'first' : 'second'} ${event.actorType}`),
      ['signing_key.created first system', 'signing_key.created second system', 'signing_key.retired first system', 'signing_key.activated second system', 'signing_key.removed first system'],
    );
    for (const event of events) assert.doesNotMatch(JSON.stringify(event.data), /"d"|private/i);
    assert.equal((await verifyAuditChain(deps.prisma)).ok, true);
  });

  it('makes each change once when several nodes run the schedule at the same moment', async () => {
    await ensureSigningKey(deps);
    at(30 * DAY);
    const results = await Promise.all([advanceSigningKeys(deps), advanceSigningKeys(deps), advanceSigningKeys(deps)]);
    assert.equal(results.flatMap((result) => result.changes).length, 1);
    assert.equal(await deps.prisma.signingKey.count({ where: { state: 'next' } }), 1);
    at(30 * DAY + HOUR + PUBLICATION_MARGIN_MS);
    const switched = await Promise.all([advanceSigningKeys(deps), advanceSigningKeys(deps)]);
    assert.deepEqual(switched.flatMap((result) => result.changes.map((change) => change.event)).sort(), ['activated', 'retired']);
    assert.equal(await deps.prisma.signingKey.count({ where: { state: 'current' } }), 1);
  });
});

describe('signing keys: on demand', () => {
  it('rotate publishes a next key that signs after the window; a second rotate says one is under way', async () => {
    await ensureSigningKey(deps);
    const first = (await loadSigningKeys(deps)).current.kid;
    at(5 * DAY);
    const rotated = await rotateSigningKeys(deps, { type: 'cli', id: 'operator' });
    assert.equal(rotated.state, 'next');
    assert.equal(rotated.replaces, first);
    assert.deepEqual(rotated.activatesAt, new Date(clock + HOUR + PUBLICATION_MARGIN_MS));
    assert.equal((await loadSigningKeys(deps)).current.kid, first);

    await assert.rejects(rotateSigningKeys(deps, { type: 'cli' }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'conflict');
      assert.match(error.message, new RegExp(`already under way: key ${rotated.kid} is published and becomes current at ${rotated.activatesAt.toISOString()}`));
      return true;
    });
    assert.equal(await deps.prisma.signingKey.count(), 2, 'no second next key');
    const audit = await deps.prisma.auditEvent.findFirstOrThrow({ where: { type: 'signing_key.created', subjectId: rotated.kid } });
    assert.equal(audit.actorType, 'cli');
    assert.equal(audit.actorId, 'operator');

    // The admin screen's list: the current key names when it retires (when the next one signs).
    const list = await listSigningKeys(deps);
    assert.deepEqual(
      list.map((key) => [key.kid, key.state, key.retiresAt?.toISOString() ?? null]),
      [
        [rotated.kid, 'next', null],
        [first, 'current', rotated.activatesAt.toISOString()],
      ],
    );
  });

  it('`latchkey signing rotate` and `signing list` print one JSON object; a rotation under way exits 1 with one line', async () => {
    await ensureSigningKey(deps);
    const rotated = await cli({ deps }, ['signing', 'rotate', '--json']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const body = rotated.json();
    assert.deepEqual(Object.keys(body).sort(), ['activates_at', 'alg', 'created_at', 'kid', 'replaces', 'state']);
    assert.equal(body.state, 'next');

    const again = await cli({ deps }, ['signing', 'rotate', '--json']);
    assert.equal(again.code, 1);
    assert.equal(again.stdout, '');
    assert.match(again.stderr, /^latchkey: a rotation is already under way: key \S+ is published and becomes current at \S+\n$/);

    const listed = await cli({ deps }, ['signing', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const { keys } = listed.json<{ keys: Record<string, string | null>[] }>();
    assert.deepEqual(keys.map((key) => key.state), ['next', 'current']);
    assert.deepEqual(Object.keys(keys[0]!).sort(), ['activates_at', 'alg', 'created_at', 'kid', 'removes_at', 'retires_at', 'state']);
    assert.equal(keys[0]!.kid, body.kid);

    const extra = await cli({ deps }, ['signing', 'rotate', 'now', '--json']);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /usage: latchkey signing rotate/);
  });

  it('signWithCurrentKey signs a compact JWS that publicKeysForVerification verifies, kid in the header', async () => {
    await ensureSigningKey(deps);
    const current = (await loadSigningKeys(deps)).current.kid;
    const jws = await signWithCurrentKey(deps, { seq: '42', hash: 'ab'.repeat(32) }, { typ: 'checkpoint+jws' });
    assert.deepEqual(decodeProtectedHeader(jws), { alg: 'ES256', kid: current, typ: 'checkpoint+jws' });
    const { payload } = await compactVerify(jws, createLocalJWKSet(await publicKeysForVerification(deps)));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(payload)), { seq: '42', hash: 'ab'.repeat(32) });
  });
});
