/**
 * What the operator's processes may do, as RBAC rules: the one source for the platform install and for the e2e
 * suites, which run the node daemons under exactly these rules (with a token bound to a pod on their node).
 */
import { CLUSTER_API_GROUP, GROUP, INFRASTRUCTURE_GROUP } from '../../api';
import { DEFAULT_CA_CONFIGMAP_NAME, DEFAULT_CA_SECRET_NAME, MIGRATION_SIGNER_NAME } from './names';

export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
}

/** The node daemon, cluster-wide (it lists with a field selector for its node, which RBAC cannot express). */
export const DAEMON_CLUSTER_RULES: readonly PolicyRule[] = [
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  // Hot-plug: which PersistentVolume a claim is bound to (and that the PV names the claim back), its volume mode.
  { apiGroups: [''], resources: ['persistentvolumeclaims', 'persistentvolumes'], verbs: ['get'] },
  { apiGroups: [GROUP], resources: ['virtualmachines', 'virtualmachinemigrations'], verbs: ['get', 'list', 'watch'] },
  {
    apiGroups: [GROUP],
    resources: ['virtualmachines/status', 'virtualmachinemigrations/status'],
    verbs: ['patch'],
  },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  // Its own node's migration certificate (the signer checks the node the token is bound to).
  {
    apiGroups: ['certificates.k8s.io'],
    resources: ['certificatesigningrequests'],
    verbs: ['create', 'get', 'list', 'watch'],
  },
];

/** The node daemon, in the operator's namespace: the migration CA bundle. */
export const DAEMON_NAMESPACED_RULES: readonly PolicyRule[] = [
  {
    apiGroups: [''],
    resources: ['configmaps'],
    resourceNames: [DEFAULT_CA_CONFIGMAP_NAME],
    verbs: ['get', 'list', 'watch'],
  },
];

/** The controller as the migration signer, cluster-wide. */
export const SIGNER_CLUSTER_RULES: readonly PolicyRule[] = [
  { apiGroups: ['certificates.k8s.io'], resources: ['certificatesigningrequests'], verbs: ['get', 'list', 'watch'] },
  {
    apiGroups: ['certificates.k8s.io'],
    resources: ['certificatesigningrequests/approval', 'certificatesigningrequests/status'],
    verbs: ['update'],
  },
  {
    apiGroups: ['certificates.k8s.io'],
    resources: ['signers'],
    resourceNames: [MIGRATION_SIGNER_NAME],
    verbs: ['approve', 'sign'],
  },
];

/** The controller as the migration signer, in the operator's namespace: its CA (Secret) and bundle (ConfigMap). */
export const SIGNER_NAMESPACED_RULES: readonly PolicyRule[] = [
  { apiGroups: [''], resources: ['secrets', 'configmaps'], verbs: ['create'] },
  { apiGroups: [''], resources: ['secrets'], resourceNames: [DEFAULT_CA_SECRET_NAME], verbs: ['get'] },
  { apiGroups: [''], resources: ['configmaps'], resourceNames: [DEFAULT_CA_CONFIGMAP_NAME], verbs: ['get', 'update'] },
];

/**
 * The controller, cluster-wide: it reconciles VMs in every namespace, so its pods, Secrets and Events are in every
 * namespace too. Kept to what it calls (operator/controller): no `update` of VMs (finalizers go by JSON patch), no
 * `list`/`watch` of Secrets (it reads only the Secret of a VM pod it is creating, by name), no PersistentVolumeClaims
 * (the VM pod names claims; the kubelet resolves them).
 *
 * The cost: `get` on Secrets cluster-wide lets the controller read every Secret of the cluster, not only the VM pod
 * Secrets it made. RBAC cannot narrow that — resourceNames are fixed names, and rules cannot select by label. Ways to
 * narrow it, none taken here: bind the Secret rules per namespace with RoleBindings, only in the namespaces that may
 * hold VMs (the install then manages a binding per tenant namespace); or let a ValidatingAdmissionPolicy refuse the
 * controller's writes to Secrets without the `kubevisor.io/vm` label (it cannot guard reads). `create`, `patch`
 * (hand-over) and `delete` are limited the same way by the controller's code only: it writes no Secret it did not
 * create, or that does not name its VM as controller.
 */
