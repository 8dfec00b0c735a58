/**
 * Props of a nested Kubernetes cluster ({@link NestedClusterProps}): the same for the cdk8s construct and the Pulumi
 * component, which both call `renderNestedCluster` (constructs/nested-cluster.ts).
 */

/** CPU, memory and root disk of one machine (one VirtualMachine). */
export interface MachineSize {
  /**
   * Guest CPU cores (one socket). kubeadm refuses a control-plane node with fewer than 2.
   *
   * @default 2
   */
  readonly cpuCores?: number;
  /**
   * Guest memory, a quantity such as `4Gi`. kubeadm refuses a control-plane node with less than 1700Mi.
   *
   * @default "4Gi"
   */
  readonly memory?: string;
  /**
   * Size of the root disk built from the node image's rootfs (`containerRootfs`): images, containers and logs of the
   * node live on it, on the host node's ephemeral storage.
   *
   * @default "4Gi"
   */
  readonly rootfsSize?: string;
}

/** The images a node of one Kubernetes version boots from (direct kernel boot of an ext4 root disk). */
export interface NodeImages {
  /** Container image holding the guest kernel at /vmlinux. */
  readonly kernelImage: string;
  /**
   * Container image whose filesystem becomes the node's root disk: kubeadm, the kubelet and a container runtime of the
   * matching Kubernetes version, and cloud-init (it runs the bootstrap data and reads the NoCloud instance-id).
   */
  readonly rootfsImage: string;
  /**
   * Kernel command line; the root disk is the first disk.
   *
   * @default "console=ttyS0 root=/dev/vda rw"
   */
  readonly kernelCmdline?: string;
}

/**
 * Node images by Kubernetes version (`{ 'v1.34.2': {...} }`), or a function from the version to its images
 * (`undefined` when there are none). A version without images fails validation.
 */
export type NodeImagesByVersion =
  Readonly<Record<string, NodeImages>> | ((kubernetesVersion: string) => NodeImages | undefined);

/** An etcd cluster outside the control-plane machines. */
export interface ExternalEtcdProps {
  /**
   * Client URLs of the etcd members, e.g. `https://etcd-0.etcd:2379`.
   */
  readonly endpoints: readonly string[];
  /**
   * Path of the etcd CA certificate on the control-plane nodes. Cluster API writes it there from the Secret
   * `<cluster>-etcd` (key `tls.crt`), which you create before the cluster.
   *
   * @default "/etc/kubernetes/pki/etcd/ca.crt"
   */
  readonly caFile?: string;
  /**
   * Path of the API server's etcd client certificate on the control-plane nodes, written from the Secret
   * `<cluster>-apiserver-etcd-client` (keys `tls.crt`, `tls.key`), which you create before the cluster.
   *
   * @default "/etc/kubernetes/pki/apiserver-etcd-client.crt"
   */
  readonly certFile?: string;
  /**
   * Path of the API server's etcd client key on the control-plane nodes (same Secret as `certFile`).
   *
   * @default "/etc/kubernetes/pki/apiserver-etcd-client.key"
   */
  readonly keyFile?: string;
}

/** Where the nested cluster keeps its state. */
export interface EtcdProps {
  /**
   * Use this external etcd instead of the stacked members kubeadm runs on each control-plane machine.
   *
   * @default - stacked etcd (one member per control-plane machine)
   * @see https://cluster-api.sigs.k8s.io/tasks/external-etcd
   */
  readonly external?: ExternalEtcdProps;
}

/** The control-plane machines (a KubeadmControlPlane). */
export interface ControlPlaneProps {
  /**
   * Number of control-plane machines: odd with stacked etcd (1, 3, 5 or 7: etcd needs a majority), any from 1 to 7
   * with an external etcd (`etcd.external`).
   *
   * @default 1
   */
  readonly replicas?: number;
  /** @default - 2 cores, 4Gi memory, 4Gi root disk */
  readonly size?: MachineSize;
}

