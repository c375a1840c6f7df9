import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { cli, type CliResult } from '../helpers/cli.ts';
import { createScope } from '../helpers/factories.ts';
import { authAs, postForm } from '../helpers/oauth.ts';
import { discover, rememberSecret, startTestServer, TEST_SECRET, type TestServer } from '../helpers/server.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

let server: TestServer;
let scope: string;

before(async () => {
  server = await startTestServer();
  scope = await createScope(server);
});

after(async () => {
  await server?.close();
});

/** CLI contract: with --json, exactly one JSON object on stdout and nothing on stderr. */
function assertOneJsonObject(result: CliResult): Record<string, any> {
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  assert.ok(result.stdout.endsWith('\n'), 'stdout ends with a newline');
  assert.equal(result.stdout.trimEnd().split('\n').length, 1, `one line: ${result.stdout}`);
  const value = JSON.parse(result.stdout);
  assert.equal(typeof value, 'object');
  assert.ok(value !== null && !Array.isArray(value), 'an object');
  return value;
}

/** CLI contract: an error is one line on stderr, nothing on stdout, and a non-zero exit. */
function assertOneLineError(result: CliResult, pattern: RegExp) {
  assert.notEqual(result.code, 0);
  assert.equal(result.stdout, '');
  assert.ok(result.stderr.endsWith('\n'), `stderr ends with a newline: ${JSON.stringify(result.stderr)}`);
  assert.equal(result.stderr.trimEnd().split('\n').length, 1, `one line: ${JSON.stringify(result.stderr)}`);
  assert.match(result.stderr, /^latchkey: /);
  assert.match(result.stderr, pattern);
}

