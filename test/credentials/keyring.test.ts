import assert from 'node:assert/strict';
import { createHmac, hkdfSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { createKeyring } from '../../src/lib/keyring.ts';

const MASTER = 'keyring-test-master-secret-0123456789';

describe('keyring', () => {
  it('digests are HMAC-SHA-256 under the derived pepper, byte for byte', () => {
    const pepper = Buffer.from(hkdfSync('sha256', MASTER, 'latchkey', 'credential-digest-v1', 32));
    const keyring = createKeyring(MASTER);
    // Around the scratch buffer's size, multi-byte text, and long then short (buffer reuse).
    for (const message of ['', 'lks_abc', 'é ünïcode 🔑', 'x'.repeat(1000), '🔑'.repeat(170), '🔑'.repeat(171), 'é'.repeat(600), 'y'.repeat(5000), 'z']) {
      assert.deepEqual(Buffer.from(keyring.digest(message)), createHmac('sha256', pepper).update(message).digest(), message);
    }
  });

  it('matches only the right secret, against any of the given digests', () => {
    const keyring = createKeyring(MASTER);
    const current = keyring.digest('current');
    const previous = keyring.digest('previous');
    assert.equal(keyring.matches('current', current, previous), true);
    assert.equal(keyring.matches('previous', current, previous), true);
    assert.equal(keyring.matches('previous', current, null), false);
    assert.equal(keyring.matches('other', current, previous), false);
    assert.equal(keyring.matches('current', new Uint8Array(3)), false);
    assert.equal(createKeyring(`${MASTER}-other`).matches('current', current), false);
  });

  it('encrypts at rest with authentication: a flipped byte is refused', () => {
    const keyring = createKeyring(MASTER);
    const sealed = keyring.encrypt('{"d":"private"}');
    assert.ok(!sealed.includes('private'));
    assert.equal(keyring.decrypt(sealed), '{"d":"private"}');
    const [v, iv, body, tag] = sealed.split('.');
    const flipped = Buffer.from(body!, 'base64url');
    flipped[0]! ^= 1;
    assert.throws(() => keyring.decrypt([v, iv, flipped.toString('base64url'), tag].join('.')));
    assert.throws(() => createKeyring(`${MASTER}-other`).decrypt(sealed));
  });
});
