import { lookup } from 'node:dns';
import { request } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { Deps } from '../context.ts';
import { InvalidRequest } from '../lib/errors.ts';

/**
 * A client's jwks_uri makes Latchkey fetch a URL someone else chose (issue 9 §1.11, SSRF):
 * refused when it names or resolves to a private, loopback, link-local or otherwise special
 * address, at registration and again at every fetch (a name can be re-pointed later; the
 * check runs on the addresses actually connected to). LATCHKEY_JWKS_URI_ALLOW_PRIVATE lifts
 * it for tests and development. A failing URI is retried only after a growing back-off, so a
 * stream of assertions cannot turn Latchkey into a request cannon.
 */
// Two lists: one BlockList would match every IPv4 address against the IPv4-mapped IPv6 rule.
const SPECIAL_V4 = new BlockList();
const SPECIAL_V6 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) SPECIAL_V4.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  // Unspecified and loopback; IPv4-mapped and NAT64 (an IPv4 address in disguise); discard-only;
  // documentation; unique local; link-local; site-local; multicast.
  ['::', 127], ['::ffff:0:0', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001:db8::', 32],
  ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) SPECIAL_V6.addSubnet(net, prefix, 'ipv6');

export function isSpecialAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return family === 4 ? SPECIAL_V4.check(address, 'ipv4') : SPECIAL_V6.check(address, 'ipv6');
}

const refused = () => new InvalidRequest('jwks_uri must not point at a private, loopback or link-local address');
const hostOf = (url: URL) => url.hostname.replace(/^\[|\]$/g, '');

function lookupAll(host: string): Promise<string[]> {
  return new Promise((resolve, reject) => lookup(host, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses.map((a) => a.address)))));
}

/** Registration: InvalidRequest for a URI that names or resolves to a special address. */
export async function assertJwksUriAllowed(deps: Pick<Deps, 'config'>, uri: string): Promise<void> {
  if (deps.config.LATCHKEY_JWKS_URI_ALLOW_PRIVATE) return;
  const host = hostOf(new URL(uri));
  if (isIP(host)) {
    if (isSpecialAddress(host)) throw refused();
    return;
  }
  let addresses: string[];
  try {
    addresses = await lookupAll(host);
  } catch {
    // A name that does not resolve yet is checked again at every fetch.
    return;
  }
  if (addresses.some(isSpecialAddress)) throw refused();
}

/** Resolves like the default, then refuses if any address is special (the connect never starts). */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return (callback as (e: Error) => void)(error);
    const list = addresses as unknown as { address: string; family: number }[];
    if (list.some((a) => isSpecialAddress(a.address))) return (callback as (e: Error) => void)(new Error('jwks_uri resolves to a special-use address'));
    if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: typeof list) => void)(null, list);
    (callback as (e: null, a: string, f: number) => void)(null, list[0]!.address, list[0]!.family);
  });
};

const MAX_BODY = 64 * 1024;
const TIMEOUT_MS = 2_500;
const FIRST_BACKOFF_MS = 5_000;
const MAX_BACKOFF_MS = 5 * 60_000;

interface Failing {
  failures: number;
  retryAt: number;
}

type FetchLike = (url: string | URL, init?: { method?: string; headers?: HeadersInit; signal?: AbortSignal }) => Promise<Response>;

const fetchers = new WeakMap<object, FetchLike>();

/**
 * The one way Latchkey fetches a jwks_uri: oidc-provider's `fetch` hook (the token endpoint)
 * and jose's customFetch (Latchkey's own endpoints) both use it. HTTPS only, no redirects,
 * a 2.5 s timeout, a 64 KiB body, special addresses refused, failures backed off per URI.
 */
export function jwksFetch(deps: Pick<Deps, 'config' | 'log'>): FetchLike {
  const existing = fetchers.get(deps);
  if (existing) return existing;
  const allowPrivate = deps.config.LATCHKEY_JWKS_URI_ALLOW_PRIVATE;
  const failing = new Map<string, Failing>();

  const fetchOnce = (url: URL, headers: HeadersInit | undefined, signal: AbortSignal | undefined): Promise<Response> =>
    new Promise((resolve, reject) => {
      if (url.protocol !== 'https:') return reject(new Error('jwks_uri must be https'));
      const host = hostOf(url);
      if (!allowPrivate && isIP(host) && isSpecialAddress(host)) return reject(new Error('jwks_uri names a special-use address'));
      const req = request(url, {
        method: 'GET',
        headers: { accept: 'application/json', ...Object.fromEntries(new Headers(headers)) },
        ...(allowPrivate ? {} : { lookup: guardedLookup }),
        signal: AbortSignal.any([AbortSignal.timeout(TIMEOUT_MS), ...(signal ? [signal] : [])]),
      });
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY) return req.destroy(new Error('jwks_uri response too large'));
          chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') responseHeaders.set(name, value);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 502, headers: responseHeaders }));
        });
      });
      req.end();
    });

  const fetcher: FetchLike = async (input, init = {}) => {
    const url = new URL(String(input));
    const key = url.href;
    const now = Date.now();
    const state = failing.get(key);
    if (state && state.retryAt > now) throw new Error('jwks_uri failed recently; backing off');
    try {
      const response = await fetchOnce(url, init.headers, init.signal);
      if (response.status !== 200) throw Object.assign(new Error(`jwks_uri answered ${response.status}`), { response });
      failing.delete(key);
      return response;
    } catch (error) {
      const failures = (state?.failures ?? 0) + 1;
      failing.set(key, { failures, retryAt: Date.now() + Math.min(FIRST_BACKOFF_MS * 2 ** (failures - 1), MAX_BACKOFF_MS) });
      if (failing.size > 10_000) failing.delete(failing.keys().next().value!);
      deps.log.warn({ host: url.host, failures, reason: (error as Error).message }, 'jwks_uri fetch failed');
      const response = (error as { response?: Response }).response;
      if (response) return response;
      throw error;
    }
  };
  fetchers.set(deps, fetcher);
  return fetcher;
}
