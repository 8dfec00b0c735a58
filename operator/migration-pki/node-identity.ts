// The names every part of the migration PKI agrees on: the signer, the identity a node's certificate carries,
// the usages it is issued for, and where the CA lives. One file so the daemon (requester), the controller
// (signer) and the relay (verifier) cannot drift apart. The namespace and ServiceAccount are the install's.
import { DAEMON_SERVICE_ACCOUNT, PLATFORM_NAMESPACE, serviceAccountUser } from '../../constructs/platform/names';

/** The signer's name and the CA's objects are the install's (constructs/platform/names.ts). */
export {
  DEFAULT_CA_CONFIGMAP_NAME,
  DEFAULT_CA_SECRET_NAME,
  MIGRATION_SIGNER_NAME,
} from '../../constructs/platform/names';

/**
 * The user-info extra the API server sets from a pod-bound service account token (Kubernetes ≥ 1.32,
 * ServiceAccountTokenPodNodeInfo): the node the pod runs on. The API server copies it into a CSR's spec.extra,
 * which is what lets the signer know which node asked, without trusting anything the request says.
 */
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

/** Prefix of a node's identity in its certificate (subject CN and the DNS SAN). */
export const NODE_IDENTITY_PREFIX = 'kubevisor-node:';

/**
 * Key usages of a node certificate: ECDSA signs (no key encipherment), and each node is a TLS client (source
 * relay) and a TLS server (target relay).
 */
export const MIGRATION_CERT_USAGES: readonly string[] = ['digital signature', 'client auth', 'server auth'];

/** Namespace of the operator: the CA Secret and ConfigMap live here, the daemon's ServiceAccount too. */
export const DEFAULT_PKI_NAMESPACE = PLATFORM_NAMESPACE;
/** Key of the CA bundle in the ConfigMap. */
export const CA_BUNDLE_KEY = 'ca.crt';
/** The user name of the node daemon's ServiceAccount as the API server reports it. */
export const DEFAULT_DAEMON_USERNAME = serviceAccountUser(DAEMON_SERVICE_ACCOUNT, DEFAULT_PKI_NAMESPACE);

/** Node names are DNS subdomains (RFC 1123): what the API server accepts for a Node. */
const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** True when `name` could be a Node's name. */
export function isValidNodeName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && NODE_NAME.test(name);
}

/** The identity of node `nodeName`: `kubevisor-node:<nodeName>`. Throws for a name no Node can have. */
export function nodeIdentityName(nodeName: string): string {
  if (!isValidNodeName(nodeName)) throw new Error(`${JSON.stringify(nodeName)} is not a valid node name`);
  return `${NODE_IDENTITY_PREFIX}${nodeName}`;
}

/** The node an identity names, or undefined when it is not a node identity. */
export function nodeOfIdentityName(identity: string): string | undefined {
  if (!identity.startsWith(NODE_IDENTITY_PREFIX)) return undefined;
  const node = identity.slice(NODE_IDENTITY_PREFIX.length);
  return isValidNodeName(node) ? node : undefined;
}
