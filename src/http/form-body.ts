import type { IncomingMessage } from 'node:http';
import { InvalidRequest, PayloadTooLarge } from '../lib/errors.ts';

export const MAX_BODY = 16 * 1024;
const FORM = 'application/x-www-form-urlencoded';

/**
 * Reads an application/x-www-form-urlencoded body into single-valued parameters. Parameters
 * in the query string, repeated parameters (RFC 6749 §3.2) and non-form bodies are
 * invalid_request; oversize bodies are refused before they are read. Callback-style, so the
 * hot path can answer without creating a promise (each one costs under async hooks).
 */
export function readForm(req: IncomingMessage, done: (error: unknown, params?: Map<string, string>) => void): void {
  try {
    checkFormRequest(req);
  } catch (error) {
    return done(error);
  }
  readBody(req, (error, text) => {
    if (error) return done(error);
    try {
      done(null, parseForm(text!));
    } catch (thrown) {
      done(thrown);
    }
  });
}

function checkFormRequest(req: IncomingMessage): void {
  if (req.url?.includes('?')) throw new InvalidRequest('parameters must be sent in the request body, not the query string');
  // Media types are case-insensitive (RFC 9110 §8.3.1).
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  if (!(type === FORM || (type.startsWith(FORM) && /^[\s;]/.test(type.slice(FORM.length))))) {
    throw new InvalidRequest(`the request body must be ${FORM}`);
  }
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) throw new PayloadTooLarge();
}

function parseForm(text: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(text)) {
    if (params.has(key)) throw new InvalidRequest(`parameter ${key.slice(0, 40)} must not be repeated`);
    params.set(key, value);
  }
  return params;
}

/** The body as text, refused past MAX_BODY; callback-style like readForm. */
export function readBody(req: IncomingMessage, done: (error: unknown, text?: string) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (error: unknown, text?: string) => {
    if (finished) return;
    finished = true;
    done(error, text);
  };
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      req.removeAllListeners('data');
      req.resume();
      finish(new PayloadTooLarge());
      return;
    }
    chunks.push(chunk);
  });
  req.once('end', () => finish(null, chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
  req.once('error', (error) => finish(error));
}
