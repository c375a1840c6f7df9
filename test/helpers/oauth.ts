import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { rememberSecret } from './server.ts';

export const FORM = 'application/x-www-form-urlencoded';

export interface HttpResult<T = Record<string, any>> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** POSTs a form and parses the JSON answer (body is {} when it is not JSON). */
export async function postForm(url: string, body: string | Record<string, string>, headers: Record<string, string> = {}): Promise<HttpResult> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': FORM, ...headers },
    body: typeof body === 'string' ? body : new URLSearchParams(body).toString(),
  });
  const text = await response.text();
  let parsed: Record<string, any> = {};
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: callers assert on status and text.
  }
  if (typeof parsed.access_token === 'string') rememberSecret(parsed.access_token);
  return { status: response.status, headers: response.headers, body: parsed, text };
}

/**
 * A POST that announces a body of `length` bytes and sends none of it: the answer proves the
 * server refused the body before reading it.
 */
export function postAnnouncingBody(url: string, length: number): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Record<string, any> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': FORM, 'content-length': String(length) } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded, then joined and base64-encoded. */
export function basicAuth(clientId: string, secret: string): string {
  const value = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  rememberSecret(value);
  return value;
}

/** The Authorization header of a secret-based client. */
export const authAs = (client: { client_id: string; client_secret?: string }) => ({ authorization: basicAuth(client.client_id, client.client_secret!) });

/** POST /introspect as `caller` (RFC 7662), with any extra parameters. */
export const introspectAs = (endpoint: string, caller: { client_id: string; client_secret?: string }, token: string, extra: Record<string, string> = {}) =>
  postForm(endpoint, { token, ...extra }, authAs(caller));

/** A client_credentials token for a secret-based client; fails the test unless it is issued. */
export async function accessToken(tokenEndpoint: string, client: { client_id: string; client_secret?: string }, params: Record<string, string> = {}): Promise<string> {
  const answer = await postForm(tokenEndpoint, { grant_type: 'client_credentials', ...params }, authAs(client));
  if (answer.status !== 200 || typeof answer.body.access_token !== 'string') throw new Error(`no token issued: ${answer.status} ${answer.text}`);
  return answer.body.access_token;
}

export interface ClientKeyPair {
  privateKey: CryptoKey;
  publicJwk: JWK & { kid: string };
  jwks: { keys: JWK[] };
}

export async function clientKeyPair(alg = 'ES256'): Promise<ClientKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid: `client-key-${randomBytes(4).toString('hex')}`, alg, use: 'sig' };
  return { privateKey, publicJwk, jwks: { keys: [publicJwk] } };
}

/** RFC 7523 §3 client assertion: iss = sub = client_id, aud = the authorization server. */
export async function clientAssertion(
  keys: ClientKeyPair,
  clientId: string,
  audience: string,
  overrides: { jti?: string; expiresIn?: string } = {},
): Promise<string> {
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: keys.publicJwk.alg as string, kid: keys.publicJwk.kid })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(audience)
    .setJti(overrides.jti ?? randomBytes(16).toString('base64url'))
    .setIssuedAt()
    .setExpirationTime(overrides.expiresIn ?? '2m')
    .sign(keys.privateKey);
  rememberSecret(assertion);
  return assertion;
}

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
