import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { authAs, introspectAs, postForm } from '../helpers/oauth.ts';
import { rememberSecret, startTestServer, untilCached, type TestServer } from '../helpers/server.ts';
import { verifyAs } from '../helpers/verify.ts';

// Issue 9 §1.8 / §2 Metrics: /metrics parses as Prometheus text, and its counters move with
// the requests that should move them.
const API = 'https://api.example.test';

let server: TestServer;
let gateway: CreatedClient;
let key: { id: string; key: string };

before(async () => {
  server = await startTestServer();
  const scope = await createScope(server);
  gateway = await createClient(server, { scopes: [scope], audiences: [API] });
  key = await cliJson(server, ['key', 'create', '--name', 'metered', '--scopes', scope, '--audience', API]);
  rememberSecret(key.key);
});

after(async () => {
  await server?.close();
});

async function scrape(): Promise<string> {
  const response = await fetch(`${server.url}/metrics`);
  assert.equal(response.status, 200);
  return response.text();
}

// Text format 0.0.4: a sample is `name{label="value",…} value [timestamp]`.
const LABEL = String.raw`[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"`;
const SAMPLE = new RegExp(String.raw`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:${LABEL}(?:,${LABEL})*)?\})? (NaN|[+-]?Inf|[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(?: -?[0-9]+)?$`);
const COMMENT = /^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$/;

/** The value of one series (exact name and labels as rendered), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics', () => {
  test('every line is a comment or a sample, and every sample has a declared type', async () => {
    const text = await scrape();
    const types = new Map<string, string>();
    for (const line of text.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('#')) {
        assert.match(line, COMMENT);
        const type = /^# TYPE (\S+) (\S+)$/.exec(line);
        if (type) types.set(type[1]!, type[2]!);
        continue;
      }
      const match = SAMPLE.exec(line);
      assert.ok(match, `not a Prometheus sample: ${line}`);
      const name = match[1]!;
      const base = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(types.has(base), `no # TYPE for ${name}`);
    }
    for (const [name, type] of [
      ['latchkey_http_requests_total', 'counter'],
      ['latchkey_http_request_duration_seconds', 'histogram'],
      ['latchkey_tokens_issued_total', 'counter'],
      ['latchkey_introspections_total', 'counter'],
      ['latchkey_key_verifications_total', 'counter'],
      ['latchkey_credential_cache_hits_total', 'counter'],
      ['latchkey_credential_cache_misses_total', 'counter'],
      ['latchkey_limit_rejections_total', 'counter'],
      ['latchkey_audit_write_seconds', 'histogram'],
      ['latchkey_audit_batch_size', 'histogram'],
      ['latchkey_redis_up', 'gauge'],
      ['latchkey_database_up', 'gauge'],
      ['latchkey_alerts_raised_total', 'counter'],
      ['latchkey_usage_dropped_total', 'counter'],
    ]) {
      assert.equal(types.get(name!), type, `${name} is a ${type}`);
    }
    if (server.database.kind === 'postgres') {
      for (const name of ['latchkey_db_pool_connections', 'latchkey_db_pool_idle_connections', 'latchkey_db_pool_waiting_requests']) assert.equal(types.get(name), 'gauge', name);
      assert.ok(sample(text, 'latchkey_db_pool_connections')! >= 1, 'the pool holds a connection');
    }
    assert.equal(sample(text, 'latchkey_database_up'), 1);
  });

  test('counters move with requests: tokens issued, introspection outcomes, verifications, cache hits, audit batches', async () => {
    const before = await scrape();
    const value = (text: string, series: string) => sample(text, series) ?? 0;

    const token = await postForm(`${server.url}/token`, { grant_type: 'client_credentials' }, authAs(gateway));
    assert.equal(token.status, 200, token.text);
    const refused = await postForm(`${server.url}/token`, { grant_type: 'client_credentials' }, authAs({ ...gateway, client_secret: 'wrong' }));
    assert.equal(refused.status, 401);

    // The key's record is cached after its first use (once the listener is up): then a hit.
    await untilCached(server, `key:${key.id}`, () => introspectAs(`${server.url}/introspect`, gateway, key.key), 'the API key');
    const active = await introspectAs(`${server.url}/introspect`, gateway, key.key);
    assert.equal(active.body.active, true);
    const inactive = await introspectAs(`${server.url}/introspect`, gateway, 'not-a-token-at-all');
    assert.equal(inactive.body.active, false);
    assert.equal((await verifyAs(server.url, gateway, { key: key.key })).body.code, 'VALID');
    server.deps.metrics!.alert('spike');

    const after = await scrape();
    const moved = (series: string) => value(after, series) - value(before, series);
    assert.equal(moved('latchkey_tokens_issued_total'), 1, 'one token issued (the refused request is not one)');
    assert.ok(moved('latchkey_introspections_total{result="active"}') >= 2, 'active introspections');
    assert.equal(moved('latchkey_introspections_total{result="inactive"}'), 1);
    assert.equal(moved('latchkey_key_verifications_total{code="VALID"}'), 1);
    assert.ok(moved('latchkey_credential_cache_hits_total') >= 1, 'the cached key was a hit');
    assert.ok(moved('latchkey_credential_cache_misses_total') >= 0);
    assert.ok(moved('latchkey_audit_batch_size_count') >= 1, 'the token.issued event was committed in a batch');
    assert.ok(moved('latchkey_audit_write_seconds_count') >= 1);
    assert.ok(moved('latchkey_audit_batch_size_sum') >= 1);
    assert.equal(moved('latchkey_alerts_raised_total{kind="spike"}'), 1);
    assert.ok(moved('latchkey_http_requests_total{route="token",status="200"}') >= 1);
  });

  test('the Grafana dashboard (docs/) is valid JSON and queries only series that exist', async () => {
    const dashboard = JSON.parse(await readFile(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as {
      templating: { list: { name: string; type: string; query: unknown }[] };
      panels: { type: string; datasource?: { uid: string }; targets?: { expr: string }[] }[];
    };
    assert.ok(dashboard.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource' && v.query === 'prometheus'), 'a Prometheus datasource variable');
    const text = await scrape();
    const queried = new Set<string>();
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      assert.equal(panel.datasource?.uid, '${datasource}');
      for (const target of panel.targets ?? []) for (const name of target.expr.match(/\blatchkey_[a-z_]+/g) ?? []) queried.add(name.replace(/_(bucket|sum|count)$/, ''));
    }
    assert.ok(queried.size >= 15, `${queried.size} series`);
    for (const name of queried) {
      if (name.startsWith('latchkey_db_pool_') && server.database.kind !== 'postgres') continue;
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is on /metrics`);
    }
  });
});
