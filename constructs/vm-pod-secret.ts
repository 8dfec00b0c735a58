/**
 * The Secret a VM pod reads its VirtualMachine from, and how the pod mounts Secrets: one key each, readable by the
 * owner only.
 */
import type { KubevisorObject } from '../api';
import { VM_LABEL, VM_SECRET_KEY } from '../operator/pod-layout';
import type { VmPodRole } from './vm-pod-name';
import { podNameOf, vmOwner } from './vm-pod-name';

type Json = Record<string, unknown>;

/** The volume holding the VM pod's own Secret (the VirtualMachine as JSON). */
export const VM_SECRET_VOLUME = 'kubevisor-vm';
/** Secrets are mounted readable by their owner only: the launcher runs as root, nothing else in the pod needs them. */
const SECRET_MODE = 0o400;

/**
 * The Secret a VM pod reads its VirtualMachine from: the VM as JSON (apiVersion, kind, metadata with uid, spec —
 * inline user-data included) under {@link VM_SECRET_KEY}. Named like the pod, immutable, owned by the VM until the
 * controller hands it to the pod once that exists (then it goes with the pod). A Secret, because the VM's user-data
 * may hold credentials: everyone who may read pods may read their environment, and one environment string holds at
 * most 128 KiB.
 */
export function renderVmPodSecret(vm: KubevisorObject & { metadata: { uid?: string } }, role: VmPodRole): Json {
  const vmData = {
    apiVersion: vm.apiVersion,
    kind: vm.kind,
    metadata: { name: vm.metadata.name, namespace: vm.metadata.namespace, uid: vm.metadata.uid ?? '' },
    spec: vm.spec,
  };
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: podNameOf(vm, role),
      ...(vm.metadata.namespace ? { namespace: vm.metadata.namespace } : {}),
      labels: { [VM_LABEL]: vm.metadata.name, 'app.kubernetes.io/managed-by': 'kubevisor' },
      ownerReferences: [vmOwner(vm)],
    },
    type: 'Opaque',
    immutable: true,
    data: { [VM_SECRET_KEY]: Buffer.from(JSON.stringify(vmData)).toString('base64') },
  };
}

/**
 * A Secret volume of exactly one key, readable by its owner only. `optional`: a missing Secret or key leaves the file
 * out instead of holding the pod in ContainerCreating, so that whoever reads it can say what is missing.
 */
export const secretVolume = (name: string, secretName: string, key: string, optional = false) => ({
  name,
  secret: { secretName, items: [{ key, path: key }], defaultMode: SECRET_MODE, ...(optional ? { optional } : {}) },
});
