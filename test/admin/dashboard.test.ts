import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cachedDashboardFigures, dashboardFigures, FIGURES_FRESH_MS } from '../../src/admin/dashboard.ts';
import { searchEverything } from '../../src/admin/search.ts';
import { cliJson } from '../helpers/cli.ts';
import { createClient, createScope } from '../helpers/factories.ts';
import { accessToken, introspectAs } from '../helpers/oauth.ts';
import { signUpAndSignIn } from '../helpers/portal.ts';
import { discover, rememberSecret, startTestServer, type TestServer } from '../helpers/server.ts';

// The admin dashboard's figures (issue 8 §1.2), each made to move by a real action, and the
// per-node cache under the injectable clock; and search's bounds.
let server: TestServer;
let scope: string;

before(async () => {
  server = await startTestServer();
  scope = await createScope(server);
});
after(() => server?.close());

describe('dashboard figures', () => {
  it('count developers, teams, applications, live and expiring keys, tokens today, pending requests, failed checks and alerts', async () => {
    const empty = await dashboardFigures(server.deps);
    const developer = await signUpAndSignIn(server, null, 'figures-dev@example.test');
    const gated = await createScope(server, { requiresApproval: true });
    assert.equal((await developer.postForm('/portal/keys/new', '/portal/keys', { name: 'asks', scopes: [gated], expires: '90d' })).status, 303, 'a pending request');
    const app = await createClient(server, { scopes: [scope] });
    const live = await cliJson<{ id: string; key: string }>(server, ['key', 'create', '--name', 'live', '--scopes', scope]);
    const soon = await cliJson<{ id: string; key: string }>(server, ['key', 'create', '--name', 'soon', '--scopes', scope, '--expires-in', '3d']);
    const gone = await cliJson<{ id: string; key: string }>(server, ['key', 'create', '--name', 'gone', '--scopes', scope]);
    for (const k of [live, soon, gone]) rememberSecret(k.key);
    await cliJson(server, ['key', 'revoke', gone.id, '--reason', 'test']);
    const meta = await discover(server);
    rememberSecret(await accessToken(meta.token_endpoint, app, { scope }));
    // A check of the revoked key fails (api_key.check_failed).
    assert.equal((await introspectAs(meta.introspection_endpoint, app, gone.key)).body.active, false);
    await server.deps.audit.record({ type: 'alerts.not_an_alert', actorType: 'system' });
    await server.deps.audit.record({ type: 'alert.unusual_volume', actorType: 'system', subjectType: 'api_key', subjectId: live.id, data: { checks: 1000 } });

    const f = await dashboardFigures(server.deps);
    assert.equal(f.developers - empty.developers, 1);
    assert.equal(f.teams - empty.teams, 1, 'the personal team');
    assert.equal(f.applications - empty.applications, 1);
    assert.equal(f.activeKeys - empty.activeKeys, 2, 'live and soon, not the revoked one');
    assert.equal(f.expiringKeys - empty.expiringKeys, 1, 'soon');
    assert.equal(f.tokensToday - empty.tokensToday, 1);
    assert.equal(f.pendingRequests - empty.pendingRequests, 1);
    assert.equal(f.failedChecks - empty.failedChecks, 1);
    assert.equal(f.alerts.length, 1);
    assert.equal(f.alerts[0]!.type, 'alert.unusual_volume');
    assert.equal(f.alerts[0]!.subjectId, live.id);
  });

  it('are served from the node’s cache for 30 s, then refreshed while the old ones are shown', async () => {
    const realNow = server.deps.now;
    let offset = 0;
    server.deps.now = () => new Date(realNow().getTime() + offset);
    try {
      offset = 10 * FIGURES_FRESH_MS; // past anything an earlier test cached
      await cachedDashboardFigures(server.deps);
      const first = await cachedDashboardFigures(server.deps);
      await cliJson(server, ['scope', 'create', 'dash-extra', '--description', 'x']);
      await createClient(server, { scopes: [scope] });
      assert.equal((await cachedDashboardFigures(server.deps)).applications, first.applications, 'within 30 s: the same figures');
      offset += FIGURES_FRESH_MS + 1;
      const stale = await cachedDashboardFigures(server.deps);
      assert.equal(stale.applications, first.applications, 'stale ones are shown while one read refreshes them');
      let fresh = stale;
      for (let i = 0; i < 100 && fresh.applications === first.applications; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        fresh = await cachedDashboardFigures(server.deps);
      }
      assert.equal(fresh.applications, first.applications + 1, 'then the refreshed ones');
    } finally {
      server.deps.now = realNow;
    }
  });
});

describe('search', () => {
  it('bounds each kind to ten, says there are more, and finds an exact id first', async () => {
    const made: string[] = [];
    for (let i = 0; i < 12; i++) made.push((await cliJson<{ id: string }>(server, ['key', 'create', '--name', `Batch ${String(i).padStart(2, '0')}`, '--scopes', scope])).id);
    const results = await searchEverything(server.deps, 'batch');
    assert.equal(results.keys.rows.length, 10);
    assert.equal(results.keys.more, true);
    assert.deepEqual(results.keys.rows.map((k) => k.name), [...Array(10).keys()].map((i) => `Batch ${String(i).padStart(2, '0')}`), 'in name order');
    const byId = await searchEverything(server.deps, made[11]!);
    assert.equal(byId.keys.rows[0]!.id, made[11]);
    assert.equal(byId.keys.more, false);
  });

  it('finds nothing for text that is only wildcards, and never fails on odd input', async () => {
    for (const q of ['%', '_', '\\', "'; DROP TABLE api_key; --", 'ü'.repeat(300), '@', 'lk_', 'lkc_']) {
      const results = await searchEverything(server.deps, q);
      const total = results.keys.rows.length + results.applications.rows.length + results.developers.rows.length + results.teams.rows.length;
      if (['%', '_', '\\', '@', 'lk_', 'lkc_'].includes(q)) assert.equal(total, 0, `“${q}” matches nothing`);
    }
    assert.ok(await server.deps.prisma.apiKey.count());
  });
});
