/**
 * Names the platform install gives its objects. The operator's defaults (lease, PKI namespace, the daemon user the
 * migration signer trusts) name the same objects, so an install with default props needs no flags.
 */

/** The namespace of the operator's workloads, ServiceAccounts, Lease and migration CA. */
export const PLATFORM_NAMESPACE = 'kubevisor-system';
/** ServiceAccount of the controller Deployment. */
export const CONTROLLER_SERVICE_ACCOUNT = 'kubevisor-controller';
/** ServiceAccount of the node daemon DaemonSet (the migration signer trusts this user: operator/migration-pki). */
export const DAEMON_SERVICE_ACCOUNT = 'kubevisor-daemon';
/** ServiceAccount of the node-setup DaemonSet. */
export const NODE_SETUP_SERVICE_ACCOUNT = 'kubevisor-node-setup';

/** The Kubernetes user name of a ServiceAccount, as RBAC and the audit log see it. */
export const serviceAccountUser = (name: string, namespace = PLATFORM_NAMESPACE) =>
  `system:serviceaccount:${namespace}:${name}`;

/** signerName of every migration certificate request (certificates.k8s.io/v1). */
export const MIGRATION_SIGNER_NAME = 'kubevisor.io/migration-node';
/** Secret holding the migration CA's certificate and private key (tls.crt, tls.key); only the controller reads it. */
export const DEFAULT_CA_SECRET_NAME = 'kubevisor-migration-ca';
/** ConfigMap holding the migration CA certificate bundle (public), which daemons read. */
export const DEFAULT_CA_CONFIGMAP_NAME = 'kubevisor-migration-ca';
