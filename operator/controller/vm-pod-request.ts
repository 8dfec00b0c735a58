/**
 * What the reconcilers hand {@link Cluster.createPod} for a VM pod: the pod and its Secret as rendered now, and how to
 * render the pod again from the VM an existing Secret records (a retried create after the VM changed).
 */
import type { VmPodOptions, VmPodRole } from '../../constructs/vm-pod';
import { renderVmPod, renderVmPodSecret } from '../../constructs/vm-pod';
import { recordedVm } from './adoption';
import type { Cluster, VmObject, VmPodSecret } from './cluster';

type Json = Record<string, unknown>;

export function vmPodRequest(
  vm: VmObject & { metadata: { namespace: string } },
  role: VmPodRole,
  options: VmPodOptions,
): { pod: Json; secret: VmPodSecret } {
  return {
    pod: renderVmPod(vm, role, options),
    secret: {
      secret: renderVmPodSecret(vm, role),
      podFromSecret: (existing) => {
        const then = recordedVm(existing, vm);
        return then && renderVmPod({ ...vm, spec: then.spec }, role, options);
      },
    },
  };
}

/** Creates the VM pod of `role` and its Secret; resolves to the pod's UID. */
export function createVmPod(
  cluster: Cluster,
  vm: VmObject & { metadata: { namespace: string } },
  role: VmPodRole,
  options: VmPodOptions,
  create: Pick<VmPodSecret, 'before' | 'handOverInBackground'> = {},
): Promise<string | undefined> {
  const { pod, secret } = vmPodRequest(vm, role, options);
  return cluster.createPod(pod, { ...secret, ...create });
}
