import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPassword, PASSWORD_MAX, PASSWORD_MIN } from '../../src/accounts/password-policy.ts';

const EMAIL = 'alice.smith@example.com';
const STRONG_12 = 'Vq7#tRz9!mKw';
const PASSPHRASE_64 = 'lantern orchard velvet compass thunder pebble marigold fjord kayak';

describe('checkPassword', () => {
  const cases: { name: string; password: string; email?: string; refused: RegExp | null }[] = [
    { name: 'a common password with digits', password: 'password1234', refused: /too easy to guess: this is similar to a commonly used password\. Try a longer phrase/ },
    { name: 'a keyboard row', password: 'qwertyuiop12', refused: /too easy to guess/ },
    // 12 characters exactly, so long enough: refused as two dictionary words, not for length.
    { name: 'two common words', password: 'correcthorse', refused: /too easy to guess/ },
    { name: '11 characters', password: STRONG_12.slice(0, 11), refused: /^Use at least 12 characters\.$/ },
    { name: '12 strong characters', password: STRONG_12, refused: null },
    { name: 'a 64-character passphrase', password: PASSPHRASE_64.slice(0, 64), refused: null },
    { name: '1024 characters', password: (PASSPHRASE_64 + ' ').repeat(20).slice(0, PASSWORD_MAX), refused: null },
    { name: '1025 characters', password: 'x'.repeat(PASSWORD_MAX + 1), refused: /^Use at most 1024 characters\.$/ },
    { name: 'the email local part', password: 'alice.smith2024!', email: EMAIL, refused: /^Do not use your email address/ },
    { name: 'the email local part in capitals', password: 'Zebra-ALICE.SMITH-quartz', email: EMAIL, refused: /^Do not use your email address/ },
    { name: 'the same password without that email', password: 'Zebra-ALICE.SMITH-quartz', refused: null },
    { name: 'a unicode passphrase', password: 'grüne Äpfel schmecken süß', refused: null },
    { name: 'a Japanese passphrase', password: '静かな湖に月が浮かぶ夜の森', refused: null },
    { name: 'a repeated character', password: 'a'.repeat(40), refused: /too easy to guess: repeated characters/ },
    { name: 'a long repetition past the analysed prefix', password: 'a'.repeat(PASSWORD_MAX), refused: /too easy to guess/ },
    { name: 'l33t speak', password: 'P@$$w0rd!2024', refused: /too easy to guess/ },
  ];
  for (const { name, password, email, refused } of cases) {
    it(`${refused ? 'refuses' : 'accepts'} ${name}`, () => {
      const message = checkPassword(password, { email });
      if (refused === null) assert.equal(message, null);
      else assert.match(message ?? '(accepted)', refused);
    });
  }

  it('counts code points, so an emoji is one character', () => {
    const cat = '🐱'; // one code point, two UTF-16 units
    assert.equal(cat.length, 2);
    assert.equal(checkPassword('🐱🐶🐭🐹🐰🦊🐻🐼🐨🐯🦁', {}), `Use at least ${PASSWORD_MIN} characters.`);
    assert.equal(checkPassword('🐱🐶🐭🐹🐰🦊🐻🐼🐨🐯🦁🐮', {}), null);
    // 1024 emoji are 2048 UTF-16 units, and still within the limit (refused only as repetitive).
    assert.doesNotMatch(checkPassword('🐱'.repeat(PASSWORD_MAX), {}) ?? '', /Use at most/);
    assert.match(checkPassword('🐱'.repeat(PASSWORD_MAX + 1), {}) ?? '', /Use at most/);
  });

  it('ignores a short local part and a +tag', () => {
    assert.equal(checkPassword(`ab${STRONG_12}`, { email: 'ab@example.com' }), null);
    assert.match(checkPassword('x7!alice.smith#Q', { email: 'alice.smith+work@example.com' }) ?? '', /email address/);
  });

  it('stays fast on hostile input of the longest allowed length', () => {
    checkPassword(STRONG_12, {}); // the dictionaries are built on first use
    const hostile = [
      Array.from({ length: PASSWORD_MAX }, (_, i) => String.fromCharCode(33 + ((i * 7919) % 90))).join(''),
      '4@8({[<3=6&#!1|0$5+7%2'.repeat(50).slice(0, PASSWORD_MAX),
      '1!|'.repeat(400).slice(0, PASSWORD_MAX),
    ];
    for (const password of hostile) {
      const started = performance.now();
      checkPassword(password, { email: EMAIL });
      const elapsed = performance.now() - started;
      // Measured ~30–200 ms on a loaded 2-core box; unbounded analysis took 16 s.
      assert.ok(elapsed < 1_000, `took ${elapsed.toFixed(0)} ms`);
    }
  });
});
