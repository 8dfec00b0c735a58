/**
 * Anti-spoofing at layer 2, for every guest TAP (bridge and masquerade bindings alike), in the pod's `bridge` nftables
 * family, where the guest cannot touch it (it has no access to the pod's network namespace, and the pod has no
 * CAP_NET_ADMIN to change it either). A frame from the TAP passes only if it carries the guest's MAC, and is ARP for
 * Ethernet/IPv4 whose sender is the guest's MAC and address (or 0.0.0.0, an address probe), or IPv4 from the guest's
 * address, or the DHCP client's first broadcast from 0.0.0.0. Everything else — other MACs, other sources, IPv6, VLAN
 * tags — is dropped, and counted per reason. The link-local metadata address is never reachable from the guest.
 *
 * ARP and DHCP from the guest pass only within a rate ({@link GUEST_RATES}), the excess dropped and counted: each ARP
 * broadcast reaches every port of the bridge and, on a bridge binding, the pod network beyond it, and each DHCP request
 * wakes the pod's dnsmasq, which logs it — a guest flooding either would load its neighbours and the pod. The rates
 * are far above what a guest needs (a lease takes a few packets; ARP a few per new neighbour), and the limits are per
 * TAP, so one guest's flood does not eat another's.
 *
 * A bridge binding also bridges the pod link: DHCP then stays between the guest and its dnsmasq — the guest's
 * broadcasts do not leave through the pod link, dnsmasq hears no request from it and sends no answer out of it, and no
 * DHCP server on the pod network answers the guest.
 *
 * On a network whose pod link has no IPv4 address (an L2-only Multus network) only the MAC and the rates are enforced:
 * netprep does not know which addresses the guest will use there.
 */
import { chain, q } from './nft-text';

export interface GuestPort {
  readonly tap: string;
  readonly mac: string;
  /** The guest's IPv4 address, if the network has one. */
  readonly ip?: string;
  /** Bridge binding: the pod link on the same bridge. */
  readonly podLink?: string;
}

export const METADATA_IP = '169.254.169.254';

/** Comments on the counted drop rules (the launch suite reads the counters by them). */
export const DROP = {
  mac: 'guest: not its MAC',
  arp: 'guest: ARP not from its address',
  metadata: 'guest: link-local metadata',
  ip: 'guest: not IPv4 from its address',
  arpRate: 'guest: ARP over its rate',
  dhcpRate: 'guest: DHCP over its rate',
} as const;

/** Packets per second and burst the guest may send of each (nftables `limit`, a token bucket per rule and so per TAP). */
export const GUEST_RATES = {
  arp: { perSecond: 50, burst: 100 },
  dhcp: { perSecond: 20, burst: 40 },
} as const;

const over = (rate: { perSecond: number; burst: number }) =>
  `limit rate over ${rate.perSecond}/second burst ${rate.burst} packets`;

export const guestChain = (tap: string) => `guest-${tap}`;

/** Rules of the chain every frame from the guest's TAP jumps to. */
export function guestRules(port: GuestPort): string[] {
  const rules = [
    `ether saddr != ${port.mac} counter drop comment "${DROP.mac}"`,
    // Before anything accepts ARP or DHCP: the excess is dropped whatever it carries (a DHCP renewal comes from the
    // guest's own address, which the rules below accept).
    `ether type arp ${over(GUEST_RATES.arp)} counter drop comment "${DROP.arpRate}"`,
    `udp dport 67 ${over(GUEST_RATES.dhcp)} counter drop comment "${DROP.dhcpRate}"`,
  ];
  if (port.ip === undefined) return [...rules, 'accept'];
  return [
    ...rules,
    // The ARP layout is checked before its fields: a frame claiming other address lengths would move them.
    `ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp saddr ether ${port.mac} arp saddr ip { ${port.ip}, 0.0.0.0 } accept`,
    `ether type arp counter drop comment "${DROP.arp}"`,
    `ip daddr ${METADATA_IP} counter drop comment "${DROP.metadata}"`,
    `ip saddr ${port.ip} accept`,
    'ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept',
    `counter drop comment "${DROP.ip}"`,
  ];
}

/** The `bridge` family's chains for the guest ports, as part of the body of the table. */
export function guestChains(ports: readonly GuestPort[]): string[] {
  const bridged = ports.filter((p): p is GuestPort & { podLink: string } => p.podLink !== undefined);
  const chains = [
    chain(
      'prerouting',
      'type filter hook prerouting priority filter; policy accept;',
      ports.map((p) => `iifname ${q(p.tap)} jump ${guestChain(p.tap)}`),
    ),
    ...ports.map((p) => chain(guestChain(p.tap), undefined, guestRules(p))),
  ];
  if (bridged.length) {
    chains.push(
      chain(
        'input',
        'type filter hook input priority filter; policy accept;',
        bridged.map((p) => `iifname ${q(p.podLink)} udp dport 67 drop`),
      ),
      chain(
        'output',
        'type filter hook output priority filter; policy accept;',
        bridged.map((p) => `oifname ${q(p.podLink)} udp sport 67 drop`),
      ),
      chain(
        'forward',
        'type filter hook forward priority filter; policy accept;',
        bridged.flatMap((p) => [
          `iifname ${q(p.tap)} oifname ${q(p.podLink)} udp dport 67 drop`,
          `iifname ${q(p.podLink)} oifname ${q(p.tap)} udp sport 67 drop`,
        ]),
      ),
    );
  }
  return chains;
}
