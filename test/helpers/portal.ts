import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestServer } from './server.ts';
import { linksIn, type SmtpPeer } from './smtp.ts';

/**
 * A browser-like HTTP client for page tests: keeps cookies, sends the CSRF token and the
 * Origin header on form posts, never follows redirects by itself.
 *
 *   const client = new PortalClient(server.url);
 *   const page = await client.get('/portal/sign-in');               // Response (body unread)
 *   const done = await client.postForm('/portal/keys/new', '/portal/keys', { name: 'ci', scopes: ['a', 'b'] });
 *   assert.equal(done.status, 303);
 *   const next = await client.follow(done);                          // GET of its Location
 *   const html = await next.text();
 *
 * `postForm(pagePath, actionPath, fields)` GETs pagePath, reads the form's `_csrf`, then POSTs
 * the fields (repeated for arrays) to actionPath. `post(actionPath, fields)` reuses the token
 * of the last page fetched (or sends none when `fields._csrf` is given or `{ csrf: false }`).
 */
export class PortalClient {
  readonly baseUrl: string;
  /** name → value; cookies cleared by the server (empty value or Max-Age=0) are removed. */
  readonly cookies = new Map<string, string>();
  /** The `_csrf` of the last HTML page read through this client. */
  csrf: string | undefined;

  constructor(baseUrl: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  /** The Cookie header this client sends. */
  cookieHeader(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  /** A GET; the body is read (for the CSRF token) and can still be read by the caller with text(). */
  async get(pathOrUrl: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.#request('GET', pathOrUrl, undefined, headers);
  }

  /** A form POST to actionPath with the last page's CSRF token (unless fields carry `_csrf` or options.csrf is false). */
  async post(actionPath: string, fields: Record<string, string | string[]> = {}, options: { csrf?: boolean; origin?: string | null } = {}): Promise<Response> {
    const body = new URLSearchParams();
    if (options.csrf !== false && fields._csrf === undefined && this.csrf) body.append('_csrf', this.csrf);
    for (const [name, value] of Object.entries(fields)) for (const one of Array.isArray(value) ? value : [value]) body.append(name, one);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    const origin = options.origin === undefined ? this.baseUrl : options.origin;
    if (origin) headers.origin = origin;
    return this.#request('POST', actionPath, body.toString(), headers);
  }

  /** GETs pagePath for its CSRF token, then posts the fields to actionPath. */
  async postForm(pagePath: string, actionPath: string, fields: Record<string, string | string[]> = {}): Promise<Response> {
    const page = await this.get(pagePath);
    if (!this.csrf) throw new Error(`no _csrf on ${pagePath} (status ${page.status})`);
    return this.post(actionPath, fields);
  }

  /** GETs the Location of a redirect (relative or absolute). */
  async follow(response: Response): Promise<Response> {
    const location = response.headers.get('location');
    if (!location) throw new Error(`not a redirect: ${response.status}`);
    return this.get(location);
  }

  async #request(method: string, pathOrUrl: string, body: string | undefined, headers: Record<string, string>): Promise<Response> {
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${this.baseUrl}${pathOrUrl}`;
    const cookie = this.cookieHeader();
    const response = await fetch(url, { method, body, redirect: 'manual', headers: { ...(cookie ? { cookie } : {}), ...headers } });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (!value || expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    // Read the body once for its CSRF token, and hand back a Response whose body can be read again.
    const text = await response.text();
    const token = /name="_csrf" value="([^"]*)"/.exec(text)?.[1];
    if (token) this.csrf = token;
    const copy = new Response(response.status === 204 || response.status === 304 ? null : text, { status: response.status, statusText: response.statusText, headers: response.headers });
    return copy;
  }
}

/** Passes the password policy (long, unrelated words); not tied to any email. */
export const STRONG_PASSWORD = 'correct lantern orbit maple 47 quietly';

/** The newest mail to `email` that has a link under `${issuer}/portal/${pathPart}`: from the SMTP peer when given, else from the .eml files. */
export async function linkFromMail(server: Pick<TestServer, 'issuer' | 'database'>, smtp: SmtpPeer | null, email: string, pathPart: string, options: { after?: number } = {}): Promise<string> {
  const prefix = `${server.issuer}/portal/${pathPart}`;
  const match = (raw: string) => linksIn(raw).find((link) => link.startsWith(prefix));
  if (smtp) {
    const after = options.after ?? 0;
    const mail = await smtp.waitFor((m) => smtp.messages.indexOf(m) >= after && m.to.includes(email) && Boolean(match(m.raw)));
    return match(mail.raw)!;
  }
  const dir = path.join(server.database.dataDir, 'mail');
  for (let i = 0; i < 100; i++) {
    const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.eml')).sort().reverse();
    for (const file of files) {
      const raw = await readFile(path.join(dir, file), 'utf8');
      if (!new RegExp(`^To: .*${email.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'mi').test(raw)) continue;
      const link = match(raw);
      if (link) return link;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no mail to ${email} with a link under ${prefix}`);
}

/**
 * Signs up `email`, verifies it through the mailed link and signs in: returns a client with a
 * full session (no MFA). Mail is read from `smtp` when the server was started with
 * SMTP_URL = smtp.url, else from `${dataDir}/mail/*.eml`.
 */
export async function signUpAndSignIn(server: Pick<TestServer, 'url' | 'issuer' | 'database'>, smtp: SmtpPeer | null, email: string, password = STRONG_PASSWORD): Promise<PortalClient> {
  const client = new PortalClient(server.url);
  const before = smtp?.messages.length ?? 0;
  const signedUp = await client.postForm('/portal/sign-up', '/portal/sign-up', { email, password });
  if (signedUp.status !== 200) throw new Error(`sign-up answered ${signedUp.status}: ${(await signedUp.text()).slice(0, 500)}`);
  const link = await linkFromMail(server, smtp, email, 'verify-email', { after: before });
  const verified = await client.postForm(link, '/portal/verify-email', { token: new URL(link).searchParams.get('token')! });
  if (verified.status !== 303) throw new Error(`verification answered ${verified.status}`);
  await signIn(client, email, password);
  return client;
}

/** Signs an existing, verified account in on `client` (no MFA); throws unless it lands on /portal. */
export async function signIn(client: PortalClient, email: string, password = STRONG_PASSWORD): Promise<Response> {
  const response = await client.postForm('/portal/sign-in', '/portal/sign-in', { email, password });
  if (response.status !== 303) throw new Error(`sign-in answered ${response.status}`);
  return response;
}
