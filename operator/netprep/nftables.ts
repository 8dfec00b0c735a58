/**
 * kubevisor's whole nftables ruleset for a VM pod: the `bridge` table (records of the pod links bridge bindings took
 * over, anti-spoofing for every guest TAP, DHCP kept on the guest's side) and, with masquerade interfaces, the `ip`
 * table (NAT and the forward filter). It is loaded in one `nft -f` transaction that replaces both tables whole, so a
 * second load for the same pod leaves the same rules, and there is never a moment with half of them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError } from '../launcher/failure';
import { bridgeName } from '../pod-layout';
import type { BridgeFacts } from './bridge';
import { runIn, type PodNetns } from './netns';
import { guestChains, type GuestPort } from './nft-guest';
import { masqueradeChains, type MasqueradeNat } from './nft-masquerade';
import { table } from './nft-text';
import { parseRecords, recordChainText } from './nft-record';

export const NFT_TABLE = 'kubevisor';

export interface PodRuleset {
  /** Pod links a bridge binding took over, as they were. */
  readonly records: readonly BridgeFacts[];
  readonly guests: readonly GuestPort[];
  readonly nats: readonly MasqueradeNat[];
}

export function podRuleset(r: PodRuleset): string {
  const parts = [
    '# kubevisor netprep: anti-spoofing for the guests, NAT for masquerade (loaded by the node daemon)',
    // Declaring then deleting makes the file replace the tables whole, whether or not they exist.
    `table bridge ${NFT_TABLE}`,
    `delete table bridge ${NFT_TABLE}`,
    `table ip ${NFT_TABLE}`,
    `delete table ip ${NFT_TABLE}`,
    table('bridge', NFT_TABLE, [...r.records.map(recordChainText), ...guestChains(r.guests)]),
  ];
  if (r.nats.length) {
    const bridged = r.guests.flatMap((g) => (g.podLink !== undefined ? [bridgeName(g.podLink)] : []));
    parts.push(table('ip', NFT_TABLE, masqueradeChains(r.nats, bridged)));
  }
  return `${parts.join('\n')}\n`;
}

export async function loadRuleset(ns: PodNetns, ruleset: string): Promise<void> {
  // nft reads the file in the daemon's mount namespace (nsenter changes only the network namespace).
  const dir = mkdtempSync(join(tmpdir(), 'kubevisor-netprep-'));
  try {
    const file = join(dir, 'ruleset.nft');
    writeFileSync(file, ruleset, { mode: 0o600 });
    await runIn(ns, ['nft', '-f', file], 'load the nftables rules');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The records an earlier run left in the pod, by link name (none on a first run). */
export async function readRecords(ns: PodNetns): Promise<Map<string, BridgeFacts>> {
  const { stdout: tables } = await runIn(ns, ['nft', '-j', 'list', 'tables', 'bridge'], 'list nftables tables');
  let present: boolean;
  try {
    const parsed = JSON.parse(tables) as { nftables?: { table?: { name?: string } }[] };
    present = (parsed.nftables ?? []).some((e) => e.table?.name === NFT_TABLE);
  } catch {
    throw new LaunchError(`list nftables tables: nft printed no JSON: ${tables.slice(0, 200)}`);
  }
  if (!present) return new Map();
  const { stdout } = await runIn(ns, ['nft', '-j', 'list', 'table', 'bridge', NFT_TABLE], 'read the nftables record');
  return parseRecords(stdout);
}