describe('cli --json', () => {
  test('scope create', async () => {
    const out = assertOneJsonObject(await cli(server, ['scope', 'create', 'orders:read', '--description', 'Read orders', '--json']));
    assert.deepEqual(out, { name: 'orders:read', description: 'Read orders', requires_approval: false });
  });

  test('client create, rotate-secret and revoke', async () => {
    const created = assertOneJsonObject(await cli(server, ['client', 'create', '--name', 'billing', '--scopes', scope, '--audience', 'https://api.example', '--json']));
    rememberSecret(created.client_secret);
    assert.match(created.client_id, /^lkc_[0-9A-Za-z]{22}$/);
    assert.match(created.client_secret, /^lks_[0-9A-Za-z]{43}$/);
    assert.deepEqual(created.scopes, [scope]);
    assert.deepEqual(created.audiences, ['https://api.example']);

    const rotated = assertOneJsonObject(await cli(server, ['client', 'rotate-secret', created.client_id, '--grace', '1h', '--json']));
    rememberSecret(rotated.client_secret);
    assert.deepEqual(Object.keys(rotated).sort(), ['client_id', 'client_secret', 'previous_expires_at']);
    assert.equal(rotated.client_id, created.client_id);
    assert.notEqual(rotated.client_secret, created.client_secret);
    const grace = Date.parse(rotated.previous_expires_at) - Date.now();
    assert.ok(grace > 3_500_000 && grace <= 3_600_000, `grace ${grace} ms`);

    const revoked = assertOneJsonObject(await cli(server, ['client', 'revoke', created.client_id, '--json']));
    assert.equal(revoked.client_id, created.client_id);
    assert.ok(!Number.isNaN(Date.parse(revoked.revoked_at)));
  });

  test('key create, rotate and revoke', async () => {
    const created = assertOneJsonObject(await cli(server, ['key', 'create', '--name', 'ci', '--scopes', scope, '--expires-in', '30d', '--json']));
    rememberSecret(created.key);
    assert.match(created.key, new RegExp(`^lk_${created.id}_[0-9A-Za-z]{49}$`));
    assert.deepEqual(created.scopes, [scope]);
    const ttl = Date.parse(created.expires_at) - Date.now();
    assert.ok(ttl > 29.9 * 86_400_000 && ttl <= 30 * 86_400_000, `expires in ${ttl} ms`);

    const rotated = assertOneJsonObject(await cli(server, ['key', 'rotate', created.id, '--grace', '24h', '--json']));
    rememberSecret(rotated.key);
    for (const field of ['id', 'key', 'scopes', 'expires_at', 'previous_expires_at']) assert.ok(field in rotated, field);
    assert.notEqual(rotated.id, created.id);

    const revoked = assertOneJsonObject(await cli(server, ['key', 'revoke', rotated.id, '--reason', 'test', '--json']));
    assert.equal(revoked.id, rotated.id);
  });

  test('key create and client create refuse a name a live credential of the same team already has', async () => {
    assert.equal((await cli(server, ['admin', 'create', '--email', 'names@example.test', '--password', 'correct horse battery', '--json'])).code, 0);
    const owner = ['--owner', 'names@example.test'];
    const key = assertOneJsonObject(await cli(server, ['key', 'create', '--name', 'deploy', '--scopes', scope, ...owner, '--json']));
    rememberSecret(key.key);
    const again = await cli(server, ['key', 'create', '--name', ' deploy ', '--scopes', scope, ...owner]);
    assert.equal(again.code, 1);
    assertOneLineError(again, /^latchkey: a live api key of this team is already named "deploy"$/m);
    assert.equal(await server.deps.prisma.apiKey.count({ where: { name: 'deploy' } }), 1);
    // A revoked key frees its name; a key of another owner (here: none) never collides.
    assertOneJsonObject(await cli(server, ['key', 'revoke', key.id, '--json']));
    rememberSecret(assertOneJsonObject(await cli(server, ['key', 'create', '--name', 'deploy', '--scopes', scope, ...owner, '--json'])).key);
    rememberSecret(assertOneJsonObject(await cli(server, ['key', 'create', '--name', 'deploy', '--scopes', scope, '--json'])).key);

    const client = assertOneJsonObject(await cli(server, ['client', 'create', '--name', 'deploy', '--scopes', scope, ...owner, '--json']));
    rememberSecret(client.client_secret);
    const twin = await cli(server, ['client', 'create', '--name', 'deploy', '--scopes', scope, ...owner]);
    assert.equal(twin.code, 1);
    assertOneLineError(twin, /^latchkey: a live application of this team is already named "deploy"$/m);
  });

  test('--name is at most 100 characters, as in the portal', async () => {
    assertOneLineError(await cli(server, ['key', 'create', '--name', 'n'.repeat(101), '--scopes', scope]), /^latchkey: --name must be 1 to 100 characters$/m);
  });

  test('audit verify, audit export and migrate', async () => {
    const verify = assertOneJsonObject(await cli(server, ['audit', 'verify', '--json']));
    assert.equal(verify.ok, true);
    assert.ok(verify.events > 0);
    const exported = assertOneJsonObject(await cli(server, ['audit', 'export', '--json']));
    // Every event, and last the export's own (written before the page is read).
    assert.ok(Array.isArray(exported.events) && exported.events.length === verify.events + 1);
    assert.equal(exported.events.at(-1).type, 'audit.exported');
    const migrated = assertOneJsonObject(await cli(server, ['migrate', '--json']));
    const { readdirSync } = await import('node:fs');
    const onDisk = readdirSync(new URL('../../prisma/migrations/', import.meta.url), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    assert.deepEqual(migrated, { status: 'up to date', migrations: onDisk });
  });

  test('audit export is itself audited: one audit.exported event by the cli user, with format and filters, never a secret', async () => {
    const key = assertOneJsonObject(await cli(server, ['key', 'create', '--name', 'exported', '--scopes', scope, '--json']));
    rememberSecret(key.key);
    const head = async () => (await server.deps.prisma.auditEvent.findFirstOrThrow({ orderBy: { seq: 'desc' }, select: { seq: true } })).seq;
    const exportedSince = async (seq: bigint) => server.deps.prisma.auditEvent.findMany({ where: { seq: { gt: seq } }, orderBy: { seq: 'asc' } });
    const env = { USER: 'operator' };
    const from = '2026-01-01T00:00:00.000Z';
    const forms: [string[], unknown][] = [
      [['--format', 'jsonl', '--type', 'api_key.created', '--subject-type', 'api_key', '--subject-id', key.id, '--from', from], { format: 'jsonl', filters: { type: ['api_key.created'], subjectType: 'api_key', subjectId: key.id, from } }],
      [['--format', 'csv', '--outcome', 'failure', '--actor-type', 'cli'], { format: 'csv', filters: { outcome: 'failure', actorType: 'cli' } }],
      [['--since', from, '--json'], { format: 'json', filters: { since: from } }],
    ];
    for (const [argv, data] of forms) {
      const start = await head();
      const result = await cli(server, ['audit', 'export', ...argv], env);
      assert.equal(result.code, 0, result.stderr);
      const events = await exportedSince(start);
      assert.equal(events.length, 1, argv.join(' '));
      const [event] = events;
      assert.deepEqual(
        { type: event!.type, actorType: event!.actorType, actorId: event!.actorId, subjectType: event!.subjectType, data: event!.data },
        { type: 'audit.exported', actorType: 'cli', actorId: 'operator', subjectType: 'audit_log', data },
      );
      assert.ok(!JSON.stringify(event!.data).includes(key.key.split('_').at(-1)), 'no secret in the event');
    }
    // A refused export (bad flags) leaves no event.
    const start = await head();
    assert.equal((await cli(server, ['audit', 'export', '--format', 'csv', '--from', 'yesterday'], env)).code, 2);
    assert.equal((await exportedSince(start)).length, 0);
  });

  test('audit export refuses to run, with one line and no output, when its event cannot be written', async () => {
    const record = server.deps.audit.record;
    server.deps.audit.record = () => Promise.reject(new Error('audit write failed'));
    try {
      for (const argv of [['--format', 'jsonl'], ['--json']]) {
        const result = await cli(server, ['audit', 'export', ...argv]);
        assertOneLineError(result, /^latchkey: /);
        assert.equal(result.code, 1);
      }
    } finally {
      server.deps.audit.record = record;
    }
  });

  test('without --json the output is "key: value" lines, not JSON', async () => {
    const result = await cli(server, ['audit', 'verify']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^ok: true\nevents: \d+\nhead_seq: \d+\nhead_hash: [0-9a-f]{64}\ncheckpoints: \d+\n$/);
  });
});

describe('cli errors', () => {
  const cases: { name: string; argv: () => string[]; code?: number; pattern: RegExp }[] = [
    { name: 'unknown command', argv: () => ['frobnicate'], code: 2, pattern: /unknown command/ },
    { name: 'unknown option', argv: () => ['client', 'create', '--name', 'x', '--scopes', scope, '--bogus'], code: 2, pattern: /^latchkey: unknown option --bogus \(usage: latchkey client create --name N/ },
    { name: 'option without its value', argv: () => ['key', 'create', '--scopes', scope, '--name'], code: 2, pattern: /^latchkey: --name needs a value \(usage: latchkey key create/ },
    { name: 'flag given a value', argv: () => ['scope', 'create', 'x', '--description', 'd', '--requires-approval=yes'], code: 2, pattern: /^latchkey: --requires-approval takes no value \(usage: latchkey scope create/ },
    { name: 'missing --name', argv: () => ['client', 'create', '--scopes', scope], code: 2, pattern: /--name is required/ },
    { name: 'missing --scopes', argv: () => ['key', 'create', '--name', 'x'], code: 2, pattern: /--scopes is required/ },
    { name: 'bad duration --grace 5x', argv: () => ['client', 'rotate-secret', 'lkc_AAAAAAAAAAAAAAAAAAAAAA', '--grace', '5x'], code: 2, pattern: /^latchkey: --grace must be a duration such as 24h \(90s, 15m, 24h, 30d\), not "5x"$/m },
    { name: 'bad duration --expires-in 10', argv: () => ['key', 'create', '--name', 'x', '--scopes', scope, '--expires-in', '10'], code: 2, pattern: /^latchkey: --expires-in must be a duration such as 30d/ },
    { name: 'zero duration --expires-in 0d', argv: () => ['key', 'create', '--name', 'x', '--scopes', scope, '--expires-in', '0d'], code: 2, pattern: /^latchkey: --expires-in must be a positive duration such as 30d$/m },
    { name: 'bad --audience', argv: () => ['key', 'create', '--name', 'x', '--scopes', scope, '--audience', 'ftp://api.example'], code: 2, pattern: /^latchkey: --audience must be an http\(s\) URL$/m },
    // Owners are teams or people who exist: a typo must not mint an account.
    { name: 'unknown --owner', argv: () => ['client', 'create', '--name', 'x', '--scopes', scope, '--owner', 'nobody@example.test'], code: 1, pattern: /^latchkey: owner nobody@example\.test is neither an existing account's email nor a team id$/m },
    { name: 'bad scope NAME', argv: () => ['scope', 'create', 'no spaces', '--description', 'd'], code: 2, pattern: /^latchkey: NAME must be a scope name/ },
    { name: 'unknown scope', argv: () => ['client', 'create', '--name', 'x', '--scopes', `${scope} nope:nothing`], code: 1, pattern: /unknown scope: nope:nothing/ },
    { name: 'missing positional', argv: () => ['client', 'revoke'], code: 2, pattern: /usage: latchkey client revoke ID/ },
    { name: 'unknown client', argv: () => ['client', 'revoke', 'lkc_AAAAAAAAAAAAAAAAAAAAAA'], code: 1, pattern: /client not found/ },
    { name: 'invalid --jwks', argv: () => ['client', 'create', '--name', 'x', '--scopes', scope, '--auth-method', 'private_key_jwt', '--jwks', '{nope'], code: 2, pattern: /--jwks must be valid JSON/ },
    { name: 'private key in --jwks', argv: () => ['client', 'create', '--name', 'x', '--scopes', scope, '--auth-method', 'private_key_jwt', '--jwks', '{"keys":[{"kty":"EC","d":"x"}]}'], code: 2, pattern: /public keys only/ },
    { name: 'bad auth method', argv: () => ['client', 'create', '--name', 'x', '--scopes', scope, '--auth-method', 'none'], code: 2, pattern: /^latchkey: --auth-method must be one of client_secret_basic, client_secret_post, private_key_jwt$/m },
    { name: 'duplicate scope', argv: () => ['scope', 'create', scope, '--description', 'again'], code: 1, pattern: /already exists/ },
    { name: '--after-seq beyond bigint', argv: () => ['audit', 'export', '--after-seq', '9999999999999999999'], code: 2, pattern: /--after-seq must be an event sequence number/ },
  ];
  for (const c of cases) {
    for (const json of [false, true]) {
      test(`${c.name}${json ? ' (--json)' : ''}: non-zero exit, one line on stderr, nothing on stdout`, async () => {
        const result = await cli(server, json ? [...c.argv(), '--json'] : c.argv());
        assertOneLineError(result, c.pattern);
        if (c.code !== undefined) assert.equal(result.code, c.code);
        // Spoken in flags, never in the services' field names or node's parseArgs wording.
        assert.doesNotMatch(result.stderr, /expiresInMs|audiences|ownerEmail|authMethod|jwksUri|Unknown option|argument missing/);
      });
    }
  }

  test('a failed command changes nothing', async () => {
    const before = await server.deps.prisma.oAuthClient.count();
    await cli(server, ['client', 'create', '--name', 'x', '--scopes', `${scope} nope:nothing`, '--json']);
    assert.equal(await server.deps.prisma.oAuthClient.count(), before);
  });
});

function runBin(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/latchkey.mjs', ...argv], { cwd: ROOT, env, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('bin/latchkey.mjs', () => {
  // The embedded database belongs to the in-process server: a second process can only reach it
  // through the control socket, so the real spawn runs against Postgres.
  const skip = process.env.DATABASE_URL ? false : 'needs DATABASE_URL (the embedded database is owned by the in-process server)';

  test('client create --json in a separate process, then the client works', { skip }, async () => {
    const env = { PATH: process.env.PATH, DATABASE_URL: server.database.url, LATCHKEY_SECRET: TEST_SECRET, LATCHKEY_ISSUER: server.issuer, NODE_ENV: 'test' };
    const result = await runBin(['client', 'create', '--name', 'spawned', '--scopes', scope, '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.equal(result.stdout.trimEnd().split('\n').length, 1, result.stdout);
    const created = JSON.parse(result.stdout);
    rememberSecret(created.client_secret);
    assert.match(created.client_id, /^lkc_/);
    assert.deepEqual(created.scopes, [scope]);

    const meta = await discover(server);
    const token = await postForm(meta.token_endpoint, { grant_type: 'client_credentials' }, authAs(created));
    assert.equal(token.status, 200, token.text);
    assert.equal(token.body.scope, scope);

    const bad = await runBin(['client', 'create', '--scopes', scope, '--json'], env);
    assert.equal(bad.code, 2);
    assert.equal(bad.stdout, '');
    assert.equal(bad.stderr, 'latchkey: --name is required\n');
  });

  const embedded = process.env.DATABASE_URL ? 'runs on the embedded database only' : false;
  test('on the embedded database, a second process is served through the control socket', { skip: embedded }, async () => {
    const env = { PATH: process.env.PATH, LATCHKEY_DATA_DIR: server.database.dataDir, LATCHKEY_SECRET: TEST_SECRET, NODE_ENV: 'test' };
    const result = await runBin(['client', 'create', '--name', 'forwarded', '--scopes', scope, '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const created = JSON.parse(result.stdout);
    rememberSecret(created.client_secret);
    const meta = await discover(server);
    const token = await postForm(meta.token_endpoint, { grant_type: 'client_credentials' }, authAs(created));
    assert.equal(token.status, 200, token.text);

    const bad = await runBin(['client', 'create', '--scopes', scope, '--json'], env);
    assert.equal(bad.code, 2);
    assert.equal(bad.stdout, '');
    assert.equal(bad.stderr, 'latchkey: --name is required\n');
  });
});
