import { isIPv4, isIPv6 } from 'node:net';

/**
 * The network a peer address belongs to, for "first use from a new network" (issue 9 §1.6):
 * its /24 for IPv4 (an IPv4-mapped IPv6 address counts as IPv4) and its /48 for IPv6, the
 * usual sizes of one site's allocation. Undefined for anything that is not an address.
 */
export function networkOf(ip: string): string | undefined {
  const v4 = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  if (isIPv4(v4)) return `${v4.slice(0, v4.lastIndexOf('.'))}.0/24`;
  if (!isIPv6(ip)) return undefined;
  const zoneless = ip.split('%')[0]!.toLowerCase();
  const [head = '', tail] = zoneless.split('::');
  const headGroups = head ? head.split(':') : [];
  // "::" stands for as many zero groups as are missing; a trailing dotted quad is two groups.
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'), ...tailGroups];
  const prefix = groups.slice(0, 3).map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? g.replace(/^0+(?=.)/, '') : '0'));
  return `${prefix.join(':')}::/48`;
}
