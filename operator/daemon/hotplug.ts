/**
 * The node daemon's half of hot-plug (the controller's is operator/controller/hotplug.ts). For every volume the
 * running VM gained since its pod was created: once its attachment pod runs on this node, find the volume the kubelet
 * mounted for it, bind-mount it into the VM pod's hot-plug emptyDir (it appears in the container through
 * HostToContainer propagation) and attach its disk.img with vm.add-disk; for a volume removed from the VM: vm.remove-
 * device, then unmount. Only filesystem-mode volumes: a block device would need a device node and a cgroup rule in
 * the VM pod, which the daemon does not make yet (such a volume is reported Failed with that reason).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { VirtualMachineStatus } from '../../api';
import { CloudHypervisorError, type CloudHypervisorClient } from '../cloudhypervisor';
import { wantedHotplugVolumes } from '../controller/hotplug';
import { HOTPLUG_VOLUME, HOTPLUG_VOLUME_LABEL, hostEmptyDir, hotplugDeviceId, hotplugDiskImage } from '../pod-layout';
import type { DaemonCluster, DaemonPod, VmObject } from './cluster';
import { bindMount, unbindMount } from './mounts';
import { kindBeneath } from './pod-files';
import type { PodState } from './pod-state';

type HotplugStatus = NonNullable<VirtualMachineStatus['hotplugVolumes']>[number];

/** What hot-plug needs from the cluster besides the daemon's usual reads and writes. */
export interface HotplugCluster {
  /** Attachment pods on this node for the VM. */
  attachmentPods(namespace: string, vmName: string): DaemonPod[];
  /**
   * The PersistentVolume a claim is bound to — only when the binding holds both ways (the claim is Bound to the PV
   * and the PV's claimRef names this very claim) — and its volume mode.
   */
  boundVolume(namespace: string, claim: string): Promise<{ pvName: string; volumeMode?: string } | undefined>;
}

/** The VM pod's hot-plug emptyDir on the host. */
export function hotplugDir(kubeletRoot: string, podUid: string): string {
  return hostEmptyDir(kubeletRoot, podUid, HOTPLUG_VOLUME);
}

/**
 * Brings the guest's hot-plugged disks in line with the VM. Returns the hotplugVolumes status to write (undefined when
 * it is already right), and whether a volume waits for its claim to bind or for the kubelet to mount it — a kubelet
 * runs the attachment pod only once its volume is mounted, so this is a short race to look at again.
 */
