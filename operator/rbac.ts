/**
 * What the operator's processes may do, as RBAC rules: the one source for the platform install and for the e2e
 * suites, which run the node daemons under exactly these rules (with a token bound to a pod on their node).
 */
import { GROUP } from '../api';
import { DEFAULT_CA_CONFIGMAP_NAME, DEFAULT_CA_SECRET_NAME, MIGRATION_SIGNER_NAME } from './migration-pki';

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
