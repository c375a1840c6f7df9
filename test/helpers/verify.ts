import { z } from 'zod';
import { authAs } from './oauth.ts';

const window = z.object({ limit: z.number().int(), remaining: z.number().int().min(0), reset: z.number().int() }).strict();

/** The contract's answer (DESIGN §2 Key verification): no field more, none less. */
export const verificationSchema = z
  .object({
    valid: z.boolean(),
    code: z.enum(['VALID', 'NOT_FOUND', 'REVOKED', 'EXPIRED', 'INSUFFICIENT_SCOPE', 'RATE_LIMITED', 'QUOTA_EXCEEDED', 'SUSPENDED']),
    key_id: z.string().nullable(),
    owner: z.string().nullable(),
    scopes: z.array(z.string()),
    expires_at: z.string().nullable(),
    ratelimit: window.optional(),
    quota: window.optional(),
  })
  .strict();
export type Verification = z.infer<typeof verificationSchema>;

export interface VerifyResult {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed and checked against verificationSchema when the status is 200. */
  body: Record<string, any>;
}

/** POST /v1/keys/verify as `caller` (Basic), with a JSON body (a string is sent as is). */
export async function verifyAs(baseUrl: string, caller: { client_id: string; client_secret?: string } | null, body: unknown, headers: Record<string, string> = {}): Promise<VerifyResult> {
  const response = await fetch(`${baseUrl}/v1/keys/verify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(caller ? authAs(caller) : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: Record<string, any> = {};
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: callers assert on status and text.
  }
  if (response.status === 200) verificationSchema.parse(parsed);
  return { status: response.status, headers: response.headers, text, body: parsed };
}
