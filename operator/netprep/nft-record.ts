/**
 * The record of what a bridge binding's pod link looked like before netprep moved its address and MAC to the guest,
 * kept in the pod's own nftables table: one regular chain per link (`record-<link>`, no hook and never jumped to, so it
 * is never evaluated) whose rules carry the facts in their comments. It lives and dies with the pod's network
 * namespace, only CAP_NET_ADMIN there can change it (the daemon, not the pod), and it is loaded in the same transaction
 * as the rules that enforce it — before any link changes — so a daemon restarted half-way finds it and converges.
 *
 *   continue comment "link mac=0a:58:0a:4d:00:02 mtu=1400 ipv4=10.77.0.2/24"
 *   continue comment "route 10.78.0.0/16 via 10.77.0.1"
 *   continue comment "route 10.79.0.0/16"                      (on-link)
 */
import { LaunchError } from '../launcher/failure';
import type { BridgeFacts } from './bridge';
import { chain } from './nft-text';
import { isCidr, isIpv4, isLinkName, isMac, isMtu, isPrefix } from './values';

const PREFIX = 'record-';
export const recordChain = (link: string) => `${PREFIX}${link}`;

/** The comment lines of one link's record (each well under nftables' 128-byte comment limit). */
export function recordLines(facts: BridgeFacts): string[] {
  const ip = facts.ipv4 ? ` ipv4=${facts.ipv4.address}/${facts.ipv4.prefix}` : '';
  return [
    `link mac=${facts.mac} mtu=${facts.mtu}${ip}`,
    ...facts.routes.map((r) => `route ${r.destination}${r.gateway ? ` via ${r.gateway}` : ''}`),
  ];
}

/** The record chain of one link, as nftables text. */
export const recordChainText = (facts: BridgeFacts): string =>
  chain(
    recordChain(facts.name),
    undefined,
    recordLines(facts).map((l) => `continue comment "${l}"`),
  );

function bad(link: string, line: string): never {
  throw new LaunchError(`the pod's nftables record of link ${link} is damaged: ${line}`);
}

/** Rebuilds one link's facts from its comment lines. */
export function parseRecord(link: string, lines: readonly string[]): BridgeFacts {
  const [head, ...rest] = lines;
  const m = /^link mac=(\S+) mtu=(\d+)(?: ipv4=(\S+))?$/.exec(head ?? '');
  if (!m || !isMac(m[1]) || !isMtu(Number(m[2])) || (m[3] !== undefined && !isCidr(m[3]))) bad(link, head ?? '');
  const [address, prefix] = m[3]?.split('/') ?? [];
  const routes = rest.map((line) => {
    const r = /^route (\S+)(?: via (\S+))?$/.exec(line);
    if (!r || !isCidr(r[1]) || (r[2] !== undefined && !isIpv4(r[2]))) bad(link, line);
    return { destination: r[1], ...(r[2] !== undefined ? { gateway: r[2] } : {}) };
  });
  const ipv4 = m[3] !== undefined ? { address, prefix: Number(prefix) } : undefined;
  if (ipv4 && !isPrefix(ipv4.prefix)) bad(link, head ?? '');
  return { name: link, mac: m[1], mtu: Number(m[2]), ...(ipv4 ? { ipv4 } : {}), routes };
}

interface NftJsonRule {
  rule?: { family?: string; table?: string; chain?: string; comment?: string };
}

/** The records in `nft -j list table bridge <table>` output, by link name. */
export function parseRecords(nftJson: string): Map<string, BridgeFacts> {
  let parsed: { nftables?: NftJsonRule[] };
  try {
    parsed = JSON.parse(nftJson) as { nftables?: NftJsonRule[] };
  } catch {
    throw new LaunchError(`nft printed no JSON: ${nftJson.slice(0, 200)}`);
  }
  const lines = new Map<string, string[]>();
  for (const { rule } of parsed.nftables ?? []) {
    if (!rule?.chain?.startsWith(PREFIX)) continue;
    const link = rule.chain.slice(PREFIX.length);
    if (!isLinkName(link)) continue;
    lines.set(link, [...(lines.get(link) ?? []), rule.comment ?? '']);
  }
  return new Map([...lines].map(([link, l]) => [link, parseRecord(link, l)]));
}
