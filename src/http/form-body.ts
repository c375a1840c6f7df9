import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import { LatchkeyError, InvalidRequest } from '../lib/errors.ts';

const MAX_BODY = 16 * 1024;

/**
 * Reads an application/x-www-form-urlencoded body into single-valued parameters. Repeated
 * parameters are invalid_request (RFC 6749 §3.2), as are oversize or non-form bodies.
 */
export async function readForm(ctx: Context): Promise<Map<string, string>> {
  if (ctx.querystring) throw new InvalidRequest('parameters must be sent in the request body, not the query string');
  if (!ctx.is('application/x-www-form-urlencoded')) {
    throw new LatchkeyError('invalid_request', 'the request body must be application/x-www-form-urlencoded');
  }
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > MAX_BODY) throw new LatchkeyError('payload_too_large', 'request body too large');
  const text = await readBody(ctx.req);
  const params = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(text)) {
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
