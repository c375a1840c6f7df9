import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { loadConfig } from '../../src/config.ts';
import type { Deps } from '../../src/context.ts';
import { closeDeps, createLogger, openDeps } from '../../src/deps.ts';
import { cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { introspectAs, postForm, authAs } from '../helpers/oauth.ts';
import { ownPostgres, ownPostgresSkip, type OwnPostgres } from '../helpers/postgres.ts';
import { spawnServer, type ServerProcess } from '../helpers/processes.ts';
import { assertNoSecretsIn, eventually, rememberSecret, TEST_SECRET } from '../helpers/server.ts';
import { verifyAs } from '../helpers/verify.ts';

// Issue 9 §1.9 / §2 Outage: a Postgres of the test's own is stopped (immediate shutdown, as a
// crash) under load and started again. Credential endpoints answer 503 with Retry-After and
// never 500; no revoked key is ever answered active; the node recovers by itself within
// seconds; nothing committed is lost (every token answered 200 has its audit event, and the
// chain verifies); the log says so once per transition, not once per request.
const API = 'https://api.example.test';

type Kind = 'token' | 'introspect live' | 'introspect revoked' | 'verify live' | 'verify revoked' | 'revoke';
interface Sample {
  kind: Kind;
  sentAt: number;
  status: number;
  retryAfter: string | null;
  contentType: string;
  body: Record<string, any>;
  text: string;
}

let pg: OwnPostgres;
let node: ServerProcess;
let gateway: CreatedClient;
let live: string;
let revoked: string;

/** The operator's commands, in this process, on the test's Postgres. */
async function withDeps<T>(fn: (deps: Deps) => Promise<T>): Promise<T> {
  const deps = await openDeps(loadConfig({ DATABASE_URL: pg.url, LATCHKEY_SECRET: TEST_SECRET, NODE_ENV: 'test' }), createLogger({ LOG_LEVEL: 'warn' }));
  try {
    return await fn(deps);
  } finally {
    await closeDeps(deps);
  }
}

before(async () => {
  if (ownPostgresSkip) return;
  pg = await ownPostgres();
  await withDeps(async (deps) => {
    const server = { deps };
    const scope = await createScope(server);
    gateway = await createClient(server, { scopes: [scope], audiences: [API] });
    const make = async (name: string) => cliJson<{ id: string; key: string }>(server, ['key', 'create', '--name', name, '--scopes', scope, '--audience', API]);
    const kept = await make('live');
    const gone = await make('revoked');
    live = kept.key;
    revoked = gone.key;
    rememberSecret(live);
    rememberSecret(revoked);
    await cliJson(server, ['key', 'revoke', gone.id, '--reason', 'revoked before the outage']);
  });
  // Checks of the revoked key are failed checks: self-protection would throttle this test's load.
  node = await spawnServer(pg.url, undefined, { LATCHKEY_LIMIT_FAILURES: '1000000/1m' });
});

after(async () => {
  await node?.stop();
  await pg?.destroy();
});

async function request(kind: Kind): Promise<Sample> {
  const sentAt = Date.now();
  const answer =
    kind === 'token'
      ? await postForm(`${node.url}/token`, { grant_type: 'client_credentials' }, authAs(gateway))
      : kind === 'revoke'
        ? // RFC 7009 §2.2: an unknown token is a 200 too; still, the caller must be authenticated.
          await postForm(`${node.url}/revoke`, { token: 'an-unknown-token' }, authAs(gateway))
        : kind.startsWith('introspect')
        ? await introspectAs(`${node.url}/introspect`, gateway, kind.endsWith('live') ? live : revoked)
        : await verifyAs(node.url, gateway, { key: kind.endsWith('live') ? live : revoked });
  return { kind, sentAt, status: answer.status, retryAfter: answer.headers.get('retry-after'), contentType: answer.headers.get('content-type') ?? '', body: answer.body, text: answer.text };
}

/** One loop per kind, back to back (a short pause after a refusal), until stopped. */
function load(samples: Sample[]): () => Promise<void> {
  let running = true;
  const kinds: Kind[] = ['token', 'introspect live', 'introspect revoked', 'verify live', 'verify revoked', 'revoke'];
  const loops = kinds.map(async (kind) => {
    while (running) {
      const sample = await request(kind);
      samples.push(sample);
      if (sample.status !== 200) await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });
  return async () => {
    running = false;
    await Promise.all(loops);
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const readyz = () => fetch(`${node.url}/readyz`).then(async (r) => ({ status: r.status, retryAfter: r.headers.get('retry-after'), body: (await r.json()) as Record<string, unknown> }));

describe('a database outage under load', { skip: ownPostgresSkip }, () => {
  it('answers 503 with Retry-After (never 500, never a revoked key active), recovers by itself, and loses nothing committed', async () => {
    const samples: Sample[] = [];
    const stop = load(samples);
    await sleep(1_500);
    await pg.crash();
    const crashedAt = Date.now();
    await sleep(4_000);
    const down = await readyz();
    // Requests sent while pg_ctl starts it may already find it up.
    const restartingAt = Date.now();
    await pg.start();
    const restartedAt = Date.now();
    // Recovery within seconds: a token and a live key's introspection succeed again.
    await eventually(() => request('token'), (s) => s.status === 200, 10_000, 'token issuance did not recover');
    await eventually(() => request('introspect live'), (s) => s.status === 200 && s.body.active === true, 10_000, 'introspection did not recover');
    const recoveredAt = Date.now();
    await sleep(1_000);
    await stop();
    // The listener subscribed again: the node caches (and so answers from its cache) again.
    const hits = async () => Number(/^latchkey_credential_cache_hits_total (\S+)$/m.exec(await (await fetch(`${node.url}/metrics`)).text())?.[1]);
    const hitsBefore = await hits();
    await eventually(async () => (await request('introspect live'), hits()), (count) => count > hitsBefore, 10_000, 'the cache is not used again after the outage');

    assert.equal(down.status, 503, '/readyz fails while the database is down');
    assert.equal(down.retryAfter, '5');
    assert.equal(down.body.database, 'unreachable');
    assert.equal((await readyz()).status, 200, '/readyz recovers');

    const byKind = (kind: Kind) => samples.filter((s) => s.kind === kind);
    for (const kind of ['token', 'introspect live', 'verify live', 'revoke'] as Kind[]) {
      assert.ok(byKind(kind).some((s) => s.status === 200 && s.sentAt < crashedAt), `${kind} answered before the outage`);
      assert.ok(byKind(kind).some((s) => s.status === 200 && s.sentAt > restartedAt), `${kind} answered after the outage`);
    }
    for (const sample of samples) {
      // 200 or 503, nothing else: no 500, and no other refusal passed off as an answer.
      assert.ok(sample.status === 200 || sample.status === 503, `${sample.kind}: ${sample.status} ${sample.text}`);
      if (sample.status === 503) {
        assert.equal(sample.retryAfter, '5', `${sample.kind}: Retry-After`);
        assert.doesNotMatch(sample.text, /Prisma|ECONNREFUSED|\bat .+\(|57P01/, 'nothing internal');
        if (sample.kind.startsWith('verify')) {
          assert.match(sample.contentType, /^application\/problem\+json/);
          assert.equal(sample.body.error, 'temporarily_unavailable');
          assert.equal(sample.body.status, 503);
        } else {
          // RFC 6749-shaped, at /token as at /introspect.
          assert.match(sample.contentType, /^application\/json/);
          assert.equal(sample.body.error, 'temporarily_unavailable', `${sample.kind}: ${sample.text}`);
        }
      }
    }
    for (const sample of byKind('introspect revoked')) if (sample.status === 200) assert.equal(sample.body.active, false, 'a revoked key is never active');
    for (const sample of byKind('verify revoked')) if (sample.status === 200) assert.equal(sample.body.code, 'REVOKED', 'a revoked key is never valid');

    // Once the outage is noticed (the listener within a second), nothing is answered from a
    // cache that can no longer hear revocations: everything sent is a 503 until the restart.
    const outage = samples.filter((s) => s.sentAt > crashedAt + 1_500 && s.sentAt < restartingAt);
    for (const kind of ['token', 'introspect live', 'introspect revoked', 'verify live', 'verify revoked', 'revoke'] as Kind[]) {
      const during = outage.filter((s) => s.kind === kind);
      assert.ok(during.length > 0, `${kind} was tried during the outage`);
      assert.deepEqual([...new Set(during.map((s) => s.status))], [503], `${kind} during the outage`);
    }
    assert.ok(recoveredAt - restartedAt < 10_000);

    // Nothing committed is lost: every token answered 200 has its audit event, and the chain verifies.
    const issued = byKind('token').filter((s) => s.status === 200).map((s) => decodeJwt(s.body.access_token).jti!);
    await withDeps(async (deps) => {
      const events = await deps.prisma.auditEvent.findMany({ where: { type: 'token.issued', subjectId: { in: issued } }, select: { subjectId: true } });
      const audited = new Set(events.map((e) => e.subjectId));
      assert.deepEqual(issued.filter((jti) => !audited.has(jti)), [], 'tokens answered 200 without an audit event');
      const verified = await cliJson<{ ok: boolean }>({ deps }, ['audit', 'verify']);
      assert.equal(verified.ok, true, JSON.stringify(verified));
    });

    // The log: once per transition, not once per refused request; no stack of server errors.
    const lines = node
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string });
    const refused = samples.filter((s) => s.status === 503).length;
    assert.ok(refused > 20, `${refused} refusals`);
    assert.equal(lines.filter((l) => l.msg.startsWith('database unreachable')).length, 1, node.output());
    assert.equal(lines.filter((l) => l.msg === 'database reachable again').length, 1, node.output());
    assert.deepEqual(lines.filter((l) => l.level >= 50 && !l.msg.startsWith('database unreachable')), [], 'no error lines besides the outage');
    assert.ok(lines.length < 15, `a handful of lines for ${refused} refusals: ${node.output()}`);
    assertNoSecretsIn(node.output().split('\n').filter((line) => line.startsWith('{')).join('\n'));
  });
});
