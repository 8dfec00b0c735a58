/**
 * The example VMs, declared once and deployed by both the cdk8s app and the Pulumi program:
 * - `web`: a containerDisk + cloud-init web server behind masquerade NAT that forwards only ports 80 and 22;
 * - `kernel-boot`: direct kernel boot of an ext4 root disk built from a container image, bridged to the pod network;
 * - `db`: a PVC-backed VM on a Multus bridge network, configured by cloud-init network-config;
 * and a nested Kubernetes cluster, `tenant-a` ({@link NESTED_CLUSTER_EXAMPLE}), in the cdk8s app.
 */
import type { NestedClusterProps, NodeImages, VirtualMachineProps } from '../constructs';
import { Bindings, NetworkSources, VolumeSources } from '../constructs';

export const EXAMPLE_NAMESPACE = 'default';

const webUserData = `#cloud-config
packages: [nginx]
runcmd:
  - [systemctl, enable, --now, nginx]
`;

const dbNetworkData = `version: 2
ethernets:
  lan:
    match: { name: "en*" }
    addresses: [192.168.50.10/24]
`;

export const EXAMPLES: Record<string, VirtualMachineProps> = {
  web: {
    metadata: { name: 'web', namespace: EXAMPLE_NAMESPACE, labels: { app: 'web' } },
    runPolicy: 'Always',
    cpu: { sockets: 1, coresPerSocket: 2 },
    memory: { size: '2Gi' },
    disks: [{ name: 'root' }, { name: 'cloudinit' }],
    volumes: [
      { name: 'root', ...VolumeSources.containerDisk('quay.io/containerdisks/debian:12') },
      { name: 'cloudinit', cloudInit: { userData: webUserData } },
    ],
    interfaces: [{ name: 'pod', ...Bindings.masquerade({ ports: [{ port: 80 }, { port: 22 }] }) }],
    networks: [{ name: 'pod', ...NetworkSources.pod() }],
    readinessProbe: { httpGet: { port: 80, path: '/' }, periodSeconds: 5 },
  },
  'kernel-boot': {
    metadata: { name: 'kernel-boot', namespace: EXAMPLE_NAMESPACE },
    runPolicy: 'RerunOnFailure',
    cpu: { sockets: 1, coresPerSocket: 1 },
    memory: { size: '512Mi' },
    kernel: { image: 'ghcr.io/kubevisor/examples/kernel:6.12', cmdline: 'console=ttyS0 root=/dev/vda rw' },
    disks: [{ name: 'rootfs' }],
    volumes: [
      { name: 'rootfs', ...VolumeSources.containerRootfs('ghcr.io/kubevisor/examples/alpine-rootfs:3.20', '2Gi') },
    ],
    interfaces: [{ name: 'pod', ...Bindings.bridge() }],
    networks: [{ name: 'pod', ...NetworkSources.pod() }],
  },
  db: {
    metadata: { name: 'db', namespace: EXAMPLE_NAMESPACE, labels: { app: 'db' } },
    runPolicy: 'Always',
    cpu: { sockets: 2, coresPerSocket: 1 },
    memory: { size: '4Gi' },
    disks: [{ name: 'root' }, { name: 'cloudinit' }],
    volumes: [
      { name: 'root', ...VolumeSources.persistentVolumeClaim('db-root') },
      { name: 'cloudinit', cloudInit: { networkData: dbNetworkData } },
    ],
    interfaces: [{ name: 'lan', ...Bindings.bridge() }],
    networks: [{ name: 'lan', ...NetworkSources.multus('br-lan') }],
    resources: { requests: { cpu: '2' } },
    nodeSelector: { 'kubevisor.io/storage': 'local' },
  },
};

/** The Service in front of `web` in both stacks: port 80 of the pods that carry the VM's label. */
export const WEB_SERVICE = { name: 'web', namespace: EXAMPLE_NAMESPACE, port: 80 } as const;

/** Node images of every v1.34 patch release: a root filesystem per release, one kernel. */
const nodeImages = (version: string): NodeImages | undefined =>
  version.startsWith('v1.34.')
    ? {
        kernelImage: 'ghcr.io/kubevisor/examples/node-kernel:6.12',
        rootfsImage: `ghcr.io/kubevisor/examples/node-rootfs:${version}`,
      }
    : undefined;

/**
 * The example nested cluster, `tenant-a`: one control-plane machine and a pool of two workers running Kubernetes
 * v1.34, its CNI applied from a ConfigMap you create from your CNI's release manifest
 * (`kubectl create configmap tenant-a-cni-manifests --from-file=cni.yaml=<the CNI's manifest>`). Needs Cluster API and
 * kubevisor's infrastructure provider in the cluster.
 */
export const NESTED_CLUSTER_EXAMPLE: NestedClusterProps = {
  metadata: { name: 'tenant-a', namespace: EXAMPLE_NAMESPACE },
  kubernetesVersion: 'v1.34.2',
  images: nodeImages,
  controlPlane: { replicas: 1, size: { cpuCores: 2, memory: '4Gi', rootfsSize: '8Gi' } },
  workers: [{ name: 'workers', replicas: 2, size: { cpuCores: 2, memory: '4Gi', rootfsSize: '8Gi' } }],
  // kubeadm's default pod and Service ranges of the management cluster: the tenant's must not overlap them.
  network: { hostCidrs: ['10.244.0.0/16', '10.96.0.0/12'] },
  cni: { configMaps: ['tenant-a-cni-manifests'] },
};