/** One pool of worker machines (a MachineDeployment). */
export interface WorkerPoolProps {
  /** Pool name, a DNS label; the MachineDeployment is `<cluster>-<name>`. */
  readonly name: string;
  /**
   * Number of workers (0 to 100).
   *
   * @default 1
   */
  readonly replicas?: number;
  /** @default - 2 cores, 4Gi memory, 4Gi root disk */
  readonly size?: MachineSize;
}

/**
 * The nested cluster's own address ranges, and the management cluster's that they must not overlap: the nodes are VM
 * pods, so the management cluster's pod network is the nested cluster's node network.
 */
export interface NestedNetworkProps {
  /**
   * Pod CIDR of the nested cluster (IPv4 /8 to /24, or IPv6 /48 to /64).
   *
   * @default "10.243.0.0/16"
   */
  readonly podCidr?: string;
  /**
   * Service CIDR of the nested cluster (IPv4 /12 to /28, or IPv6 /108 to /124), of the pod CIDR's IP family.
   *
   * @default "10.95.0.0/16"
   */
  readonly serviceCidr?: string;
  /**
   * DNS domain of the nested cluster's Services.
   *
   * @default "cluster.local"
   */
  readonly serviceDomain?: string;
  /**
   * The management cluster's pod, Service and node CIDRs. The nested pod and Service CIDRs must not overlap them
   * (guests route to the management network through them; knest's most common failure), so declare them.
   *
   * @default []
   */
  readonly hostCidrs?: readonly string[];
}

/** How the nested API server is reached: a Service (port 6443) in front of the control-plane VM pods. */
export interface NestedEndpointProps {
  /**
   * `ClusterIP`: reachable inside the management cluster (Cluster API's controllers run there). `LoadBalancer`: the
   * load balancer's address becomes the endpoint once one is assigned — only where the platform allows it (platform
   * prop `clusterApi: { loadBalancers: true }`, controller flag `--cluster-api-load-balancers`); elsewhere the
   * KubevisorCluster stays Ready False `LoadBalancerNotAllowed` and no Service is made.
   *
   * @default "ClusterIP"
   */
  readonly service?: 'ClusterIP' | 'LoadBalancer';
  /**
   * Load balancer implementation (Service `spec.loadBalancerClass`), with `service: 'LoadBalancer'`.
   *
   * @default - the cluster's default load balancer
   */
  readonly loadBalancerClass?: string;
  /**
   * The endpoint's host, when something else (DNS, an external load balancer) fronts the Service. Kubeconfigs and
   * certificates name it, so it cannot change later.
   *
   * @default - the Service's address, set by the provider
   */
  readonly host?: string;
  /**
   * The endpoint's port, with `host`.
   *
   * @default 6443
   */
  readonly port?: number;
}

/** MachineHealthChecks: Cluster API replaces a machine whose node is unhealthy for too long. */
export interface HealthCheckProps {
  /**
   * Seconds a node may be `Ready: Unknown` or `Ready: False` before its machine is replaced.
   *
   * @default 300
   */
  readonly unhealthySeconds?: number;
  /**
   * Seconds a new machine may take to register its node (0 disables the check; otherwise at least 30).
   *
   * @default - Cluster API's default (600)
   */
  readonly nodeStartupSeconds?: number;
}

/**
 * The CNI installed into the nested cluster by a ClusterResourceSet. Without a CNI the nodes never become Ready, so
 * the MachineHealthChecks replace the workers every few minutes (knest's "flapping workers").
 */
export interface CniProps {
  /**
   * The CNI's manifests (multi-document YAML), put in a ConfigMap `<cluster>-cni` (at most 1000 KiB).
   *
   * @default - none
   */
  readonly manifests?: string;
  /**
   * Existing ConfigMaps (same namespace) whose every key holds manifests to apply.
   *
   * @default []
   */
  readonly configMaps?: readonly string[];
  /**
   * Existing Secrets (same namespace, type `addons.cluster.x-k8s.io/resource-set`) whose every key holds manifests.
   *
   * @default []
   */
  readonly secrets?: readonly string[];
  /**
   * `ApplyOnce`: applied once per cluster. `Reconcile`: applied again when the manifests change.
   *
   * @default "ApplyOnce"
   * @see https://cluster-api.sigs.k8s.io/tasks/experimental-features/cluster-resource-set
   */
  readonly strategy?: 'ApplyOnce' | 'Reconcile';
}

