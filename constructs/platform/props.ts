/**
 * Props of the platform install ({@link KubevisorPlatformProps}) and of node setup ({@link NodeSetupProps}): the same
 * for the cdk8s constructs and the Pulumi components, which render the same cdk8s chart (constructs/platform/render.ts).
 */
import { KUBEVISOR_VERSION } from '../../api';

/** The operator image when no `image` prop is given: the one image of this release (controller, daemon, launcher). */
export const DEFAULT_IMAGE = `ghcr.io/kubevisor/kubevisor:${KUBEVISOR_VERSION}`;

/** CPU and memory of one container. */
export interface ContainerResources {
  /** CPU request in millicores. @default - see the prop that uses it */
  readonly cpuRequestMillis?: number;
  /** CPU limit in millicores. @default - none (throttling a controller or daemon slows every VM it serves) */
  readonly cpuLimitMillis?: number;
  /** Memory request in MiB. @default - see the prop that uses it */
  readonly memoryRequestMiB?: number;
  /** Memory limit in MiB. @default - see the prop that uses it */
  readonly memoryLimitMiB?: number;
}

/** A taint the operator's node workloads tolerate (the pod's `tolerations` entry). */
export interface Toleration {
  /** Taint key; without it, `operator` must be `Exists` and the toleration matches every taint. @default - every key */
  readonly key?: string;
  /** @default Exists when no value is given, else Equal */
  readonly operator?: 'Exists' | 'Equal';
  /** @default - none */
  readonly value?: string;
  /** @default - every effect */
  readonly effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** The controller Deployment. */
export interface ControllerProps {
  /**
   * Replicas; one leads (a Lease), the others stand by and take over within the lease duration.
   *
   * @default 2
   */
  readonly replicas?: number;
  /** @default - 100 millicores requested, 256 MiB requested, 512 MiB limit */
  readonly resources?: ContainerResources;
  /**
   * PriorityClass of the controller pods.
   *
   * @default "system-cluster-critical"
   * @see https://kubernetes.io/docs/concepts/scheduling-eviction/pod-priority-preemption/
   */
  readonly priorityClassName?: string;
  /**
   * How long a node may be NotReady before its VMs are recovered on another node (`--node-loss-grace`).
   *
   * @default 60
   */
  readonly nodeLossGraceSeconds?: number;
  /**
   * Watch only this namespace for VirtualMachines (`--namespace`); the RBAC stays cluster-wide.
   *
   * @default - every namespace
   */
  readonly watchNamespace?: string;
  /**
   * Only nodes with these labels run the controller (e.g. infrastructure or control-plane nodes).
   *
   * @default - any node
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /**
   * Taints the controller tolerates (e.g. a control-plane node's `node-role.kubernetes.io/control-plane`); each names its
   * key (tolerating every taint, a controller on an unreachable node would never be evicted).
   *
   * @default - none
   */
  readonly tolerations?: readonly Toleration[];
}

/** The node daemon DaemonSet (one pod per node that may host VMs). */
export interface DaemonProps {
  /** @default - 100 millicores requested, 128 MiB requested, 512 MiB limit */
  readonly resources?: ContainerResources;
  /** @default "system-node-critical" */
  readonly priorityClassName?: string;
  /**
   * Taints the daemon tolerates. It must run wherever VM pods may run, so by default it tolerates every taint.
   *
   * @default - every taint
   */
  readonly tolerations?: readonly Toleration[];
  /**
   * The kubelet's root directory on the nodes (`--root-dir` of the kubelet).
   *
   * @default "/var/lib/kubelet"
   */
  readonly kubeletRootDir?: string;
}

/** The Cluster API infrastructure provider's options ({@link KubevisorPlatformProps.clusterApi}). */
export interface ClusterApiProps {
  /**
   * Let KubevisorClusters ask for a LoadBalancer control-plane Service (`spec.controlPlaneService.type`, controller flag
   * `--cluster-api-load-balancers`). Off, such a KubevisorCluster gets Ready False `LoadBalancerNotAllowed` and no
   * Service: whoever may create KubevisorClusters would otherwise get load balancers (and the addresses of any
   * load balancer class) through the controller's cluster-wide Service rights.
   *
   * @default false
   */
  readonly loadBalancers?: boolean;
}

/** The kubevisor platform: CRDs, the controller, the node daemon, their identities and least-privilege RBAC. */
export interface KubevisorPlatformProps {
  /**
   * The operator image (controller, daemon, launcher and VM pods all use it).
   *
   * @default - ghcr.io/kubevisor/kubevisor:<this package's version>
   */
  readonly image?: string;
  /**
   * @default "IfNotPresent"
   */
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /**
   * Namespace of the operator's workloads, Lease and migration CA. Created by the platform, labelled to enforce Pod
   * Security `privileged` (the node daemon needs host namespaces); VMs go in other namespaces.
   *
   * @default "kubevisor-system"
   */
  readonly namespace?: string;
  /** @default - see {@link ControllerProps} */
  readonly controller?: ControllerProps;
  /** @default - see {@link DaemonProps} */
  readonly daemon?: DaemonProps;
  /**
   * Run the Cluster API infrastructure provider (KubevisorCluster, KubevisorMachine) in the controller
   * (`--cluster-api`), with the RBAC it needs, and grant Cluster API's manager the provider's kinds (a ClusterRole
   * labelled `cluster.x-k8s.io/aggregate-to-manager`). Needs Cluster API (v1beta2 contract) in the cluster, installed
   * before or after the platform; until it is, the provider waits and VMs are managed as usual. `true` is `{}`; an
   * object turns the provider on with its options ({@link ClusterApiProps}: LoadBalancer Services are off unless
   * `loadBalancers: true`).
   *
   * @default false
   * @see https://cluster-api.sigs.k8s.io/developer/providers/contracts/overview
   */
  readonly clusterApi?: boolean | ClusterApiProps;
}

/** What each node needs to host VMs, prepared by a DaemonSet ({@link NodeSetupProps}). */
export interface NodeSetupProps {
  /**
   * The operator image (its `kubevisor node-setup` entry point).
   *
   * @default - ghcr.io/kubevisor/kubevisor:<this package's version>
   */
  readonly image?: string;
  /** @default "IfNotPresent" */
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /**
   * Namespace of the DaemonSet and its ServiceAccount; the platform's namespace.
   *
   * @default "kubevisor-system"
   */
  readonly namespace?: string;
  /**
   * Load the kvm, kvm_intel/kvm_amd, tun and vhost_net kernel modules when their devices are missing (needs the
   * host's /lib/modules). Where modules may not be loaded from a pod, set false and load them at boot.
   *
   * @default true
   */
  readonly loadModules?: boolean;
  /**
   * 2 MiB hugepages to reserve on each node (`vm.nr_hugepages`), for VMs with `memory.hugepages.pageSize: 2Mi`.
   * The kubelet reports the new capacity after its next restart.
   *
   * @default - left as the node has it
   */
  readonly hugepages2Mi?: number;
  /**
   * 1 GiB hugepages to reserve on each node (only possible while memory is unfragmented: early after boot).
   *
   * @default - left as the node has it
   */
  readonly hugepages1Gi?: number;
  /**
   * Only nodes with these labels are prepared (and so may host VMs).
   *
   * @default - every node
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** @default - every taint */
  readonly tolerations?: readonly Toleration[];
  /**
   * How often the node is checked again (devices, hugepages, labels), in seconds.
   *
   * @default 300
   */
  readonly recheckSeconds?: number;
}
