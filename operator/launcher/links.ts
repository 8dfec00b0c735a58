/** Reads and changes the pod's links with iproute2 (`ip -j` for reading: its JSON is stable across versions). */
import { LaunchError } from './failure';
import { run } from './command';
import { normaliseDestination } from './ipv4';

export interface LinkState {
  readonly name: string;
  readonly mac: string;
  readonly mtu: number;
  /** The first IPv4 address, if any (a pod link has at most one in practice). */
  readonly ipv4?: { readonly address: string; readonly prefix: number };
  /** IPv4 routes of the main table that leave through this link. */
  readonly routes: readonly LinkRoute[];
}

export interface LinkRoute {
  /** Normalised destination, `0.0.0.0/0` for the default route. */
  readonly destination: string;
  /** Next hop; absent for on-link routes. */
  readonly gateway?: string;
  /** True for the route the kernel derives from the address's prefix (the guest derives it from the netmask). */
  readonly fromAddress: boolean;
}

interface IpLink {
  ifname: string;
  address?: string;
  mtu: number;
}
interface IpAddr {
  addr_info?: { family: string; local: string; prefixlen: number }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  protocol?: string;
}

async function ipJson<T>(args: string[], what: string): Promise<T> {
  const { stdout } = await run(['ip', '-j', ...args], { what });
  try {
    return JSON.parse(stdout) as T;
  } catch {
    throw new LaunchError(`${what}: ip ${args.join(' ')} printed no JSON: ${stdout.slice(0, 200)}`);
  }
}

/** The link's MAC, MTU, IPv4 address and routes; fails with `what` naming the interface when the link is missing. */
export async function readLink(name: string, what: string): Promise<LinkState> {
  const [link] = await ipJson<IpLink[]>(['link', 'show', 'dev', name], `${what}: read link ${name}`);
  if (!link?.address) throw new LaunchError(`${what}: link ${name} has no MAC address`);
  const [addr] = await ipJson<IpAddr[]>(['-4', 'addr', 'show', 'dev', name], `${what}: read addresses of ${name}`);
  const inet = addr?.addr_info?.find((a) => a.family === 'inet');
  const ipv4 = inet ? { address: inet.local, prefix: inet.prefixlen } : undefined;
  const routes = await ipJson<IpRoute[]>(
    ['-4', 'route', 'show', 'table', 'main', 'dev', name],
    `${what}: read routes of ${name}`,
  );
  return {
    name,
    mac: link.address.toLowerCase(),
    mtu: link.mtu,
    ...(ipv4 ? { ipv4 } : {}),
    routes: routes.map((r) => ({
      destination: normaliseDestination(r.dst),
      ...(r.gateway ? { gateway: r.gateway } : {}),
      fromAddress: r.protocol === 'kernel' && !r.gateway,
    })),
  };
}

/** Whether a link exists (for a clear message before anything is changed). */
export async function linkExists(name: string): Promise<boolean> {
  try {
    await run(['ip', 'link', 'show', 'dev', name]);
    return true;
  } catch {
    return false;
  }
}

/** `ip <args>` with the step named in any error. */
export function ip(args: readonly string[], what: string): Promise<unknown> {
  return run(['ip', ...args], { what });
}
