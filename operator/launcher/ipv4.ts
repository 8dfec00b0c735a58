/** IPv4 arithmetic for the bindings (the launch path is IPv4 only, as the guest gets its address by DHCPv4). */

export interface Ipv4Cidr {
  /** The network address. */
  readonly network: string;
  readonly prefix: number;
}

export function ipv4ToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new Error(`${ip} is not an IPv4 address`);
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** Parses `a.b.c.d/len`, normalising the address to the network's first address. */
export function parseCidr(cidr: string): Ipv4Cidr {
  const [ip, len, extra] = cidr.split('/');
  const prefix = Number(len);
  if (extra !== undefined || !/^\d{1,2}$/.test(len ?? '') || prefix > 32)
    throw new Error(`${cidr} is not an IPv4 CIDR`);
  const size = 2 ** (32 - prefix);
  return { network: intToIpv4(Math.floor(ipv4ToInt(ip) / size) * size), prefix };
}

/** The n-th address of a network (1 = first host). */
export function nthAddress(cidr: Ipv4Cidr, n: number): string {
  return intToIpv4(ipv4ToInt(cidr.network) + n);
}

export function netmask(prefix: number): string {
  return intToIpv4(prefix === 0 ? 0 : 2 ** 32 - 2 ** (32 - prefix));
}

/** `10.1.2.3/24` → `10.1.2.0/24`; `default` stays `0.0.0.0/0`. */
export function normaliseDestination(dst: string): string {
  if (dst === 'default') return '0.0.0.0/0';
  const c = parseCidr(dst.includes('/') ? dst : `${dst}/32`);
  return `${c.network}/${c.prefix}`;
}
