/**
 * NAT and filtering for masquerade interfaces, in the pod's `ip` nftables family:
 * - in: traffic from the pod link to the pod IP is DNAT-ed to the guest for the listed ports only — no list, no port;
 * - out: only the guest's own address, from its bridge, leaves, only through its pod link, SNAT-ed to the pod IP;
 * - forward policy drop: whatever else would cross the pod (a neighbour routing straight to the private guest address,
 *   traffic from other pod links, guest traffic to other links or to link-local addresses such as the
 *   169.254.169.254 metadata service) does not;
 * - the pod's own stack hears only DHCP and ping from the guest.
 *
 * With the bridge netfilter hooks on (a node with br_netfilter), frames a bridge binding's bridge forwards also pass
 * the `ip` forward hook, with the bridge as both interfaces: those are accepted, since bridge.ts and nft-guest.ts own
 * that traffic.
 */
import { chain, q } from './nft-text';
import type { MasqueradePlan } from './plan';

export interface MasqueradeNat {
  /** Pod link (eth0) and its IPv4 address. */
  readonly link: string;
  readonly podIp: string;
  /** The guest network's bridge and the guest's address on it. */
  readonly bridge: string;
  readonly guestIp: string;
  /** Forwarded ports; empty forwards none. */
  readonly ports: MasqueradePlan['ports'];
}

/** DNAT rules of one interface: one per protocol with listed ports. */
export function dnatRules(n: MasqueradeNat): string[] {
  return (['TCP', 'UDP', 'SCTP'] as const).flatMap((protocol) => {
    const ports = n.ports.filter((p) => (p.protocol ?? 'TCP') === protocol).map((p) => p.port);
    const l4 = protocol.toLowerCase();
    return ports.length
      ? [`iifname ${q(n.link)} ip daddr ${n.podIp} ${l4} dport { ${ports.join(', ')} } dnat to ${n.guestIp}`]
      : [];
  });
}

/** The `ip` family's chains, as the body of the table. `bridgedBridges`: the bridge bindings' bridges. */
export function masqueradeChains(nats: readonly MasqueradeNat[], bridgedBridges: readonly string[]): string[] {
  return [
    chain('prerouting', 'type nat hook prerouting priority dstnat; policy accept;', nats.flatMap(dnatRules)),
    chain(
      'postrouting',
      'type nat hook postrouting priority srcnat; policy accept;',
      nats.map((n) => `ip saddr ${n.guestIp} oifname ${q(n.link)} masquerade`),
    ),
    chain('forward', 'type filter hook forward priority filter; policy drop;', [
      'ct state established,related accept',
      ...nats.flatMap((n) => [
        `iifname ${q(n.bridge)} ip daddr 169.254.0.0/16 counter drop comment "guest: link-local"`,
        `iifname ${q(n.bridge)} oifname ${q(n.link)} ip saddr ${n.guestIp} accept`,
        `iifname ${q(n.link)} oifname ${q(n.bridge)} ip daddr ${n.guestIp} ct status dnat accept`,
      ]),
      ...bridgedBridges.map((b) => `iifname ${q(b)} oifname ${q(b)} accept`),
    ]),
    chain(
      'input',
      'type filter hook input priority filter; policy accept;',
      nats.flatMap((n) => [
        `iifname ${q(n.bridge)} ct state established,related accept`,
        `iifname ${q(n.bridge)} udp dport 67 accept`,
        `iifname ${q(n.bridge)} icmp type echo-request accept`,
        `iifname ${q(n.bridge)} counter drop comment "guest: the pod's own services"`,
      ]),
    ),
  ];
}
