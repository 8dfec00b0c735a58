/**
 * NETWORK_READY (`/var/run/kubevisor/network-ready.json`): the node daemon's answer to the launcher's network request.
 * Per bridge or masquerade interface it names the TAP Cloud Hypervisor opens and, where the guest is addressed by DHCP,
 * the lease the launcher's dnsmasq serves; or it carries one line saying why the network could not be prepared.
 *
 * The daemon writes it into the pod's run dir; the launcher parses it strictly, since anything in the run dir could
 * also have been written by whoever can exec into the pod.
 *
 * ```json
 * { "version": 1, "request": "<the request's id>",
 *   "interfaces": { "<interface name>": {
 *     "nic": { "kind": "tap", "tap": "tap-eth0", "mac": "0a:58:0a:4d:00:02", "mtu": 1400 },
 *     "dhcp": { "bridge": "br-eth0", "bridgeAddress": { "address": "169.254.200.1", "prefix": 30 },
 *               "mac": "0a:58:0a:4d:00:02", "ip": "10.77.0.2", "prefix": 24, "router": "10.77.0.1",
 *               "routes": [{ "destination": "0.0.0.0/0", "gateway": "10.77.0.1" }], "mtu": 1400 } } } }
 * { "version": 1, "request": "<id>", "error": "interface pod (spec.instance.interfaces[0]): …" }
 * ```
 */
import { LaunchError } from '../launcher/failure';
import { isCidr, isIpv4, isLinkName, isMac, isMtu, isPrefix } from './values';

export const NETWORK_READY_VERSION = 1 as const;

/** The TAP of a bridge or masquerade interface, as the VmConfig needs it. */
export interface ReadyTap {
  readonly kind: 'tap';
  readonly tap: string;
  /** The guest's MAC. */
  readonly mac: string;
  readonly mtu: number;
}

/** The DHCP lease of a guest, as the network defines it (the launcher adds DNS and the host name from the pod). */
export interface NetworkLease {
  /** Bridge dnsmasq listens on. */
  readonly bridge: string;
  /** The bridge's own address and prefix (dnsmasq's server identifier). */
  readonly bridgeAddress: { readonly address: string; readonly prefix: number };
  readonly mac: string;
  readonly ip: string;
  readonly prefix: number;
  /** Default gateway (DHCP option 3), if the guest has one. */
  readonly router?: string;
  /** Classless static routes (option 121), the default route included; `gateway` absent = on-link. */
  readonly routes: readonly { readonly destination: string; readonly gateway?: string }[];
  readonly mtu: number;
}

export interface ReadyInterface {
  readonly nic: ReadyTap;
  /** Absent on a network without IPv4 (an L2-only Multus network): the guest configures itself. */
  readonly dhcp?: NetworkLease;
}

interface ReadyCommon {
  readonly version: typeof NETWORK_READY_VERSION;
  /** The id of the request this answers (absent when no readable request was found). */
  readonly request?: string;
}

/** What netprep prepared, by VM interface name (bridge and masquerade interfaces only). */
export interface NetworkPrepared extends ReadyCommon {
  readonly interfaces: Readonly<Record<string, ReadyInterface>>;
}

/** Why it could not: one line, shown to the user in the launcher's termination message. */
export interface NetworkFailed extends ReadyCommon {
  readonly error: string;
}

export type NetworkReady = NetworkPrepared | NetworkFailed;

/** Bounds on what the launcher accepts (the API allows 16 interfaces; a pod link has a handful of routes). */
const MAX_INTERFACES = 16;
const MAX_ROUTES = 64;
const MAX_ERROR = 2000;
/** Bytes the launcher reads at most; a legitimate file is a few KiB. */
export const NETWORK_READY_MAX_BYTES = 256 * 1024;

export const formatNetworkReady = (ready: NetworkReady): string => `${JSON.stringify(ready, null, 2)}\n`;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(what: string): never {
  throw new LaunchError(`network-ready.json: ${what}`);
}

function only(o: Json, keys: readonly string[], where: string): void {
  const extra = Object.keys(o).filter((k) => !keys.includes(k));
  if (extra.length) fail(`${where} has unknown keys ${extra.join(', ')}`);
}

