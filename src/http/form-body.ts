import type { IncomingMessage } from 'node:http';
import { LatchkeyError, InvalidRequest } from '../lib/errors.ts';

const MAX_BODY = 16 * 1024;
const FORM = 'application/x-www-form-urlencoded';

/**
 * Reads an application/x-www-form-urlencoded body into single-valued parameters. Parameters
 * in the query string, repeated parameters (RFC 6749 §3.2) and non-form bodies are
 * invalid_request; oversize bodies are refused before they are read.
 */
export async function readForm(req: IncomingMessage): Promise<Map<string, string>> {
  if (req.url?.includes('?')) throw new InvalidRequest('parameters must be sent in the request body, not the query string');
  const type = req.headers['content-type'] ?? '';
  if (!(type === FORM || (type.startsWith(FORM) && /^[\s;]/.test(type.slice(FORM.length))))) {
    throw new InvalidRequest(`the request body must be ${FORM}`);
  }
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) throw new LatchkeyError('payload_too_large', 'request body too large');
  const params = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(await readBody(req))) {
    if (params.has(key)) throw new InvalidRequest(`parameter ${key} must not be repeated`);
    params.set(key, value);
  }
  return params;
}

// Plain events: measurably cheaper per request than an async iterator over the stream.
function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        req.removeAllListeners('data');
        req.resume();
        reject(new LatchkeyError('payload_too_large', 'request body too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}
