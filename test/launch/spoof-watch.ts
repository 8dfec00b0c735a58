/**
 * What a spoofing guest's neighbours see. The peer namespace (the rest of the pod network) counts, at the ingress of
 * its end of the pod's veth, every frame that the guest's spoofing attempts (guest.ts `spoof`, `probes`) would produce
 * if they got out of the pod: frames to the spoof targets, from the forged MAC or source address, ARP claiming the
 * forged address, and anything for the metadata address. A counter that stays at 0 while the pod's own drop counters
 * rise shows the node daemon's rules stopped it, and where.
 *
 * The peer also serves HTTP on port 80 of every address it has, including 169.254.169.254 (as a cloud's metadata
 * service would), so a blocked probe fails because of the rules and not for want of a server.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { NetnsProcess } from './guest';
import { startInNetns } from './guest';
import type { PodNetwork } from './pod-netns';
import { execIn, ipIn } from './pod-netns';

/** Addresses the guest aims at, all on the peer's loopback behind the pod's route to 10.78.0.0/16. */
export const SPOOF = {
  control: '10.78.0.10',
  macTarget: '10.78.0.11',
  ipTarget: '10.78.0.12',
  mac: '52:54:00:de:ad:01',
  /** Another pod's address on the pod network. */
  ip: '10.77.0.50',
  metadata: '169.254.169.254',
} as const;

export const PEER_HTTP_PORT = 80;

/** Peer counters by what they count. */
export type PeerCounts = Record<
  'control' | 'macTarget' | 'forgedMac' | 'ipTarget' | 'forgedIp' | 'arp' | 'metadata',
  number
>;

const RULES: Record<keyof PeerCounts, string> = {
  control: `ip daddr ${SPOOF.control}`,
  macTarget: `ip daddr ${SPOOF.macTarget}`,
  forgedMac: `ether saddr ${SPOOF.mac}`,
  ipTarget: `ip daddr ${SPOOF.ipTarget}`,
  forgedIp: `ip saddr ${SPOOF.ip}`,
  arp: `arp saddr ip ${SPOOF.ip}`,
  metadata: `ip daddr ${SPOOF.metadata}`,
};

export interface PeerWatch {
  counts(): Promise<PeerCounts>;
  stop(): Promise<void>;
}

/** Readings of `nft -j list table …` counters, by rule comment. */
export async function countersIn(ns: string, family: string, table: string): Promise<Record<string, number>> {
  const json = JSON.parse(await execIn(ns, ['nft', '-j', 'list', 'table', family, table])) as {
    nftables: { rule?: { comment?: string; expr?: { counter?: { packets: number } }[] } }[];
  };
  const out: Record<string, number> = {};
  for (const { rule } of json.nftables) {
    const counter = rule?.expr?.find((e) => e.counter)?.counter;
    if (rule?.comment && counter) out[rule.comment] = (out[rule.comment] ?? 0) + counter.packets;
  }
  return out;
}

export async function watchPeer(pod: PodNetwork, dir: string): Promise<PeerWatch> {
  for (const ip of [SPOOF.control, SPOOF.macTarget, SPOOF.ipTarget, SPOOF.metadata]) {
    await ipIn(pod.peerNs, 'addr', 'add', `${ip}/32`, 'dev', 'lo');
  }
  const file = path.join(dir, 'peer-watch.nft');
  fs.writeFileSync(
    file,
    [
      'table netdev kvspy {',
      '  chain ingress {',
      '    type filter hook ingress device "veth-pod" priority filter; policy accept;',
      ...Object.entries(RULES).map(([name, match]) => `    ${match} counter comment "${name}"`),
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  await execIn(pod.peerNs, ['nft', '-f', file]);
  const server: NetnsProcess = startInNetns(
    pod.peerNs,
    [process.execPath, '-e', `require('node:http').createServer((q, r) => r.end('peer\\n')).listen(${PEER_HTTP_PORT})`],
    path.join(dir, 'peer-http.log'),
  );
  return {
    counts: async () => {
      const c = await countersIn(pod.peerNs, 'netdev', 'kvspy');
      return Object.fromEntries(Object.keys(RULES).map((k) => [k, c[k] ?? 0])) as PeerCounts;
    },
    stop: () => server.stop(),
  };
}
