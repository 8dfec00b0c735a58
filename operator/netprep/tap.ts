/**
 * The guest's TAP, made by the daemon so Cloud Hypervisor needs no CAP_NET_ADMIN: a persistent TAP owned by the uid CH
 * runs as, with a vnet header, already up and at the link's MTU. CH opens an existing TAP by name with TUNSETIFF, which
 * the kernel allows its owner without the capability; it then only reads the MTU and MAC and brings the TAP up if it
 * is down (reference/cloud-hypervisor.md §6, §11). It must be multi-queue exactly when CH's `num_queues` > 2: the
 * launcher never sets num_queues, so CH uses one queue pair and the TAP is single-queue.
 */
import { LaunchError } from '../launcher/failure';
import { ensureLink } from './links';
import { ip, type PodNetns } from './netns';

/**
 * The uid Cloud Hypervisor runs as in the pod, the TAP's owner: root, as the launcher container runs
 * (constructs/vm-pod-security.ts). A non-root launcher would make this the pod's runAsUser, passed by the daemon.
 */
export const TAP_OWNER_UID = 0;

export interface TapOptions {
  readonly name: string;
  readonly mtu: number;
  readonly bridge: string;
}

export async function ensureTap(ns: PodNetns, tap: TapOptions, what: string): Promise<void> {
  const create = ['tuntap', 'add', 'dev', tap.name, 'mode', 'tap', 'vnet_hdr', 'user', String(TAP_OWNER_UID)];
  const existing = await ensureLink(ns, tap.name, create, what);
  if (existing) {
    // Left by an earlier run for this pod; the pod itself cannot make links, so anything else is a bug to report.
    const info = existing.linkinfo?.info_data ?? {};
    const ok =
      existing.linkinfo?.info_kind === 'tun' &&
      info.type === 'tap' &&
      info.vnet_hdr === true &&
      info.persist === true &&
      info.multi_queue === false;
    if (!ok) throw new LaunchError(`${what}: ${tap.name} exists but is not the persistent vnet_hdr TAP netprep makes`);
  }
  await ip(
    ns,
    ['link', 'set', tap.name, 'mtu', String(tap.mtu), 'master', tap.bridge],
    `${what}: add ${tap.name} to ${tap.bridge}`,
  );
  await ip(ns, ['link', 'set', tap.name, 'up'], `${what}: bring ${tap.name} up`);
}
