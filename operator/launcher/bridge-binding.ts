/**
 * Bridge binding: the guest takes the pod link's MAC and IPv4 address, so the pod network sees the guest as the
 * pod. The link joins a bridge with the guest's TAP; its address is removed from the pod altogether, so the pod's
 * own stack never answers ARP or traffic meant for the guest (Virtink moves it to a dummy link instead; nothing
 * in a VM pod needs the address, and some kernels have no dummy driver). The link gets a fresh MAC, because a
 * bridge delivers frames for its ports' own MACs locally instead of forwarding them to the guest.
 */
import { randomBytes } from 'node:crypto';
import { bridgeName, tapName } from '../pod-layout';
import type { GuestLease } from './dhcp';
import { ip, readLink } from './links';
import type { DnsSettings } from './resolv-conf';
import type { PreparedInterface } from './vm-config';

export interface BindingResult {
  readonly nic: PreparedInterface;
  /** DHCP to serve on the bridge; absent when the link has no IPv4 address (an L2-only Multus network). */
  readonly lease?: GuestLease;
}

/** A random locally administered unicast MAC for the pod link. */
export function randomLinkMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0] & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * The bridge's own address: link-local, one /30 per network index, only so dnsmasq has a server identifier (it
 * serves the guest's subnet on this link with `shared-network`). It never leaves the pod.
 */
export const bridgeLinkLocal = (networkIndex: number) => ({ address: `169.254.${200 + networkIndex}.1`, prefix: 30 });

export async function setupBridgeBinding(args: {
  readonly link: string;
  readonly networkIndex: number;
  readonly what: string;
  readonly hostname: string;
  readonly dns: DnsSettings;
}): Promise<BindingResult> {
  const { link, what } = args;
  const state = await readLink(link, what);
  const bridge = bridgeName(link);
  const tap = tapName(link);
  const bridgeAddress = bridgeLinkLocal(args.networkIndex);
  const mtu = String(state.mtu);

  await ip(['link', 'add', bridge, 'type', 'bridge'], `${what}: create bridge ${bridge}`);
  await ip(['link', 'set', bridge, 'mtu', mtu], `${what}: set MTU of ${bridge}`);
  await ip(
    ['addr', 'add', `${bridgeAddress.address}/${bridgeAddress.prefix}`, 'dev', bridge],
    `${what}: address ${bridge}`,
  );
  // Taking the link down also drops its routes; they were read above and go to the guest by DHCP.
  await ip(['link', 'set', link, 'down'], `${what}: take ${link} down`);
  if (state.ipv4) {
    await ip(
      ['addr', 'del', `${state.ipv4.address}/${state.ipv4.prefix}`, 'dev', link],
      `${what}: move the address off ${link}`,
    );
  }
  await ip(['link', 'set', link, 'address', randomLinkMac()], `${what}: give ${link} a new MAC`);
  await ip(['link', 'set', link, 'master', bridge], `${what}: add ${link} to ${bridge}`);
  await ip(['tuntap', 'add', 'dev', tap, 'mode', 'tap', 'vnet_hdr'], `${what}: create tap ${tap}`);
  await ip(['link', 'set', tap, 'mtu', mtu, 'master', bridge], `${what}: add ${tap} to ${bridge}`);
  for (const dev of [tap, link, bridge]) await ip(['link', 'set', dev, 'up'], `${what}: bring ${dev} up`);

  const nic: PreparedInterface = { kind: 'tap', tap, mac: state.mac, mtu: state.mtu };
  if (!state.ipv4) return { nic };
  const routes = state.routes
    .filter((r) => !r.fromAddress)
    .map((r) => ({ destination: r.destination, ...(r.gateway ? { gateway: r.gateway } : {}) }));
  const router = routes.find((r) => r.destination === '0.0.0.0/0')?.gateway;
  return {
    nic,
    lease: {
      bridge,
      bridgeAddress,
      mac: state.mac,
      ip: state.ipv4.address,
      prefix: state.ipv4.prefix,
      ...(router ? { router } : {}),
      routes,
      mtu: state.mtu,
      dns: args.dns,
      hostname: args.hostname,
    },
  };
}
