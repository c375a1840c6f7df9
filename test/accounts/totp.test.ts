import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import { newRecoveryCodes, newTotpSecret, normaliseRecoveryCode, totpQrSvg, totpUri, verifyTotp } from '../../src/accounts/totp.ts';

const secret = newTotpSecret();
const now = new Date('2026-12-01T14:03:17Z');
const STEP = BigInt(Math.floor(now.getTime() / 30_000));
/** What an authenticator app shows at `at`, computed independently with otpauth. */
const codeAt = (at: Date, key = secret) =>
  new TOTP({ secret: Secret.fromBase32(key), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: at.getTime() });
const stepsFromNow = (steps: number) => new Date(now.getTime() + steps * 30_000);

describe('TOTP secrets and enrolment', () => {
  it('makes 160-bit base32 secrets, different each time', () => {
    assert.match(secret, /^[A-Z2-7]{32}$/);
    assert.equal(Secret.fromBase32(secret).bytes.length, 20);
    assert.notEqual(newTotpSecret(), secret);
  });

  it('builds the URI authenticator apps expect', () => {
    const uri = new URL(totpUri({ secret, email: 'alice@example.com', issuer: 'Latchkey' }));
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(uri.host, 'totp');
    assert.equal(decodeURIComponent(uri.pathname), '/Latchkey:alice@example.com');
    assert.equal(uri.searchParams.get('issuer'), 'Latchkey');
    assert.equal(uri.searchParams.get('secret'), secret);
    assert.equal(uri.searchParams.get('algorithm'), 'SHA1');
    assert.equal(uri.searchParams.get('digits'), '6');
    assert.equal(uri.searchParams.get('period'), '30');
  });

  it('draws the URI as plain, labelled SVG', async () => {
    const svg = await totpQrSvg(totpUri({ secret, email: 'alice@example.com', issuer: 'Latchkey' }));
    assert.ok(svg.startsWith('<svg '), svg.slice(0, 40));
    assert.ok(svg.endsWith('</svg>'));
    const root = svg.slice(0, svg.indexOf('>') + 1);
    assert.match(root, / role="img"/);
    assert.match(root, / aria-label="QR code for your authenticator app"/);
    assert.doesNotMatch(svg, /<script|\son\w+=|href=/i);
  });
});

describe('verifyTotp', () => {
  it('accepts the current code and returns its step', () => {
    assert.deepEqual(verifyTotp({ secret, code: codeAt(now), now, lastStep: null }), { ok: true, step: STEP });
  });

  it('refuses the same code once its step is used (single use)', () => {
    assert.deepEqual(verifyTotp({ secret, code: codeAt(now), now, lastStep: STEP }), { ok: false });
    assert.deepEqual(verifyTotp({ secret, code: codeAt(now), now, lastStep: STEP + 1n }), { ok: false });
    // A later step is still fine after an earlier one was used.
    assert.deepEqual(verifyTotp({ secret, code: codeAt(now), now, lastStep: STEP - 1n }), { ok: true, step: STEP });
  });

  it('accepts one step either side, and no further', () => {
    for (const [steps, ok] of [[-2, false], [-1, true], [1, true], [2, false]] as const) {
      const result = verifyTotp({ secret, code: codeAt(stepsFromNow(steps)), now, lastStep: null });
      assert.deepEqual(result, ok ? { ok: true, step: STEP + BigInt(steps) } : { ok: false }, `step ${steps}`);
    }
  });

  it('takes time from now, not the clock', () => {
    const later = stepsFromNow(100);
    assert.deepEqual(verifyTotp({ secret, code: codeAt(later), now, lastStep: null }), { ok: false });
    assert.deepEqual(verifyTotp({ secret, code: codeAt(later), now: later, lastStep: null }), { ok: true, step: STEP + 100n });
  });

  it('tolerates spaces and refuses anything but six digits', () => {
    const code = codeAt(now);
    assert.equal(verifyTotp({ secret, code: ` ${code.slice(0, 3)} ${code.slice(3)} `, now, lastStep: null }).ok, true);
    for (const junk of ['abcdef', '12345', '1234567', '', '12345a', '１２３４５６', `${code}0`]) {
      assert.deepEqual(verifyTotp({ secret, code: junk, now, lastStep: null }), { ok: false }, junk);
    }
  });

  it("refuses another secret's code", () => {
    // Fixed secrets, so this cannot fail by a one-in-a-million chance collision.
    const other = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    assert.deepEqual(verifyTotp({ secret: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', code: codeAt(now, other), now, lastStep: null }), { ok: false });
  });
});

describe('recovery codes', () => {
  const codes = newRecoveryCodes();

  it('makes ten distinct codes of an unambiguous alphabet', () => {
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const code of codes) assert.match(code, /^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$/);
    assert.notDeepEqual(newRecoveryCodes(), codes);
  });

  it('reads them back however they are typed', () => {
    for (const code of codes) {
      const bare = code.replace('-', '');
      for (const typed of [code, bare, code.toUpperCase(), ` ${bare.slice(0, 3)} ${bare.slice(3, 7)} ${bare.slice(7)} `, `${code.slice(0, 5)} - ${code.slice(6)}`]) {
        assert.equal(normaliseRecoveryCode(typed), code, typed);
      }
    }
  });

  it('reads look-alike letters as digits', () => {
    assert.equal(normaliseRecoveryCode('OIL23-45678'), '01123-45678');
  });

  it('refuses what cannot be a recovery code', () => {
    for (const junk of ['', 'abcd-efgh', 'abcde-fghjkm', 'abcde_fghjk', 'abcde-fghju', '123456', 'abcde-fghj!']) {
      assert.equal(normaliseRecoveryCode(junk), null, junk);
    }
  });
});
