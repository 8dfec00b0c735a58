/**
 * Bridge binding: the guest takes the pod link's MAC and IPv4 address, so the pod network sees the guest as the pod.
 * The link joins a bridge with the guest's TAP; its address is removed from the pod altogether, so the pod's own stack
 * never answers ARP or traffic meant for the guest (Virtink moves it to a dummy link instead; nothing in a VM pod needs
 * the address, and some kernels have no dummy driver). The link gets a fresh MAC, because a bridge delivers frames for
 * its ports' own MACs locally instead of forwarding them to the guest.
 *
 * Moving the address destroys what it moved, so what the link looked like is kept in the pod's nftables (nft-record.ts)
 * before anything changes, and a second run for the same pod rebuilds its answer from that record.
 */
import { randomBytes } from 'node:crypto';
import { LaunchError } from '../launcher/failure';
import { readLink, ensureLink, findLink, type LinkState } from './links';
import { ip, type PodNetns } from './netns';
import type { ReadyInterface } from './network-ready';
import type { BridgePlan } from './plan';
import { ensureTap } from './tap';

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

/** What the pod link looked like before netprep: the guest's identity on that network. */
export type BridgeFacts = LinkState;

/** The link as it is now, for a first run (a later run uses the record instead). */
export async function readBridgeFacts(ns: PodNetns, plan: BridgePlan): Promise<BridgeFacts> {
  const state = await readLink(ns, plan.link, plan.what);
  if (state.mac === '00:00:00:00:00:00') throw new LaunchError(`${plan.what}: pod link ${plan.link} has no MAC`);
  return state;
}

/** Builds bridge, TAP and link as described above; each step leaves an already-built pod as it is. */
export async function buildBridge(ns: PodNetns, plan: BridgePlan, facts: BridgeFacts): Promise<ReadyInterface> {
  const { link, bridge, tap, what } = plan;
  const bridgeAddress = bridgeLinkLocal(plan.networkIndex);
  const mtu = String(facts.mtu);

  await ensureLink(ns, bridge, ['link', 'add', bridge, 'type', 'bridge'], what);
  await ip(ns, ['link', 'set', bridge, 'mtu', mtu], `${what}: set MTU of ${bridge}`);
  await ip(
    ns,
    ['addr', 'replace', `${bridgeAddress.address}/${bridgeAddress.prefix}`, 'dev', bridge],
    `${what}: address ${bridge}`,
  );

  const current = await findLink(ns, link, what);
  if (!current) throw new LaunchError(`${what}: pod link ${link} disappeared`);
  if (current.address?.toLowerCase() === facts.mac) {
    // First run: taking the link down also drops its routes; they are in `facts` and go to the guest by DHCP.
    await ip(ns, ['link', 'set', link, 'down'], `${what}: take ${link} down`);
    await ip(ns, ['link', 'set', link, 'address', randomLinkMac()], `${what}: give ${link} a new MAC`);
  }
  if (facts.ipv4) {
    const { stdout } = await ip(ns, ['-4', '-o', 'addr', 'show', 'dev', link], `${what}: read addresses of ${link}`);
    if (stdout.trim()) await ip(ns, ['-4', 'addr', 'flush', 'dev', link], `${what}: move the address off ${link}`);
  }
  await ip(ns, ['link', 'set', link, 'master', bridge], `${what}: add ${link} to ${bridge}`);
  await ensureTap(ns, { name: tap, mtu: facts.mtu, bridge }, what);
  for (const dev of [link, bridge]) await ip(ns, ['link', 'set', dev, 'up'], `${what}: bring ${dev} up`);

  const nic = { kind: 'tap', tap, mac: facts.mac, mtu: facts.mtu } as const;
  if (!facts.ipv4) return { nic };
  const router = facts.routes.find((r) => r.destination === '0.0.0.0/0')?.gateway;
  return {
    nic,
    dhcp: {
      bridge,
      bridgeAddress,
      mac: facts.mac,
      ip: facts.ipv4.address,
      prefix: facts.ipv4.prefix,
      ...(router ? { router } : {}),
      routes: facts.routes,
      mtu: facts.mtu,
    },
  };
}
