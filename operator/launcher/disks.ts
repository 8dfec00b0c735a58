/**
 * Where each disk's data is in the pod. Init containers made the images (see container-disk.ts and
 * container-rootfs.ts); the launcher builds the cloud-init ISO itself and checks that everything else exists, so a
 * missing image fails here with its path rather than later inside CH.
 */
import { lstatSync } from 'node:fs';
import {
  INITRD_PATH,
  KERNEL_PATH,
  blockDevice,
  containerDiskImage,
  containerRootfsImage,
  pvcDiskImage,
  volumeDir,
} from '../pod-layout';
import { buildCloudInitIso } from './cloud-init';
import { LaunchError } from './failure';
import type { PreparedDisk } from './vm-config';
import type { LaunchVm } from './vm-env';

// lstat: a symbolic link the workload left (a kernel or disk copied out of a user image, a PVC's disk.img) is never
// followed, so Cloud Hypervisor cannot be pointed at another file of the pod (a Secret, another volume).
function kindOf(path: string): 'file' | 'block' | 'dir' | 'other' | undefined {
  try {
    const s = lstatSync(path);
    if (s.isSymbolicLink())
      throw new LaunchError(`${path} is a symbolic link; disks and kernels must be regular files`);
    return s.isFile() ? 'file' : s.isBlockDevice() ? 'block' : s.isDirectory() ? 'dir' : 'other';
  } catch (e) {
    if (e instanceof LaunchError) throw e;
    return undefined;
  }
}

export async function prepareDisks(vm: LaunchVm): Promise<Record<string, PreparedDisk>> {
  const volumes = vm.spec.volumes ?? [];
  const disks: Record<string, PreparedDisk> = {};
  if (vm.spec.instance.kernel && kindOf(KERNEL_PATH) !== 'file') {
    throw new LaunchError(
      `spec.instance.kernel: ${KERNEL_PATH} is missing (the kernel init container copies /vmlinux there)`,
    );
  }
  if (vm.spec.instance.kernel?.initrd && kindOf(INITRD_PATH) !== 'file') {
    throw new LaunchError(
      `spec.instance.kernel.initrd: ${INITRD_PATH} is missing or not a regular file (the kernel image must hold /initrd)`,
    );
  }
  for (const [d, disk] of (vm.spec.instance.disks ?? []).entries()) {
    const index = volumes.findIndex((v) => v.name === disk.name);
    const field = `spec.instance.disks[${d}] (${disk.name})`;
    if (index < 0) throw new LaunchError(`${field}: no volume named ${disk.name}`);
    const v = volumes[index];
    const need = (path: string, madeBy: string): PreparedDisk => {
      if (kindOf(path) !== 'file') throw new LaunchError(`${field}: ${path} is missing (${madeBy})`);
      return { path };
    };
    if (v.containerDisk) {
      disks[v.name] = need(containerDiskImage(v.name), `the init container convert-${v.name} writes it`);
    } else if (v.containerRootfs) {
      disks[v.name] = need(containerRootfsImage(v.name), `the init container mkfs-${v.name} writes it`);
    } else if (v.persistentVolumeClaim || v.dataVolume) {
      // Block-mode claims appear as a device, filesystem-mode claims hold disk.img (KubeVirt's convention).
      if (kindOf(blockDevice(v.name)) === 'block') disks[v.name] = { path: blockDevice(v.name) };
      else if (kindOf(pvcDiskImage(v.name)) === 'file') disks[v.name] = { path: pvcDiskImage(v.name) };
      else {
        throw new LaunchError(
          `${field}: neither block device ${blockDevice(v.name)} nor ${pvcDiskImage(v.name)} exists ` +
            `(a filesystem-mode claim mounted at ${volumeDir(v.name)} must hold disk.img)`,
        );
      }
    } else if (v.cloudInit) {
      // Read-only whatever the spec says: the guest has no business writing its seed.
      disks[v.name] = { path: await buildCloudInitIso(vm, index), forceReadOnly: true };
    } else {
      // Unreachable by type (a volume has exactly one source); kept for specs from a newer API. disk.name == v.name.
      throw new LaunchError(`${field}: volume ${disk.name} has no source the launcher knows`);
    }
  }
  return disks;
}