function tapOf(v: unknown, where: string): ReadyTap {
  if (!isObject(v)) fail(`${where} is not an object`);
  only(v, ['kind', 'tap', 'mac', 'mtu'], where);
  if (v.kind !== 'tap') fail(`${where}.kind must be tap`);
  if (!isLinkName(v.tap)) fail(`${where}.tap is not an interface name`);
  if (!isMac(v.mac)) fail(`${where}.mac is not a MAC address`);
  if (!isMtu(v.mtu)) fail(`${where}.mtu is not an MTU`);
  return { kind: 'tap', tap: v.tap, mac: v.mac, mtu: v.mtu };
}

function leaseOf(v: unknown, where: string): NetworkLease {
  if (!isObject(v)) fail(`${where} is not an object`);
  only(v, ['bridge', 'bridgeAddress', 'mac', 'ip', 'prefix', 'router', 'routes', 'mtu'], where);
  const b = v.bridgeAddress;
  if (!isLinkName(v.bridge)) fail(`${where}.bridge is not an interface name`);
  if (!isObject(b) || !isIpv4(b.address) || !isPrefix(b.prefix) || Object.keys(b).length !== 2) {
    fail(`${where}.bridgeAddress must be { address, prefix }`);
  }
  if (!isMac(v.mac)) fail(`${where}.mac is not a MAC address`);
  if (!isIpv4(v.ip) || !isPrefix(v.prefix)) fail(`${where}.ip/prefix is not an IPv4 address and prefix`);
  if (v.router !== undefined && !isIpv4(v.router)) fail(`${where}.router is not an IPv4 address`);
  if (!isMtu(v.mtu)) fail(`${where}.mtu is not an MTU`);
  if (!Array.isArray(v.routes) || v.routes.length > MAX_ROUTES)
    fail(`${where}.routes must be a list (≤ ${MAX_ROUTES})`);
  const routes = v.routes.map((r: unknown, i) => {
    const at = `${where}.routes[${i}]`;
    if (!isObject(r)) fail(`${at} is not an object`);
    only(r, ['destination', 'gateway'], at);
    if (!isCidr(r.destination)) fail(`${at}.destination is not an IPv4 CIDR`);
    if (r.gateway !== undefined && !isIpv4(r.gateway)) fail(`${at}.gateway is not an IPv4 address`);
    return { destination: r.destination, ...(r.gateway !== undefined ? { gateway: r.gateway } : {}) };
  });
  return {
    bridge: v.bridge,
    bridgeAddress: { address: b.address as string, prefix: b.prefix as number },
    mac: v.mac,
    ip: v.ip,
    prefix: v.prefix,
    ...(v.router !== undefined ? { router: v.router } : {}),
    routes,
    mtu: v.mtu,
  };
}

/** Parses and checks a NETWORK_READY file; throws a {@link LaunchError} naming the first thing wrong. */
export function parseNetworkReady(text: string): NetworkReady {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    fail(`not JSON (${(e as Error).message})`);
  }
  if (!isObject(v)) fail('not a JSON object');
  if (v.version !== NETWORK_READY_VERSION) fail(`version must be ${NETWORK_READY_VERSION}`);
  if (v.request !== undefined && typeof v.request !== 'string') fail('request must be a string');
  const common = { version: NETWORK_READY_VERSION, ...(typeof v.request === 'string' ? { request: v.request } : {}) };
  if ('error' in v) {
    only(v, ['version', 'request', 'error'], 'the file');
    if (typeof v.error !== 'string' || !v.error || v.error.length > MAX_ERROR) fail('error must be a short string');
    return { ...common, error: v.error.replace(/\s*\n\s*/g, ' | ') };
  }
  only(v, ['version', 'request', 'interfaces'], 'the file');
  if (!isObject(v.interfaces)) fail('interfaces must be an object');
  const entries = Object.entries(v.interfaces);
  if (entries.length > MAX_INTERFACES) fail(`more than ${MAX_INTERFACES} interfaces`);
  const interfaces: Record<string, ReadyInterface> = {};
  for (const [name, entry] of entries) {
    const where = `interfaces.${name}`;
    if (!isObject(entry)) fail(`${where} is not an object`);
    only(entry, ['nic', 'dhcp'], where);
    interfaces[name] = {
      nic: tapOf(entry.nic, `${where}.nic`),
      ...(entry.dhcp !== undefined ? { dhcp: leaseOf(entry.dhcp, `${where}.dhcp`) } : {}),
    };
  }
  return { ...common, interfaces };
}
