/** CIDRs (IPv4 and IPv6) parsed to integer ranges, so the nested cluster's ranges can be checked for overlap. */
import { isIPv4, isIPv6 } from 'node:net';

/** A parsed CIDR: its family, prefix length and first and last address. */
export interface Cidr {
  readonly text: string;
  readonly family: 4 | 6;
  readonly prefix: number;
  readonly first: bigint;
  readonly last: bigint;
}

function ipv4ToBigInt(ip: string): bigint {
  return ip.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6ToBigInt(ip: string): bigint {
  let text = ip;
  // An embedded IPv4 tail (::ffff:10.0.0.1) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToBigInt(v4[1]!);
    text = `${text.slice(0, -v4[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/**
 * Parses `address/prefix`. Returns an error text instead when it is no CIDR, or when it has bits set beyond the
 * prefix (`10.0.0.1/16`: Kubernetes would take `10.0.0.0/16`, so say that instead).
 */
export function parseCidr(text: string): Cidr | string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) return 'must be a CIDR such as 10.0.0.0/16 or fd00::/48';
  const [, address, prefixText] = m as unknown as [string, string, string];
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  if (!family) return 'must be a CIDR such as 10.0.0.0/16 or fd00::/48';
  const bits = family === 4 ? 32 : 128;
  const prefix = Number(prefixText);
  if (prefix > bits) return `the prefix length must be at most ${bits}`;
  const value = family === 4 ? ipv4ToBigInt(address) : ipv6ToBigInt(address);
  const hostBits = BigInt(bits - prefix);
  const first = (value >> hostBits) << hostBits;
  if (first !== value) return 'has bits set beyond the prefix length (give the network address)';
  return { text, family, prefix, first, last: first + (1n << hostBits) - 1n };
}

/** True when two CIDRs share an address. */
export const overlaps = (a: Cidr, b: Cidr): boolean => a.family === b.family && a.first <= b.last && b.first <= a.last;
