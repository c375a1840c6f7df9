import { isIPv4, isIPv6 } from 'node:net';

/** An IPv6 address as its eight 16-bit groups (zone id dropped); undefined for anything else. */
function ipv6Groups(ip: string): number[] | undefined {
  if (!isIPv6(ip)) return undefined;
  let text = ip.split('%')[0]!.toLowerCase();
  // A trailing dotted quad (::ffff:1.2.3.4) is the last two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const groupsOf = (part: string | undefined) => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
  const [head, tail] = text.split('::');
  if (tail === undefined) return groupsOf(head);
  // "::" stands for as many zero groups as are missing.
  const [before, after] = [groupsOf(head), groupsOf(tail)];
  return [...before, ...Array<number>(8 - before.length - after.length).fill(0), ...after];
}

const ipv4Of = (groups: number[]) => [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join('.');

/** The IPv4 address an IPv4-mapped IPv6 address (::ffff:a.b.c.d) stands for. */
function mappedIPv4(groups: number[]): string | undefined {
  if (!groups.slice(0, 5).every((group) => group === 0) || groups[5] !== 0xffff) return undefined;
  return ipv4Of(groups);
}

/**
 * The IPv4 client behind the well-known NAT64 prefix (64:ff9b::/96, RFC 6052): on an
 * IPv6-only server behind a translator, every IPv4 client shares that one /64.
 */
function nat64IPv4(groups: number[]): string | undefined {
  if (groups[0] !== 0x64 || groups[1] !== 0xff9b || !groups.slice(2, 6).every((group) => group === 0)) return undefined;
  return ipv4Of(groups);
}

const prefixOf = (groups: number[], count: number) => groups.slice(0, count).map((group) => group.toString(16)).join(':');

/**
 * The key every per-peer limit and throttle counts by. An IPv6 peer is keyed by its /64: a
 * subscriber is routinely given a whole /64 (RFC 6177), so keyed by address it could walk
 * through 2^64 fresh budgets. An IPv4-mapped or NAT64 address is its IPv4 address; IPv4 and anything
 * that is not an address (a proxy's odd header) stay as they are.
 */
export function peerKey(ip: string): string {
  // The hot path's usual cases without parsing: IPv4, and IPv4 as a dual-stack socket reports it.
  if (!ip.includes(':')) return ip;
  if (ip.startsWith('::ffff:') && isIPv4(ip.slice(7))) return ip.slice(7);
  const groups = ipv6Groups(ip);
  if (!groups) return ip;
  return mappedIPv4(groups) ?? nat64IPv4(groups) ?? `${prefixOf(groups, 4)}::/64`;
}

/**
 * The network a peer address belongs to, for "first use from a new network" (issue 9 §1.6):
 * its /24 for IPv4 (an IPv4-mapped IPv6 address counts as IPv4) and its /48 for IPv6, the
 * usual sizes of one site's allocation. Undefined for anything that is not an address.
 */
export function networkOf(ip: string): string | undefined {
  const groups = ipv6Groups(ip);
  const v4 = groups ? mappedIPv4(groups) : isIPv4(ip) ? ip : undefined;
  if (v4) return `${v4.slice(0, v4.lastIndexOf('.'))}.0/24`;
  return groups && `${prefixOf(groups, 3)}::/48`;
}
