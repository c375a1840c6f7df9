import { createCipheriv, createDecipheriv, hash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Keys derived from LATCHKEY_SECRET, one per purpose (HKDF-SHA-256), so that a leak of one
 * use cannot be replayed as another.
 */
export interface Keyring {
  /** Keyed digest of a high-entropy credential secret (API key, client secret). */
  digest(secret: string): Uint8Array<ArrayBuffer>;
  /** Constant-time comparison of a presented secret against stored digests. */
  matches(secret: string, ...digests: (Uint8Array | null | undefined)[]): boolean;
  /** The same comparison, telling which digest matched (its index; -1 for none): every digest is compared. */
  matchIndex(secret: string, ...digests: (Uint8Array | null | undefined)[]): number;
  encrypt(plaintext: string): string;
  decrypt(ciphertext: string): string;
  cookieKeys: string[];
  /**
   * Names this deployment where others may share infrastructure (its Redis channel): derived
   * from the master secret, so every node and the CLI agree without configuration, and
   * revealing nothing about the secret.
   */
  deploymentId: string;
}

/**
 * HMAC-SHA-256 (RFC 2104) as two one-shot hashes over scratch buffers holding the padded
 * keys: the same bytes as createHmac at a fifth of its cost, which matters because this runs
 * on every token request and twice per introspection. Node's one-shot hash is cheapest with
 * a 'binary' (latin1) string out (a Buffer out costs a native allocation), so the digest
 * travels as a 32-character latin1 string until it is compared or stored.
 * Synchronous code only: the scratch buffers are reused by every call.
 */
function hmacSha256(key: Buffer): (message: string) => string {
  if (key.length > 64) throw new RangeError('HMAC keys longer than the block size are not used here');
  const inner = Buffer.alloc(64 + 1024, 0x36);
  const outer = Buffer.alloc(64 + 32, 0x5c);
  for (let i = 0; i < key.length; i++) {
    inner[i]! ^= key[i]!;
    outer[i]! ^= key[i]!;
  }
  const innerPad = inner.subarray(0, 64);
  return (message) => {
    // UTF-8 needs at most 3 bytes per UTF-16 unit, so a message that passes this always fits.
    const fits = message.length * 3 <= inner.length - 64;
    const innerInput = fits ? inner.subarray(0, 64 + inner.write(message, 64, 'utf8')) : Buffer.concat([innerPad, Buffer.from(message, 'utf8')]);
    const innerHash = hash('sha256', innerInput, 'binary');
    // The secret does not linger in the scratch buffer.
    if (fits) inner.fill(0, 64, innerInput.length);
    outer.write(innerHash, 64, 'latin1');
    return hash('sha256', outer, 'binary');
  };
}

const derive = (master: string, purpose: string) =>
  Buffer.from(hkdfSync('sha256', master, 'latchkey', purpose, 32));

export function createKeyring(masterSecret: string): Keyring {
  const encryptionKey = derive(masterSecret, 'at-rest-encryption-v1');
  const hmac = hmacSha256(derive(masterSecret, 'credential-digest-v1'));
  const presented = Buffer.alloc(32);
  const matchIndex = (secret: string, digests: (Uint8Array | null | undefined)[]) => {
    // Comparing fixed-length digests: the presented secret's length leaks nothing.
    presented.write(hmac(secret), 'latin1');
    let index = -1;
    for (let i = 0; i < digests.length; i++) {
      const stored = digests[i];
      if (stored && stored.length === presented.length && timingSafeEqual(presented, stored)) index = i;
    }
    return index;
  };
  return {
    digest: (secret) => new Uint8Array(Buffer.from(hmac(secret), 'latin1')),
    matches: (secret, ...digests) => matchIndex(secret, digests) !== -1,
    matchIndex: (secret, ...digests) => matchIndex(secret, digests),
    encrypt(plaintext) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', encryptionKey, iv);
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return ['v1', iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
    },
    decrypt(ciphertext) {
      const [version, iv, body, tag] = ciphertext.split('.');
      if (version !== 'v1' || !iv || !body || !tag) throw new Error('unrecognised ciphertext format');
      const decipher = createDecipheriv('aes-256-gcm', encryptionKey, Buffer.from(iv, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    },
    cookieKeys: [derive(masterSecret, 'cookie-signing-v1').toString('base64url')],
    deploymentId: derive(masterSecret, 'deployment-id-v1').subarray(0, 12).toString('hex'),
  };
}

/** LATCHKEY_SECRET, or (outside production) one generated once into the data dir. */
export async function resolveMasterSecret(configured: string | undefined, dataDir: string): Promise<string> {
  if (configured) return configured;
  const file = path.join(dataDir, 'secret');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (!(await readSecret(file))) {
    // Written whole under a temporary name, then linked into place: a reader never sees a
    // partial file, and of two racing processes the first link wins.
    const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(temporary, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    await link(temporary, file).catch((error) => {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    });
    await unlink(temporary);
  }
  const secret = await readSecret(file);
  if (!secret || secret.length < 32) throw new Error(`${file} does not hold a usable secret (32+ characters); remove it or set LATCHKEY_SECRET`);
  return secret;
}

async function readSecret(file: string): Promise<string | null> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
