import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ConfigError, configWarnings, loadConfig } from '../../src/config.ts';

const BIN = fileURLToPath(new URL('../../bin/latchkey.mjs', import.meta.url));

describe('configuration', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({});
    assert.equal(config.PORT, 8080);
    assert.equal(config.LATCHKEY_ISSUER, 'http://localhost:8080');
    assert.equal(config.LATCHKEY_DEFAULT_AUDIENCE, 'http://localhost:8080');
    assert.equal(config.LATCHKEY_DATA_DIR, './.latchkey');
    assert.equal(config.LATCHKEY_ACCESS_TOKEN_TTL, 600_000);
    assert.equal(config.DATABASE_URL, undefined);
    assert.equal(config.DATABASE_TIMEOUT, 5_000);
  });

  it('reports one line per bad variable', () => {
    const bad = { PORT: 'eighty', DATABASE_URL: 'mysql://x', LATCHKEY_SECRET: 'short', LATCHKEY_ACCESS_TOKEN_TTL: '10 minutes', LATCHKEY_ISSUER: 'ftp://x' };
    assert.throws(
      () => loadConfig(bad),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        const lines = error.message.split('\n');
        assert.equal(lines.length, Object.keys(bad).length, error.message);
        for (const name of Object.keys(bad)) assert.ok(lines.some((line) => line.startsWith(`invalid ${name}:`)), name);
        return true;
      },
    );
  });

  it('refuses to start in production without a secret and an issuer', () => {
    assert.throws(() => loadConfig({ NODE_ENV: 'production', LATCHKEY_ISSUER: 'https://auth.example.test' }), /LATCHKEY_SECRET/);
    assert.throws(() => loadConfig({ NODE_ENV: 'production', LATCHKEY_SECRET: 'x'.repeat(40) }), /LATCHKEY_ISSUER/);
  });

  it('reads the audit checkpoint cadence, and a migration URL only beside DATABASE_URL', () => {
    const defaults = loadConfig({});
    assert.equal(defaults.LATCHKEY_AUDIT_CHECKPOINT_EVENTS, 1000);
    assert.equal(defaults.LATCHKEY_AUDIT_CHECKPOINT_INTERVAL, 300_000);
    const set = loadConfig({ LATCHKEY_AUDIT_CHECKPOINT_EVENTS: '50', LATCHKEY_AUDIT_CHECKPOINT_INTERVAL: '1h' });
    assert.equal(set.LATCHKEY_AUDIT_CHECKPOINT_EVENTS, 50);
    assert.equal(set.LATCHKEY_AUDIT_CHECKPOINT_INTERVAL, 3_600_000);
    assert.throws(() => loadConfig({ LATCHKEY_AUDIT_CHECKPOINT_EVENTS: '0' }), /invalid LATCHKEY_AUDIT_CHECKPOINT_EVENTS:/);
    assert.throws(() => loadConfig({ LATCHKEY_AUDIT_CHECKPOINT_INTERVAL: 'often' }), /invalid LATCHKEY_AUDIT_CHECKPOINT_INTERVAL:/);
    assert.throws(() => loadConfig({ DATABASE_MIGRATION_URL: 'postgresql://owner@db/latchkey' }), /invalid DATABASE_MIGRATION_URL: only used with DATABASE_URL/);
    const both = loadConfig({ DATABASE_URL: 'postgresql://app@db/latchkey', DATABASE_MIGRATION_URL: 'postgresql://owner@db/latchkey' });
    assert.equal(both.DATABASE_MIGRATION_URL, 'postgresql://owner@db/latchkey');
  });

  it('reads the database timeout as a positive duration', () => {
    assert.equal(loadConfig({ DATABASE_TIMEOUT: '30s' }).DATABASE_TIMEOUT, 30_000);
    for (const bad of ['0s', '5', 'forever', '11m', '30d']) assert.throws(() => loadConfig({ DATABASE_TIMEOUT: bad }), /invalid DATABASE_TIMEOUT:/, bad);
  });

  it('stops the process at start with one clear line', () => {
    const result = spawnSync(process.execPath, [BIN, 'serve'], { env: { PATH: process.env.PATH, PORT: 'eighty' }, encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, 1);
    const lines = result.stderr.split('\n').filter(Boolean);
    assert.deepEqual(lines, ['latchkey: invalid PORT: Invalid input: expected number, received NaN']);
    assert.equal(result.stdout, '');
  });
});

describe('configWarnings', () => {
  it('an http:// issuer in production is a warning, https:// and development are not', () => {
    const production = { NODE_ENV: 'production', LATCHKEY_SECRET: 'x'.repeat(40) };
    assert.match(configWarnings(loadConfig({ ...production, LATCHKEY_ISSUER: 'http://auth.example.test' })).join('\n'), /LATCHKEY_ISSUER is http:\/\/ in production/);
    assert.deepEqual(configWarnings(loadConfig({ ...production, LATCHKEY_ISSUER: 'https://auth.example.test' })), []);
    assert.deepEqual(configWarnings(loadConfig({})), []);
  });
});


describe('self-protection settings (issue 9 §1.3)', () => {
  it('limits are N/DURATION, with generous defaults', () => {
    const config = loadConfig({});
    assert.deepEqual(config.LATCHKEY_LIMIT_REQUESTS, { limit: 50000, windowMs: 1000 });
    assert.deepEqual(config.LATCHKEY_LIMIT_FAILURES, { limit: 100, windowMs: 60_000 });
    assert.equal(config.LATCHKEY_METRICS_TOKEN, undefined);
    assert.equal(config.LATCHKEY_JWKS_URI_ALLOW_PRIVATE, false);
    assert.deepEqual(loadConfig({ LATCHKEY_LIMIT_FAILURES: '5/10s' }).LATCHKEY_LIMIT_FAILURES, { limit: 5, windowMs: 10_000 });
  });

  it('bad values are one line each', () => {
    for (const [name, value] of [
      ['LATCHKEY_LIMIT_REQUESTS', '100'],
      ['LATCHKEY_LIMIT_REQUESTS', '0/1s'],
      ['LATCHKEY_LIMIT_FAILURES', 'ten/1m'],
      ['LATCHKEY_LIMIT_FAILURES', '10/1 minute'],
      ['LATCHKEY_ALERT_BURST', '5/0s'],
      ['LATCHKEY_ALERT_BURST', '5/31d'],
      ['LATCHKEY_METRICS_TOKEN', 'short'],
      ['LATCHKEY_JWKS_URI_ALLOW_PRIVATE', 'yes'],
    ]) {
      assert.throws(() => loadConfig({ [name!]: value }), (error: unknown) => error instanceof ConfigError && error.message.startsWith(`invalid ${name}:`) && !error.message.includes('\n'), `${name}=${value}`);
    }
  });

  it('private jwks_uri targets allowed in production are a warning', () => {
    const production = { NODE_ENV: 'production', LATCHKEY_SECRET: 'x'.repeat(40), LATCHKEY_ISSUER: 'https://auth.example.test' };
    assert.match(configWarnings(loadConfig({ ...production, LATCHKEY_JWKS_URI_ALLOW_PRIVATE: 'true' })).join('\n'), /LATCHKEY_JWKS_URI_ALLOW_PRIVATE/);
  });
});
