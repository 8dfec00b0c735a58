/**
 * netprep: the privileged half of a VM pod's network, run by the node daemon from the host once the pod's launcher
 * asked for it (NETWORK_REQUEST). It opens the pod's network namespace once — the daemon names it by a pod process's
 * `/proc/<pid>/ns/net` — and runs every command inside it through that descriptor. It builds what the bridge and
 * masquerade bindings need (bridges, TAPs Cloud Hypervisor can open without privileges, IP forwarding for masquerade),
 * loads the nftables rules (anti-spoofing, rate limits, NAT, the port list), and answers with NETWORK_READY. The pod
 * itself keeps no NET_ADMIN.
 *
 * Order matters: facts first (the pod links as the CNI left them, or the record an earlier run kept), then the rules
 * and that record in one transaction, then the links. So the guest's TAP never exists without its rules, and a run
 * interrupted anywhere is finished by the next one, which converges to the same pod and the same answer.
 */
import { LaunchError } from '../launcher/failure';
import type { LaunchVm } from '../launcher/vm-env';
import { NETWORK_READY, NFT_RULESET, inRunDir } from '../pod-layout';
import { buildBridge, readBridgeFacts, type BridgeFacts } from './bridge';
import {
  buildMasquerade,
  enableIpForward,
  masqueradeNat,
  readMasqueradeFacts,
  type MasqueradeFacts,
} from './masquerade';
import { openPodNetns, type PodNetns } from './netns';
import { NETWORK_READY_VERSION, formatNetworkReady, type NetworkReady, type ReadyInterface } from './network-ready';
import { readNetworkRequest } from './network-request';
import type { GuestPort } from './nft-guest';
import { loadRuleset, podRuleset, readRecords } from './nftables';
import { planTapInterfaces, type BridgePlan, type MasqueradePlan } from './plan';
import { writeInRunDir } from './run-dir';

export interface PrepareVmNetworkOptions {
  /** The VirtualMachine as the API server has it (the daemon's informer copy; never anything the pod wrote). */
  readonly vm: LaunchVm;
  /**
   * The pod's network namespace file, as the node daemon finds it from the host (operator/daemon/pod-processes.ts):
   * `/proc/<pid>/ns/net` of a process in the pod's cgroup, preferably the sandbox's pause process, which lives as long
   * as the pod. It is opened once, checked (a network namespace, neither the daemon's own nor PID 1's) and held by
   * descriptor for the whole preparation, so the process ending meanwhile, and its PID being reused, change nothing.
   */
  readonly netnsPath: string;
  /** The pod's run dir on the host (`hostEmptyDir(kubeletRoot, podUid, RUN_VOLUME)`). */
  readonly runDir: string;
  /** Bound on the whole preparation; what is not done by then fails the pod's network. @default 30 000 */
  readonly timeoutMs?: number;
}

export const DEFAULT_NETPREP_TIMEOUT_MS = 30_000;

/**
 * Prepares the pod network of `vm` and writes NETWORK_READY into the pod's run dir — the interfaces, or `error` with
 * one line the launcher reports as its termination message — and returns what it wrote. Idempotent: call it again for
 * the same pod (a daemon restart) and it leaves the pod as it is and writes the same answer. Rejects only when the
 * answer cannot be written (the run dir is gone).
 */
export async function prepareVmNetwork(options: PrepareVmNetworkOptions): Promise<NetworkReady> {
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_NETPREP_TIMEOUT_MS);
  const request = readNetworkRequest(options.runDir);
  const common = { version: NETWORK_READY_VERSION, ...(request !== undefined ? { request } : {}) };
  let ready: NetworkReady;
  let ruleset: string | undefined;
  let ns: (PodNetns & { close(): void }) | undefined;
  try {
    ns = openPodNetns(options.netnsPath, deadline);
    const prepared = await prepareInterfaces(ns, options.vm);
    ruleset = prepared.ruleset;
    ready = { ...common, interfaces: prepared.interfaces };
  } catch (error) {
    ready = { ...common, error: errorLine(error) };
  } finally {
    ns?.close();
  }
  if (ruleset !== undefined) {
    try {
      // A copy of the rules for whoever debugs the pod (listing nftables needs CAP_NET_ADMIN, which the pod lacks).
      writeInRunDir(options.runDir, inRunDir(NFT_RULESET), ruleset);
    } catch {
      // Only a convenience: the answer below is what matters.
    }
  }
  writeInRunDir(options.runDir, inRunDir(NETWORK_READY), formatNetworkReady(ready));
  return ready;
}

function errorLine(error: unknown): string {
  const message =
    error instanceof LaunchError ? error.message : `unexpected error: ${(error as Error)?.message ?? error}`;
  return message
    .trim()
    .replace(/\s*\n\s*/g, ' | ')
    .slice(0, 1000);
}

async function prepareInterfaces(
  ns: PodNetns,
  vm: LaunchVm,
): Promise<{ interfaces: Record<string, ReadyInterface>; ruleset?: string }> {
  const plans = planTapInterfaces(vm);
  if (!plans.length) return { interfaces: {} };
  const recorded = await readRecords(ns);

  const bridges: { plan: BridgePlan; facts: BridgeFacts }[] = [];
  const masquerades: { plan: MasqueradePlan; facts: MasqueradeFacts }[] = [];
  for (const plan of plans) {
    if (plan.binding === 'bridge') {
      bridges.push({ plan, facts: recorded.get(plan.link) ?? (await readBridgeFacts(ns, plan)) });
    } else {
      masquerades.push({ plan, facts: await readMasqueradeFacts(ns, plan) });
    }
  }

  const guests: GuestPort[] = [
    ...bridges.map(({ plan, facts }) => ({
      tap: plan.tap,
      mac: facts.mac,
      podLink: plan.link,
      ...(facts.ipv4 ? { ip: facts.ipv4.address } : {}),
    })),
    ...masquerades.map(({ plan, facts }) => ({ tap: plan.tap, mac: plan.mac, ip: facts.guestIp })),
  ];
  const ruleset = podRuleset({
    records: bridges.map((b) => b.facts),
    guests,
    nats: masquerades.map(({ plan, facts }) => masqueradeNat(plan, facts)),
  });
  await loadRuleset(ns, ruleset);
  if (masquerades.length) await enableIpForward(ns);

  const interfaces: Record<string, ReadyInterface> = {};
  for (const { plan, facts } of bridges) interfaces[plan.name] = await buildBridge(ns, plan, facts);
  for (const { plan, facts } of masquerades) interfaces[plan.name] = await buildMasquerade(ns, plan, facts);
  return { interfaces, ruleset };
}