export const CONTROLLER_RULES: readonly PolicyRule[] = [
  { apiGroups: [GROUP], resources: ['virtualmachines', 'virtualmachinemigrations'], verbs: ['get', 'list', 'watch'] },
  // Finalizers are added and removed with guarded JSON patches of the object itself.
  { apiGroups: [GROUP], resources: ['virtualmachines', 'virtualmachinemigrations'], verbs: ['patch'] },
  {
    apiGroups: [GROUP],
    resources: ['virtualmachines/status', 'virtualmachinemigrations/status'],
    verbs: ['patch'],
  },
  // Owner references with blockOwnerDeletion (VM → VM pod and Secret, VM pod → attachment pod) need `update` on the
  // owner's finalizers where the OwnerReferencesPermissionEnforcement admission plugin runs.
  { apiGroups: [GROUP], resources: ['virtualmachines/finalizers'], verbs: ['update'] },
  { apiGroups: [''], resources: ['pods/finalizers'], verbs: ['update'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
  // Each VM pod's own Secret: created beside the pod, checked when a create is retried, handed to the pod, removed
  // when its pod never came.
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
];

/**
 * The controller as the Cluster API infrastructure provider (`--cluster-api`), cluster-wide, on top of
 * {@link CONTROLLER_RULES}; granted only when the platform's `clusterApi` prop is on. It reads Cluster API's Clusters
 * and Machines, keeps its own kinds' finalizers, spec (the endpoint, the providerID written once) and status, makes one
 * VM per machine and one control-plane Service per cluster. Not here: Secrets beyond CONTROLLER_RULES — before making
 * a machine's VM the controller checks the bootstrap data Secret with the `get` it already has (its type and cluster
 * label, never handing the VM a Secret Cluster API did not write for that cluster); the VM pod mounts its data.
 *
 * The cost: `create` and `delete` of VirtualMachines and Services in every namespace. The controller's code limits it to
 * VMs and Services it controls (owner references; deletes carry a UID precondition), RBAC cannot.
 */
export const CLUSTER_API_CONTROLLER_RULES: readonly PolicyRule[] = [
  { apiGroups: [CLUSTER_API_GROUP], resources: ['clusters', 'machines'], verbs: ['list', 'watch'] },
  // Finalizers by guarded JSON patch; spec.controlPlaneEndpoint and spec.providerID by merge patch.
  {
    apiGroups: [INFRASTRUCTURE_GROUP],
    resources: ['kubevisorclusters', 'kubevisormachines'],
    verbs: ['list', 'watch', 'patch'],
  },
  {
    apiGroups: [INFRASTRUCTURE_GROUP],
    resources: ['kubevisorclusters/status', 'kubevisormachines/status'],
    verbs: ['patch'],
  },
  // Owner references with blockOwnerDeletion (KubevisorCluster → Service, KubevisorMachine → VM), where the
  // OwnerReferencesPermissionEnforcement admission plugin runs.
  {
    apiGroups: [INFRASTRUCTURE_GROUP],
    resources: ['kubevisorclusters/finalizers', 'kubevisormachines/finalizers'],
    verbs: ['update'],
  },
  // The control-plane Service: cached by label, read by name before it is first applied (another object may hold the
  // name), kept by server-side apply (a create when absent), deleted with its cluster.
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  // One VM per machine, deleted with the machine (reads come with CONTROLLER_RULES).
  { apiGroups: [GROUP], resources: ['virtualmachines'], verbs: ['create', 'delete'] },
];

/**
 * Cluster API's own manager (its core controllers, under its ClusterRole that aggregates every role labelled
 * {@link CLUSTER_API_AGGREGATE_LABEL}): the contract asks each provider to grant it its kinds, which it reads, labels,
 * owns, clones from templates and deletes.
 */
export const CLUSTER_API_MANAGER_RULES: readonly PolicyRule[] = [
  {
    apiGroups: [INFRASTRUCTURE_GROUP],
    resources: ['kubevisorclusters', 'kubevisormachines', 'kubevisormachinetemplates'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
];

/** The label that adds a ClusterRole to Cluster API's manager role. */
export const CLUSTER_API_AGGREGATE_LABEL = `${CLUSTER_API_GROUP}/aggregate-to-manager`;

/** The controller's leader-election Lease, unless `--lease-name` names another (then grant that name instead). */
export const DEFAULT_LEASE_NAME = 'kubevisor-controller';

/** The controller, in its own namespace: the leader-election Lease (created once, then read and renewed). */
export const CONTROLLER_NAMESPACED_RULES: readonly PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
  {
    apiGroups: ['coordination.k8s.io'],
    resources: ['leases'],
    resourceNames: [DEFAULT_LEASE_NAME],
    verbs: ['get', 'update'],
  },
];

/**
 * Node setup (`kubevisor node-setup`), cluster-wide: it labels its own Node (KVM, CPU model) with a merge patch and
 * reads nothing. RBAC cannot limit the patch to the pod's own node or to kubevisor's labels; the platform's
 * ValidatingAdmissionPolicy does (constructs/cdk8s/node-setup.ts).
 */
export const NODE_SETUP_RULES: readonly PolicyRule[] = [{ apiGroups: [''], resources: ['nodes'], verbs: ['patch'] }];
