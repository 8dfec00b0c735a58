/**
 * Masquerade binding: the guest sits on a private network behind the pod. The bridge holds the network's first host
 * address and is the guest's gateway; the guest gets the second by DHCP. NAT and the forward filter (nft-masquerade.ts)
 * connect it to the pod IP; the pod forwards IPv4 for that (net.ipv4.ip_forward is per network namespace, so setting
 * it changes only the pod).
 */
import { LaunchError } from '../launcher/failure';
import { nthAddress } from '../launcher/ipv4';
import { ensureLink, readLink } from './links';
import { ip, runIn, type PodNetns } from './netns';
import type { ReadyInterface } from './network-ready';
import type { MasqueradeNat } from './nft-masquerade';
import type { MasqueradePlan } from './plan';
import { ensureTap } from './tap';

export interface MasqueradeFacts {
  readonly podIp: string;
  readonly mtu: number;
  readonly gateway: string;
  readonly guestIp: string;
}

/** The pod link's address and MTU (netprep leaves that link as it is) and the private addresses. */
export async function readMasqueradeFacts(ns: PodNetns, plan: MasqueradePlan): Promise<MasqueradeFacts> {
  const state = await readLink(ns, plan.link, plan.what);
  if (!state.ipv4)
    throw new LaunchError(`${plan.what}: pod link ${plan.link} has no IPv4 address to masquerade behind`);
  return {
    podIp: state.ipv4.address,
    mtu: state.mtu,
    gateway: nthAddress(plan.cidr, 1),
    guestIp: nthAddress(plan.cidr, 2),
  };
}

export const masqueradeNat = (plan: MasqueradePlan, facts: MasqueradeFacts): MasqueradeNat => ({
  link: plan.link,
  podIp: facts.podIp,
  bridge: plan.bridge,
  guestIp: facts.guestIp,
  ports: plan.ports,
});

export async function enableIpForward(ns: PodNetns): Promise<void> {
  await runIn(ns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'], 'masquerade: set net.ipv4.ip_forward=1 in the pod');
}

export async function buildMasquerade(
  ns: PodNetns,
  plan: MasqueradePlan,
  facts: MasqueradeFacts,
): Promise<ReadyInterface> {
  const { bridge, tap, what, cidr } = plan;
  await ensureLink(ns, bridge, ['link', 'add', bridge, 'type', 'bridge'], what);
  await ip(ns, ['link', 'set', bridge, 'mtu', String(facts.mtu)], `${what}: set MTU of ${bridge}`);
  await ip(ns, ['addr', 'replace', `${facts.gateway}/${cidr.prefix}`, 'dev', bridge], `${what}: address ${bridge}`);
  await ensureTap(ns, { name: tap, mtu: facts.mtu, bridge }, what);
  await ip(ns, ['link', 'set', bridge, 'up'], `${what}: bring ${bridge} up`);
  return {
    nic: { kind: 'tap', tap, mac: plan.mac, mtu: facts.mtu },
    dhcp: {
      bridge,
      bridgeAddress: { address: facts.gateway, prefix: cidr.prefix },
      mac: plan.mac,
      ip: facts.guestIp,
      prefix: cidr.prefix,
      router: facts.gateway,
      routes: [{ destination: '0.0.0.0/0', gateway: facts.gateway }],
      mtu: facts.mtu,
    },
  };
}
