/**
 * NAT for masquerade interfaces, as one nftables table: guest traffic leaves SNAT-ed to the pod IP, and traffic to
 * the pod IP is DNAT-ed to the guest — for the listed ports only, or for everything when no ports are listed. A
 * forward filter drops whatever else arrives for the guest network, so a neighbour that routes straight to the
 * private guest address cannot get around the port list.
 */
import type { VmInterface } from '../../api';

export interface MasqueradeNat {
  /** Pod link (e.g. eth0) and its IPv4 address. */
  readonly link: string;
  readonly podIp: string;
  /** Bridge of the guest network and the guest network itself (CIDR). */
  readonly bridge: string;
  readonly guestNetwork: string;
  readonly guestIp: string;
  /** Forwarded ports; undefined forwards everything. */
  readonly ports?: NonNullable<VmInterface['masquerade']>['ports'];
}

export const NFT_TABLE = 'kubevisor';

const quote = (name: string) => `"${name}"`;

export function masqueradeRuleset(nats: readonly MasqueradeNat[]): string {
  const pre: string[] = [];
  const post: string[] = [];
  const fwd: string[] = [];
  for (const n of nats) {
    const from = `iifname ${quote(n.link)} ip daddr ${n.podIp}`;
    if (n.ports === undefined) {
      pre.push(`${from} dnat to ${n.guestIp}`);
    } else {
      for (const protocol of ['TCP', 'UDP', 'SCTP'] as const) {
        const ports = n.ports.filter((p) => (p.protocol ?? 'TCP') === protocol).map((p) => p.port);
        if (ports.length)
          pre.push(`${from} ${protocol.toLowerCase()} dport { ${ports.join(', ')} } dnat to ${n.guestIp}`);
      }
    }
    post.push(`ip saddr ${n.guestNetwork} oifname ${quote(n.link)} masquerade`);
    fwd.push(`iifname ${quote(n.link)} oifname ${quote(n.bridge)} ct status dnat accept`);
    fwd.push(`iifname ${quote(n.link)} oifname ${quote(n.bridge)} ct state established,related accept`);
    fwd.push(`iifname ${quote(n.link)} oifname ${quote(n.bridge)} drop`);
  }
  const chain = (name: string, hook: string, rules: string[]) =>
    [`  chain ${name} {`, `    ${hook}`, ...rules.map((r) => `    ${r}`), '  }'].join('\n');
  return [
    '# kubevisor launcher: NAT for masquerade interfaces',
    // Declaring then flushing makes the file loadable again (by hand, when debugging) without duplicate rules.
    `table ip ${NFT_TABLE}`,
    `flush table ip ${NFT_TABLE}`,
    `table ip ${NFT_TABLE} {`,
    chain('prerouting', 'type nat hook prerouting priority dstnat; policy accept;', pre),
    chain('postrouting', 'type nat hook postrouting priority srcnat; policy accept;', post),
    chain('forward', 'type filter hook forward priority filter; policy accept;', fwd),
    '}',
    '',
  ].join('\n');
}
