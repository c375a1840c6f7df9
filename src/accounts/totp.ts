import { randomInt } from 'node:crypto';
import { HOTP, Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';

/**
 * What every common authenticator app expects (Google Authenticator ignores anything else):
 * RFC 6238 with HMAC-SHA-1, 6 digits, 30-second steps.
 */
const ALGORITHM = 'SHA1';
const DIGITS = 6;
const PERIOD_SECONDS = 30;
/** RFC 6238 §5.2: one step either side absorbs clock drift and the time it takes to type. */
const SKEW_STEPS = 1;

/** A new shared secret: 160 bits from the CSPRNG (RFC 4226 §4 recommends 160), base32. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The otpauth:// URI an authenticator app scans (Key Uri Format). */
export function totpUri({ secret, email, issuer = 'Latchkey' }: { secret: string; email: string; issuer?: string }): string {
  return new TOTP({
    issuer,
    label: email,
    secret: Secret.fromBase32(secret),
    algorithm: ALGORITHM,
    digits: DIGITS,
    period: PERIOD_SECONDS,
  }).toString();
}

const QR_LABEL = 'QR code for your authenticator app';

/**
 * The URI as an SVG QR code, to be inlined in a page: plain markup (paths only, no script,
 * no event handlers, no links), announced to screen readers as one image.
 */
export async function totpQrSvg(uri: string): Promise<string> {
  const svg = (await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })).trim();
  // qrcode only ever emits <svg><path/>…</svg>; anything else means the library changed,
  // and markup we did not expect must not reach a page that trusts it.
  if (!svg.startsWith('<svg ') || !svg.endsWith('</svg>') || /<script|\son\w+\s*=|href\s*=|<foreignObject/i.test(svg)) {
    throw new Error('qrcode produced unexpected SVG markup');
  }
  return svg.replace('<svg ', `<svg role="img" aria-label="${QR_LABEL}" `);
}

export type TotpVerification = { ok: true; step: bigint } | { ok: false };

/**
 * Checks a code typed by a person at `now`. Accepts the current step and one either side,
 * but never a step at or before `lastStep` (the last one accepted for this secret): ASVS 5.0
 * §6.5.1, a code is single use. The caller stores the returned step.
 */
export function verifyTotp({ secret, code, now, lastStep }: { secret: string; code: string; now: Date; lastStep: bigint | null }): TotpVerification {
  const token = code.replace(/\s+/g, '');
  if (!/^[0-9]{6}$/.test(token)) return { ok: false };
  const key = Secret.fromBase32(secret);
  const current = Math.floor(now.getTime() / 1000 / PERIOD_SECONDS);
  let matched: number | null = null;
  // Every candidate is compared (constant-time inside otpauth), so timing does not tell
  // which step matched; the newest acceptable match wins.
  for (let step = current - SKEW_STEPS; step <= current + SKEW_STEPS; step++) {
    if (lastStep !== null && BigInt(step) <= lastStep) continue;
    const delta = HOTP.validate({ token, secret: key, algorithm: ALGORITHM, digits: DIGITS, counter: step, window: 0 });
    if (delta === 0) matched = step;
  }
  return matched === null ? { ok: false } : { ok: true, step: BigInt(matched) };
}

/**
 * Crockford's base32 alphabet, lowercased: no i, l, o or u, so a code copied by hand from
 * paper reads back the same; 32 symbols × 10 = 50 bits per code (ASVS 5.0 §6.5.2 wants ≥ 20).
 */
const RECOVERY_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const RECOVERY_GROUP = 5;
const RECOVERY_CODES = 10;

/** Ten one-time recovery codes such as `k3v9q-7hx2m`, shown once; the caller stores digests. */
export function newRecoveryCodes(): string[] {
  const codes = new Set<string>();
  while (codes.size < RECOVERY_CODES) {
    let code = '';
    for (let i = 0; i < RECOVERY_GROUP * 2; i++) {
      if (i === RECOVERY_GROUP) code += '-';
      code += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
    }
    codes.add(code);
  }
  return [...codes];
}

/**
 * A recovery code as typed, in its stored form (`xxxxx-xxxxx`), or null when it cannot be
 * one. Case, spaces and dashes do not matter, and the letters Crockford's base32 leaves out
 * are read as the digits they look like (o → 0, i and l → 1).
 */
export function normaliseRecoveryCode(input: string): string | null {
  const compact = input
    .toLowerCase()
    .replace(/[\s-]+/g, '')
    .replace(/o/g, '0')
    .replace(/[il]/g, '1');
  if (compact.length !== RECOVERY_GROUP * 2) return null;
  for (const char of compact) if (!RECOVERY_ALPHABET.includes(char)) return null;
  return `${compact.slice(0, RECOVERY_GROUP)}-${compact.slice(RECOVERY_GROUP)}`;
}
