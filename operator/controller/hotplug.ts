/**
 * The controller's half of hot-plug, as a pure function: which attachment pods a running VM needs. A volume the VM
 * gained after its pod was created (a hotpluggable persistentVolumeClaim or dataVolume with a disk that uses it) gets
 * an attachment pod on the VM's node; the node daemon takes the volume from there into the VM pod and the guest. An
 * attachment pod no longer needed goes only once the daemon has detached its volume, so a disk the guest still uses
 * never loses its backing.
 */
import type { VirtualMachineSpec, VirtualMachineStatus, VmVolume } from '../../api';
import { HOTPLUG_VOLUME_LABEL, POD_VOLUMES_ANNOTATION } from '../pod-layout';
import type { PodView } from './vm-lifecycle';

export type HotplugAction =
  { type: 'createAttachmentPod'; volume: VmVolume } | { type: 'deleteAttachmentPod'; name: string; volume: string };

const isHotpluggable = (v: VmVolume) => Boolean(v.persistentVolumeClaim?.hotpluggable || v.dataVolume?.hotpluggable);

/** The hot-plugged volumes a VM wants in its current pod: added since the pod was created, and used by a disk. */
export function wantedHotplugVolumes(
  spec: VirtualMachineSpec,
  pod: { metadata: { annotations?: Record<string, string> } },
): VmVolume[] {
  const atCreation = new Set((pod.metadata.annotations?.[POD_VOLUMES_ANNOTATION] ?? '').split(',').filter(Boolean));
  const disks = new Set((spec.instance.disks ?? []).map((d) => d.name));
  return (spec.volumes ?? []).filter((v) => isHotpluggable(v) && !atCreation.has(v.name) && disks.has(v.name));
}

export function reconcileHotplug(
  spec: VirtualMachineSpec,
  status: VirtualMachineStatus,
  current: PodView | undefined,
  attachments: readonly PodView[],
): HotplugAction[] {
  const running = status.phase === 'Running' || status.phase === 'Paused';
  const wanted = running && current?.spec?.nodeName ? wantedHotplugVolumes(spec, current) : [];
  const attached = new Set(
    (status.hotplugVolumes ?? []).filter((v) => v.phase === 'Attached' || v.phase === 'Detaching').map((v) => v.name),
  );
  const actions: HotplugAction[] = [];
  const live = attachments.filter((p) => !p.metadata.deletionTimestamp);
  for (const volume of wanted) {
    const ours = live.some(
      (p) =>
        p.metadata.labels?.[HOTPLUG_VOLUME_LABEL] === volume.name &&
        p.metadata.ownerReferences?.some((o) => o.uid === current?.metadata.uid),
    );
    if (!ours) actions.push({ type: 'createAttachmentPod', volume });
  }
  for (const p of live) {
    const volume = p.metadata.labels?.[HOTPLUG_VOLUME_LABEL] ?? '';
    const forCurrent = p.metadata.ownerReferences?.some((o) => o.uid === current?.metadata.uid);
    const stillWanted = forCurrent && wanted.some((v) => v.name === volume);
    if (!stillWanted && !(forCurrent && attached.has(volume))) {
      actions.push({ type: 'deleteAttachmentPod', name: p.metadata.name, volume });
    }
  }
  return actions;
}
