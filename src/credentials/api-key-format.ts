import { crc32 } from 'node:zlib';
import { base62, randomBase62 } from '../lib/random.ts';

// lk_<id>_<secret><checksum>: a 12-char public id, a 43-char base62 secret (256 bits) and a
// 6-char base62 CRC32, so that typos and truncations are refused without a database read,
// and secret scanners can tell a real key from look-alike text.
const KEY = /^lk_([0-9A-Za-z]{12})_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/;
export const KEY_ID = /^[0-9A-Za-z]{12}$/;

const checksum = (body: string) => base62(crc32(body), 6);

export function newApiKey(): { id: string; key: string; secret: string } {
  const id = randomBase62(12);
  const secret = randomBase62(43);
  const body = `lk_${id}_${secret}`;
  return { id, key: `${body}${checksum(body)}`, secret };
}

/** The id and the whole key, or null when the text cannot be a key we issued. */
export function parseApiKey(text: string): { id: string } | null {
  const match = KEY.exec(text);
  if (!match) return null;
  const body = `lk_${match[1]}_${match[2]}`;
  return checksum(body) === match[3] ? { id: match[1]! } : null;
}

export const looksLikeApiKey = (text: string) => text.startsWith('lk_');