export async function reconcileHotplug(
  state: PodState,
  vm: VmObject,
  client: CloudHypervisorClient,
  cluster: DaemonCluster & HotplugCluster,
  kubeletRoot: string,
): Promise<{ status?: HotplugStatus[]; waiting: boolean }> {
  let waiting = false;
  const pod = state.pod;
  const wanted = wantedHotplugVolumes(vm.spec, pod);
  const before = vm.status?.hotplugVolumes ?? [];
  const next = new Map(before.map((v) => [v.name, { ...v }]));
  const dir = hotplugDir(kubeletRoot, pod.metadata.uid);
  // Only the controller's attachment pods for this very VM pod (owned by it), running and not going away.
  const attachments = cluster
    .attachmentPods(pod.metadata.namespace, vm.metadata.name)
    .filter(
      (p) =>
        p.status?.phase === 'Running' &&
        !p.metadata.deletionTimestamp &&
        p.metadata.ownerReferences?.some((o) => o.controller && o.uid === pod.metadata.uid),
    );

  for (const volume of wanted) {
    if (next.get(volume.name)?.phase === 'Attached') continue;
    const claimName = volume.persistentVolumeClaim?.claimName ?? volume.dataVolume?.volumeName ?? '';
    // The controller's attachment pod for this volume: it mounts exactly this claim and nothing else.
    const attachment = attachments.find(
      (p) =>
        p.metadata.labels?.[HOTPLUG_VOLUME_LABEL] === volume.name &&
        p.spec?.volumes?.length === 1 &&
        p.spec.volumes[0].persistentVolumeClaim?.claimName === claimName,
    );
    if (!attachment) continue; // the controller creates it; its Running wakes us
    try {
      const bound = await cluster.boundVolume(pod.metadata.namespace, claimName);
      if (!bound) {
        waiting = true; // not bound (yet)
        continue;
      }
      if (bound.volumeMode === 'Block') {
        next.set(
          volume.name,
          failed(
            volume.name,
            'block-mode volumes cannot be hot-plugged yet; use a filesystem-mode claim holding disk.img',
          ),
        );
        continue;
      }
      const source = volumeDirOf(kubeletRoot, attachment.metadata.uid, bound.pvName);
      if (!source) {
        waiting = true; // the kubelet is still mounting it
        continue;
      }
      if (kindBeneath(source.volumesDir, `${source.relative}/disk.img`) !== 'file') {
        next.set(
          volume.name,
          failed(volume.name, `claim ${claimName} holds no disk.img (a filesystem-mode volume must)`),
        );
        continue;
      }
      await bindMount(source, dir, volume.name);
      const readonly = vm.spec.instance.disks?.find((d) => d.name === volume.name)?.readOnly ?? false;
      try {
        await client.vm.addDisk({
          id: hotplugDeviceId(volume.name),
          path: hotplugDiskImage(volume.name),
          image_type: 'Raw',
          readonly,
        });
      } catch (error) {
        if (!(await hasDisk(client, volume.name))) throw error;
      }
      next.set(volume.name, { name: volume.name, phase: 'Attached' });
    } catch (error) {
      // One volume's failure is that volume's status, never the VM's: the rest of its reconcile goes on.
      next.set(volume.name, failed(volume.name, error instanceof Error ? error.message : String(error)));
    }
  }

  for (const entry of before) {
    if (wanted.some((v) => v.name === entry.name)) continue;
    if (entry.phase === 'Attached' || entry.phase === 'Detaching') {
      try {
        await client.vm.removeDevice({ id: hotplugDeviceId(entry.name) });
      } catch (error) {
        // Gone already (v53.0 answers 500 "No device with id … to remove").
        if (!(error instanceof CloudHypervisorError) || (await hasDisk(client, entry.name))) throw error;
      }
    }
    await unbindMount(dir, entry.name);
    next.delete(entry.name);
  }

  const after = [...next.values()];
  return { ...(JSON.stringify(after) === JSON.stringify(before) ? {} : { status: after }), waiting };
}

/** Unmounts every hot-plugged volume of a VM pod (it is going away; the kubelet could not remove the emptyDir). */
export async function releaseHotplugMounts(kubeletRoot: string, podUid: string): Promise<void> {
  const dir = hotplugDir(kubeletRoot, podUid);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) await unbindMount(dir, name);
}

/** Whether CH's VM has the hot-plugged disk of `volume`. */
async function hasDisk(client: CloudHypervisorClient, volume: string): Promise<boolean> {
  const info = await client.vm.info();
  return (info.config.disks ?? []).some((d) => d.id === hotplugDeviceId(volume));
}

/**
 * Where the kubelet mounted a PersistentVolume for a pod: `pods/<uid>/volumes/<plugin>/<pv>`, and for CSI its `mount`
 * subdirectory (chosen by the plugin's name: anything named `mount` elsewhere is volume data). Returned as the
 * kubelet's `volumes` directory plus a path beneath it that is opened without following symlinks.
 */
function volumeDirOf(
  kubeletRoot: string,
  podUid: string,
  pvName: string,
): { volumesDir: string; relative: string } | undefined {
  const volumesDir = join(kubeletRoot, 'pods', podUid, 'volumes');
  let plugins: string[];
  try {
    plugins = readdirSync(volumesDir);
  } catch {
    return undefined;
  }
  for (const plugin of plugins) {
    if (plugin === 'kubernetes.io~empty-dir' || kindBeneath(volumesDir, `${plugin}/${pvName}`) !== 'directory')
      continue;
    const relative = plugin === 'kubernetes.io~csi' ? `${plugin}/${pvName}/mount` : `${plugin}/${pvName}`;
    return kindBeneath(volumesDir, relative) === 'directory' ? { volumesDir, relative } : undefined;
  }
  return undefined;
}

function failed(name: string, message: string): HotplugStatus {
  return { name, phase: 'Failed', message: message.slice(0, 1024) };
}
