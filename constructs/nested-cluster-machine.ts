/**
 * The machines of a nested cluster: the VirtualMachine each one runs as (rendered by {@link renderVirtualMachine},
 * the one VM renderer) inside a KubevisorMachineTemplate whose name ends in the hash of its content.
 */
import type { Affinity, KubevisorMachineTemplateSpec, VirtualMachineSpec } from '../api';
import { CONTROL_PLANE_PORT, INFRASTRUCTURE_API_VERSION } from '../api';
import type { NestedClusterObject } from './nested-cluster-addons';
import { CAPI_LABELS, contentHash } from './nested-cluster-names';
import type { MachineSize, NodeImages } from './nested-cluster-props';
import { NESTED_CLUSTER_DEFAULTS } from './nested-cluster-props';
import { Bindings, NetworkSources, VolumeSources, renderVirtualMachine } from './virtual-machine';

/** What one group of machines (the control plane, or one worker pool) runs as. */
export interface MachineGroup {
  /** The pod labels that select this group's VM pods (cluster name, and control-plane or deployment name). */
  readonly selector: Readonly<Record<string, string>>;
  readonly size: MachineSize | undefined;
  readonly images: NodeImages;
  /** The control plane: its VM pods are Ready only while the nested API server answers. */
  readonly controlPlane: boolean;
  /** Labels of the VMs (and their pods) besides those the provider adds. */
  readonly labels: Readonly<Record<string, string>>;
}

const ROOTFS = 'rootfs';
const POD_NETWORK = 'pod';

/** Machines of a group spread over the management cluster's nodes when they can. */
const spread = (selector: Readonly<Record<string, string>>): Affinity => ({
  podAntiAffinity: {
    preferredDuringSchedulingIgnoredDuringExecution: [
      {
        weight: 100,
        podAffinityTerm: { labelSelector: { matchLabels: { ...selector } }, topologyKey: 'kubernetes.io/hostname' },
      },
    ],
  },
});

/**
 * The VM spec of a machine: kernel boot of a root disk built from the node image, bridged to the pod network (the
 * guest owns the pod IP, so the control-plane Service reaches the guest's API server on 6443), `runPolicy: Once` (a
 * node that stops is replaced by Cluster API, not restarted), and — on the control plane — a readiness probe of the
 * API server's `/readyz`, so the Service routes only to API servers that serve.
 */
export function machineVmSpec(group: MachineGroup): VirtualMachineSpec {
  const d = NESTED_CLUSTER_DEFAULTS;
  const size = group.size ?? {};
  const vm = renderVirtualMachine('machine', {
    runPolicy: 'Once',
    cpu: { sockets: 1, coresPerSocket: size.cpuCores ?? d.size.cpuCores },
    memory: { size: size.memory ?? d.size.memory },
    kernel: { image: group.images.kernelImage, cmdline: group.images.kernelCmdline ?? d.kernelCmdline },
    disks: [{ name: ROOTFS }],
    volumes: [
      {
        name: ROOTFS,
        ...VolumeSources.containerRootfs(group.images.rootfsImage, size.rootfsSize ?? d.size.rootfsSize),
      },
    ],
    interfaces: [{ name: POD_NETWORK, ...Bindings.bridge() }],
    networks: [{ name: POD_NETWORK, ...NetworkSources.pod() }],
    ...(group.controlPlane
      ? {
          readinessProbe: {
            httpGet: { port: CONTROL_PLANE_PORT, path: '/readyz', scheme: 'HTTPS' },
            periodSeconds: 5,
            failureThreshold: 3,
          },
        }
      : {}),
    affinity: spread(group.selector),
  });
  const spec = vm.spec as VirtualMachineSpec;
  // The renderer derives a MAC from the VM name; a template is shared by many VMs, each of which derives its own.
  for (const iface of spec.instance.interfaces ?? []) delete iface.mac;
  return spec;
}

/** The KubevisorMachineTemplate of a group, named `<base>-<hash of its spec and the Kubernetes version>`. */
export function machineTemplate(
  base: string,
  version: string,
  group: MachineGroup,
  metadata: { readonly namespace?: string; readonly labels: Record<string, string> },
): NestedClusterObject & { spec: KubevisorMachineTemplateSpec } {
  const labels = { ...group.labels };
  const spec: KubevisorMachineTemplateSpec = {
    template: {
      spec: {
        virtualMachine: {
          ...(Object.keys(labels).length ? { metadata: { labels } } : {}),
          spec: machineVmSpec(group),
        },
      },
    },
  };
  return {
    apiVersion: INFRASTRUCTURE_API_VERSION,
    kind: 'KubevisorMachineTemplate',
    metadata: {
      name: `${base}-${contentHash({ version, spec })}`,
      ...(metadata.namespace ? { namespace: metadata.namespace } : {}),
      labels: { ...metadata.labels },
    },
    spec,
  };
}

/** The pod labels selecting the control plane's VM pods: the provider's Service selects by the same (api/). */
export { controlPlaneSelector } from '../api';

/** The pod labels selecting one MachineDeployment's VM pods. */
export const poolSelector = (cluster: string, deployment: string) => ({
  [CAPI_LABELS.clusterName]: cluster,
  [CAPI_LABELS.deploymentName]: deployment,
});
