import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as en from '@zxcvbn-ts/language-en';

/** ASVS 5.0 §6.2.1: at least 12 characters (code points, so every script counts alike). */
export const PASSWORD_MIN = 12;
/**
 * ASVS 5.0 §6.2.9 wants at least 64 allowed; 1024 leaves room for any passphrase while
 * bounding the work argon2 and this check do on a hostile input.
 */
export const PASSWORD_MAX = 1024;

/**
 * zxcvbn's matching grows faster than linearly with length, and its l33t matcher explodes on
 * punctuation-heavy input: measured on this 2-core box, a 100-character random string took
 * 0.2–1.5 s and a 1024-character one 16 s. Only the first 64 code points are analysed. Cutting
 * can only make the verdict stricter, never laxer: characters after the prefix add guesses, so
 * if the prefix is hard to guess the whole password is too. 64 is also the length ASVS asks us
 * to accept at least, so the cut never falls inside a password of a length people commonly use.
 */
const ANALYSED_CODE_POINTS = 64;
/**
 * Caps the l33t-speak variants tried per substring (default 100): the main cost on
 * punctuation-heavy input, while 'p4$$w0rd'-style passwords are still recognised at 20.
 */
const L33T_MAX_SUBSTITUTIONS = 20;
/** zxcvbn's 0–4 scale: 3 is "safely unguessable: moderate protection from offline attacks". */
const MIN_SCORE = 3;

let zxcvbn: ZxcvbnFactory | undefined;
/** Built on first use: the dictionaries take ~0.3 s to rank, which start-up need not pay. */
function estimator(): ZxcvbnFactory {
  zxcvbn ??= new ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...en.dictionary },
    graphs: common.adjacencyGraphs,
    translations: en.translations,
    maxLength: ANALYSED_CODE_POINTS * 2,
    l33tMaxSubstitutions: L33T_MAX_SUBSTITUTIONS,
  });
  return zxcvbn;
}

/**
 * The email's local part without a "+tag" (alice.smith+work@ → alice.smith), when it is long
 * enough to mean something, and its pieces (alice, smith).
 */
function personalWords(email: string | undefined): { localPart: string | null; words: string[] } {
  const localPart = email?.trim().toLowerCase().split('@')[0]?.split('+')[0] ?? '';
  if ([...localPart].length < 3) return { localPart: null, words: [] };
  const pieces = localPart.split(/[^\p{L}\p{N}]+/u).filter((piece) => [...piece].length >= 3);
  return { localPart, words: [...new Set([localPart, ...pieces])] };
}

/**
 * Whether a new password is acceptable (ASVS 5.0 §6.2: length, no composition rules, not a
 * common, breached or personal password, checked offline). Returns null when it is, else one
 * message to show beside the Password field.
 */
export function checkPassword(password: string, context: { email?: string }): string | null {
  const codePoints = [...password];
  if (codePoints.length < PASSWORD_MIN) return `Use at least ${PASSWORD_MIN} characters.`;
  if (codePoints.length > PASSWORD_MAX) return `Use at most ${PASSWORD_MAX} characters.`;

  const { localPart, words } = personalWords(context.email);
  // The whole local part inside the password is the first thing an attacker who knows the
  // address tries. Its pieces alone ('alice') go to zxcvbn as user inputs, which weighs them.
  if (localPart && password.toLowerCase().includes(localPart)) {
    return 'Do not use your email address in your password.';
  }

  const analysed = codePoints.slice(0, ANALYSED_CODE_POINTS).join('');
  const result = estimator().check(analysed, words);
  if (result.score >= MIN_SCORE) return null;
  const warning = result.feedback.warning;
  const why = warning ? `: ${warning.charAt(0).toLowerCase()}${warning.slice(1).replace(/\.?$/, '.')}` : '.';
  return `This password is too easy to guess${why} Try a longer phrase of unrelated words.`;
}