/** Name, namespace and labels of a nested cluster's objects. */
export interface NestedClusterMetadata {
  /**
   * The cluster's name: a DNS-1035 label of at most 40 characters (every name derived from it stays a DNS label).
   *
   * @default - the construct id (cdk8s) or the resource name (Pulumi)
   */
  readonly name?: string;
  /**
   * Namespace of every object (Cluster API keeps a cluster's objects and its VMs in one namespace).
   *
   * @default - the chart's, provider's or kubectl context's namespace
   */
  readonly namespace?: string;
  /**
   * Labels added to every object and to the VMs (and so to their pods).
   *
   * @default {}
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * A nested Kubernetes cluster: a Cluster API cluster (core, kubeadm bootstrap and control plane, contract v1beta2)
 * whose machines are kubevisor VirtualMachines. Needs Cluster API and the kubevisor infrastructure provider in the
 * management cluster.
 *
 * @see https://cluster-api.sigs.k8s.io/
 */
export interface NestedClusterProps {
  /** @default - named after the construct id (cdk8s) or the resource name (Pulumi), in the default namespace */
  readonly metadata?: NestedClusterMetadata;
  /**
   * Kubernetes version of the nested cluster, `v<major>.<minor>.<patch>` (e.g. `v1.34.2`). Changing it rolls every
   * machine.
   */
  readonly kubernetesVersion: string;
  /** The node images of each Kubernetes version; {@link kubernetesVersion} must have some. */
  readonly images: NodeImagesByVersion;
  /** @default - 1 machine of the default size */
  readonly controlPlane?: ControlPlaneProps;
  /** @default - stacked etcd (one member per control-plane machine) */
  readonly etcd?: EtcdProps;
  /**
   * Worker pools, each a MachineDeployment.
   *
   * @default []
   */
  readonly workers?: readonly WorkerPoolProps[];
  /** @default - pods 10.243.0.0/16, Services 10.95.0.0/16, domain cluster.local, no host CIDRs declared */
  readonly network?: NestedNetworkProps;
  /** @default - a ClusterIP Service, its address the endpoint */
  readonly endpoint?: NestedEndpointProps;
  /**
   * MachineHealthChecks of the control plane and of each pool, or `false` for none.
   *
   * @default - Node Ready Unknown or False for 300 s replaces the machine
   * @see https://cluster-api.sigs.k8s.io/tasks/automated-machine-management/healthchecking
   */
  readonly healthChecks?: HealthCheckProps | false;
  /**
   * The CNI for the nested cluster. Without one the nodes never become Ready.
   *
   * @default - none: install a CNI yourself
   */
  readonly cni?: CniProps;
}

/** Defaults of the props (what the TSDoc's `@default`s say). */
export const NESTED_CLUSTER_DEFAULTS = {
  size: { cpuCores: 2, memory: '4Gi', rootfsSize: '4Gi' },
  controlPlaneReplicas: 1,
  workerReplicas: 1,
  podCidr: '10.243.0.0/16',
  serviceCidr: '10.95.0.0/16',
  serviceDomain: 'cluster.local',
  service: 'ClusterIP',
  endpointPort: 6443,
  unhealthySeconds: 300,
  kernelCmdline: 'console=ttyS0 root=/dev/vda rw',
  cniStrategy: 'ApplyOnce',
  etcd: {
    caFile: '/etc/kubernetes/pki/etcd/ca.crt',
    certFile: '/etc/kubernetes/pki/apiserver-etcd-client.crt',
    keyFile: '/etc/kubernetes/pki/apiserver-etcd-client.key',
  },
} as const;

/** The images of a version, from a mapping or a function. */
export function nodeImagesFor(images: NodeImagesByVersion, version: string): NodeImages | undefined {
  if (typeof images === 'function') return images(version);
  return Object.prototype.hasOwnProperty.call(images, version) ? images[version] : undefined;
}
