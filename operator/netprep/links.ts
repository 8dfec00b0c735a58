/** Reads the pod's links with iproute2 (`ip -j`: its JSON is stable across versions), inside the pod's namespace. */
import { LaunchError } from '../launcher/failure';
import { normaliseDestination } from '../launcher/ipv4';
import { ipJson, runIn, type PodNetns } from './netns';

export interface LinkState {
  readonly name: string;
  readonly mac: string;
  readonly mtu: number;
  /** The first IPv4 address, if any (a pod link has at most one in practice). */
  readonly ipv4?: { readonly address: string; readonly prefix: number };
  /** IPv4 routes of the main table that leave through this link, except the one the address's prefix implies. */
  readonly routes: readonly LinkRoute[];
}

export interface LinkRoute {
  /** Normalised destination, `0.0.0.0/0` for the default route. */
  readonly destination: string;
  /** Next hop; absent for on-link routes. */
  readonly gateway?: string;
}

interface IpLink {
  ifname: string;
  address?: string;
  mtu: number;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}
interface IpAddr {
  addr_info?: { family: string; local: string; prefixlen: number }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  protocol?: string;
}

/** The link as `ip -d link` shows it, or undefined when there is none of that name. */
export async function findLink(ns: PodNetns, name: string, what: string): Promise<IpLink | undefined> {
  const links = await ipJson<IpLink[]>(ns, ['-d', 'link', 'show'], `${what}: list links`);
  return links.find((l) => l.ifname === name);
}

/** The link's MAC, MTU, IPv4 address and routes; fails with `what` naming the interface when the link is missing. */
export async function readLink(ns: PodNetns, name: string, what: string): Promise<LinkState> {
  const link = await findLink(ns, name, what);
  if (!link) throw new LaunchError(`${what}: pod link ${name} does not exist (is the network attached to the pod?)`);
  if (!link.address) throw new LaunchError(`${what}: link ${name} has no MAC address`);
  const [addr] = await ipJson<IpAddr[]>(ns, ['-4', 'addr', 'show', 'dev', name], `${what}: read addresses of ${name}`);
  const inet = addr?.addr_info?.find((a) => a.family === 'inet');
  const routes = await ipJson<IpRoute[]>(
    ns,
    ['-4', 'route', 'show', 'table', 'main', 'dev', name],
    `${what}: read routes of ${name}`,
  );
  return {
    name,
    mac: link.address.toLowerCase(),
    mtu: link.mtu,
    ...(inet ? { ipv4: { address: inet.local, prefix: inet.prefixlen } } : {}),
    // The route the kernel derives from the address's prefix the guest derives from the netmask itself.
    routes: routes
      .filter((r) => !(r.protocol === 'kernel' && !r.gateway))
      .map((r) => ({ destination: normaliseDestination(r.dst), ...(r.gateway ? { gateway: r.gateway } : {}) })),
  };
}

/** Creates a link unless one of that name exists (netprep may run twice for a pod). */
export async function ensureLink(
  ns: PodNetns,
  name: string,
  create: readonly string[],
  what: string,
): Promise<IpLink | undefined> {
  const existing = await findLink(ns, name, what);
  if (!existing) await runIn(ns, ['ip', ...create], `${what}: create ${name}`);
  return existing;
}
