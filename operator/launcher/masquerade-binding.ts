/**
 * Masquerade binding: the guest sits on a private network behind the pod. The bridge holds the network's first
 * host address and is the guest's gateway; the guest gets the second by DHCP. NAT (nftables.ts) connects it to
 * the pod IP; the pod must forward IPv4 for that.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { VmInterface } from '../../api';
import { bridgeName, tapName } from '../pod-layout';
import type { BindingResult } from './bridge-binding';
import { LaunchError } from './failure';
import { nthAddress, parseCidr } from './ipv4';
import { ip, readLink } from './links';
import type { MasqueradeNat } from './nftables';
import type { DnsSettings } from './resolv-conf';

export const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
export const DEFAULT_MASQUERADE_CIDR = '10.0.2.0/30';

export async function setupMasqueradeBinding(args: {
  readonly iface: VmInterface;
  readonly mac: string;
  readonly link: string;
  readonly what: string;
  readonly hostname: string;
  readonly dns: DnsSettings;
}): Promise<BindingResult & { readonly nat: MasqueradeNat }> {
  const { link, what, iface } = args;
  const state = await readLink(link, what);
  if (!state.ipv4) throw new LaunchError(`${what}: pod link ${link} has no IPv4 address to masquerade behind`);
  const cidrText = iface.masquerade?.cidr ?? DEFAULT_MASQUERADE_CIDR;
  const cidr = parseCidr(cidrText);
  const gateway = nthAddress(cidr, 1);
  const guestIp = nthAddress(cidr, 2);
  const bridge = bridgeName(link);
  const tap = tapName(link);
  const mtu = String(state.mtu);

  await ip(['link', 'add', bridge, 'type', 'bridge'], `${what}: create bridge ${bridge}`);
  await ip(['link', 'set', bridge, 'mtu', mtu], `${what}: set MTU of ${bridge}`);
  await ip(['addr', 'add', `${gateway}/${cidr.prefix}`, 'dev', bridge], `${what}: address ${bridge}`);
  await ip(['tuntap', 'add', 'dev', tap, 'mode', 'tap', 'vnet_hdr'], `${what}: create tap ${tap}`);
  await ip(['link', 'set', tap, 'mtu', mtu, 'master', bridge], `${what}: add ${tap} to ${bridge}`);
  for (const dev of [tap, bridge]) await ip(['link', 'set', dev, 'up'], `${what}: bring ${dev} up`);
  enableIpForward(what);

  return {
    nic: { kind: 'tap', tap, mac: args.mac, mtu: state.mtu },
    lease: {
      bridge,
      bridgeAddress: { address: gateway, prefix: cidr.prefix },
      mac: args.mac,
      ip: guestIp,
      prefix: cidr.prefix,
      router: gateway,
      routes: [{ destination: '0.0.0.0/0', gateway }],
      mtu: state.mtu,
      dns: args.dns,
      hostname: args.hostname,
    },
    nat: {
      link,
      podIp: state.ipv4.address,
      bridge,
      guestNetwork: `${cidr.network}/${cidr.prefix}`,
      guestIp,
      ...(iface.masquerade?.ports ? { ports: iface.masquerade.ports } : {}),
    },
  };
}

/** ip_forward is per network namespace, so this changes only the pod. */
function enableIpForward(what: string): void {
  try {
    if (readFileSync(IP_FORWARD, 'utf8').trim() === '1') return;
    writeFileSync(IP_FORWARD, '1\n');
  } catch (e) {
    throw new LaunchError(
      `${what}: masquerade needs net.ipv4.ip_forward=1 in the pod and ${IP_FORWARD} could not be written (${(e as Error).message}); ` +
        'where /proc/sys is read-only, set the pod sysctl net.ipv4.ip_forward=1 (allowed by the kubelet flag --allowed-unsafe-sysctls)',
    );
  }
}
