/**
 * The kubeadm configuration of a nested cluster's nodes (Cluster API's KubeadmConfigSpec, v1beta2), for the control
 * plane's `kubeadm init`/`join` and the workers' `kubeadm join`.
 */
import { PROVIDER_ID_SCHEME } from '../api';
import { contentHash } from './nested-cluster-names';
import type { ExternalEtcdProps } from './nested-cluster-props';
import { NESTED_CLUSTER_DEFAULTS } from './nested-cluster-props';

/**
 * The kubelet's provider ID, `kubevisor://<VM UID>`: the NoCloud instance-id is the VM's UID, and Cluster API's
 * kubeadm bootstrap data starts with `## template: jinja`, so cloud-init fills it in on the node. The provider sets
 * the same ID on the KubevisorMachine, which is how Cluster API matches the Node to its Machine.
 */
export const PROVIDER_ID_KUBELET_ARG = {
  name: 'provider-id',
  value: `${PROVIDER_ID_SCHEME}{{ ds.meta_data.instance_id }}`,
} as const;

/** What `kubeadm init` and `kubeadm join` register each node with. */
const nodeRegistration = () => ({
  kubeletExtraArgs: [{ ...PROVIDER_ID_KUBELET_ARG }],
  // Direct kernel boot: the root disk holds no /boot/config-<release> for kubeadm's kernel check to read.
  ignorePreflightErrors: ['SystemVerification'],
});

/** The control plane's kubeadm configuration: init for the first machine, join for the others. */
export function controlPlaneKubeadmConfig(external: ExternalEtcdProps | undefined): Record<string, unknown> {
  const d = NESTED_CLUSTER_DEFAULTS.etcd;
  return {
    ...(external
      ? {
          clusterConfiguration: {
            etcd: {
              external: {
                endpoints: [...external.endpoints],
                caFile: external.caFile ?? d.caFile,
                certFile: external.certFile ?? d.certFile,
                keyFile: external.keyFile ?? d.keyFile,
              },
            },
          },
        }
      : {}),
    initConfiguration: { nodeRegistration: nodeRegistration() },
    joinConfiguration: { nodeRegistration: nodeRegistration() },
  };
}

/** A worker pool's KubeadmConfigTemplate spec. */
export const workerKubeadmConfigTemplateSpec = () => ({
  template: { spec: { joinConfiguration: { nodeRegistration: nodeRegistration() } } },
});

/** `<base>-<hash>` of a KubeadmConfigTemplate: a new name for new content, as Cluster API wants templates. */
export const kubeadmConfigTemplateName = (base: string, version: string, spec: unknown) =>
  `${base}-${contentHash({ version, spec })}`;
