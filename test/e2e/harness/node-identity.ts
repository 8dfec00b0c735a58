// A node daemon's identity on the e2e control plane, as a DaemonSet pod would have it: the daemon ServiceAccount,
// a "daemon" pod pinned to a KWOK node (KWOK marks it Running; nothing runs), and a service account token bound to
// that pod through the TokenRequest API. Kubernetes (≥ 1.32) puts the pod's node into such a token, and the API
// server reports it as the user-info extra `authentication.kubernetes.io/node-name`: the identity the migration
// signer trusts. Later tests run real daemon processes with these tokens.
import { isConflict } from '../../../operator/kube';
import { DAEMON_CLUSTER_RULES, DAEMON_NAMESPACED_RULES } from '../../../operator/rbac';
import type { KubeClient, KubeObject } from './kube-client';
import { waitFor } from './wait';

export const DAEMON_NAMESPACE = 'kubevisor-system';
export const DAEMON_SERVICE_ACCOUNT = 'kubevisor-daemon';
/** The daemon's RBAC for the migration PKI, cluster part (CSRs are cluster-scoped). */
export const DAEMON_PKI_CLUSTER_ROLE = 'kubevisor-daemon-migration-pki';
/** The daemon's RBAC for the migration PKI, namespaced part (the CA bundle ConfigMap). */
export const DAEMON_PKI_ROLE = 'kubevisor-daemon-migration-ca';

/** The daemon's rules, exactly as the install grants them (operator/rbac.ts). */
export const daemonPkiClusterRules = DAEMON_CLUSTER_RULES;
export const daemonPkiNamespacedRules = DAEMON_NAMESPACED_RULES;

interface PodObject extends KubeObject {
  spec: { nodeName?: string };
  status?: { phase?: string };
}

interface TokenRequestObject extends KubeObject {
  status: { token: string; expirationTimestamp: string };
}

/** What installDaemonIdentity made, so that exactly that is removed. */
export interface DaemonIdentityInstall {
  namespace: string;
  serviceAccount: string;
  /** The user name the API server gives the ServiceAccount's tokens. */
  username: string;
  /** Deletes what this install created (a namespace that existed before is kept). */
  remove(): Promise<void>;
}

/**
 * The daemon ServiceAccount and its RBAC (operator/rbac.ts), in `kubevisor-system` unless told otherwise. Objects
 * that already exist are left as they are.
 */
export async function installDaemonIdentity(
  admin: KubeClient,
  options: { namespace?: string; serviceAccount?: string } = {},
): Promise<DaemonIdentityInstall> {
  const namespace = options.namespace ?? DAEMON_NAMESPACE;
  const serviceAccount = options.serviceAccount ?? DAEMON_SERVICE_ACCOUNT;
  const created: KubeObject[] = [];
  const createIfAbsent = async (object: KubeObject): Promise<void> => {
    const { apiVersion, kind, metadata } = object;
    // A namespace an earlier test file removed may still be terminating: nothing can be created in it until it is gone.
    await waitFor(
      `${kind} ${metadata.name} to finish terminating`,
      async () =>
        (await admin.tryGet(apiVersion, kind, metadata.name ?? '', metadata.namespace))?.metadata.deletionTimestamp
          ? undefined
          : true,
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    if (await admin.tryGet(apiVersion, kind, metadata.name ?? '', metadata.namespace)) return;
    await admin.create(object);
    created.push(object);
  };
  const subject = { kind: 'ServiceAccount', name: serviceAccount, namespace };
  const labels = { 'app.kubernetes.io/name': 'kubevisor', 'app.kubernetes.io/component': 'daemon' };
  await createIfAbsent({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels } });
  await createIfAbsent({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: serviceAccount, namespace, labels },
  });
  await createIfAbsent({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: DAEMON_PKI_CLUSTER_ROLE, labels },
    rules: daemonPkiClusterRules,
  });
  await createIfAbsent({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: DAEMON_PKI_CLUSTER_ROLE, labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: DAEMON_PKI_CLUSTER_ROLE },
    subjects: [subject],
  });
  await createIfAbsent({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: DAEMON_PKI_ROLE, namespace, labels },
    rules: daemonPkiNamespacedRules,
  });
  await createIfAbsent({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: DAEMON_PKI_ROLE, namespace, labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: DAEMON_PKI_ROLE },
    subjects: [subject],
  });
  return {
    namespace,
    serviceAccount,
    username: `system:serviceaccount:${namespace}:${serviceAccount}`,
    remove: async () => {
      for (const object of created.reverse()) {
        const { apiVersion, kind, metadata } = object;
        await admin.delete(apiVersion, kind, metadata.name ?? '', metadata.namespace, { ignoreNotFound: true });
      }
    },
  };
}

/** A daemon's credentials on one node. */
export interface NodeIdentity {
  nodeName: string;
  podName: string;
  podUid: string;
  /** A service account token bound to the daemon pod (and so to its node). */
  token: string;
  /** A client authenticated only by `token` (no client certificate). Closed by remove(). */
  client: KubeClient;
  /** Deletes the daemon pod (which also invalidates the token) and closes the client. */
  remove(): Promise<void>;
}

export interface NodeIdentityOptions {
  namespace?: string;
  serviceAccount?: string;
  /** Token lifetime (the API server's minimum is 600). @default 3600 */
  expirationSeconds?: number;
  /** Bound on the wait for the pod to run. @default 60000 */
  timeoutMs?: number;
}

/**
 * The identity of the node daemon on `nodeName`: a daemon pod pinned to the node (created if absent, waited for
 * until Running) and a token bound to it. Call installDaemonIdentity first.
 */
export async function nodeIdentity(
  admin: KubeClient,
  nodeName: string,
  options: NodeIdentityOptions = {},
): Promise<NodeIdentity> {
  const namespace = options.namespace ?? DAEMON_NAMESPACE;
  const serviceAccount = options.serviceAccount ?? DAEMON_SERVICE_ACCOUNT;
  const podName = `kubevisor-daemon-${nodeName}`;
  if (!(await admin.tryGet('v1', 'Pod', podName, namespace))) {
    await admin.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: podName,
        namespace,
        labels: { 'app.kubernetes.io/name': 'kubevisor', 'app.kubernetes.io/component': 'daemon' },
      },
      spec: {
        nodeName,
        serviceAccountName: serviceAccount,
        tolerations: [{ operator: 'Exists' }],
        // KWOK never pulls or runs the image.
        containers: [{ name: 'daemon', image: 'registry.invalid/kubevisor/e2e:never-pulled' }],
      },
    });
  }
  const pod = await waitFor(
    `daemon pod ${podName} Running on ${nodeName}`,
    async () => {
      const current = await admin.get<PodObject>('v1', 'Pod', podName, namespace);
      return current.status?.phase === 'Running' ? current : undefined;
    },
    { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: 100 },
  );
  const podUid = pod.metadata.uid ?? '';
  const request = await admin.request<TokenRequestObject>(
    'POST',
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`,
    {
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          // No audiences: the API server's own, so the token authenticates to it.
          expirationSeconds: options.expirationSeconds ?? 3600,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: podName, uid: podUid },
        },
      },
    },
  );
  const token = request.status.token;
  const client = admin.withToken(token);
  return {
    nodeName,
    podName,
    podUid,
    token,
    client,
    remove: async () => {
      client.close();
      try {
        await admin.delete('v1', 'Pod', podName, namespace, {
          ignoreNotFound: true,
          gracePeriodSeconds: 0,
          preconditions: { uid: podUid },
        });
      } catch (error) {
        // A newer pod of the same name (another test's) is not ours to delete.
        if (!isConflict(error)) throw error;
      }
    },
  };
}

/** The user info the API server sees for `client` (SelfSubjectReview, authentication.k8s.io/v1). */
export async function whoAmI(
  client: KubeClient,
): Promise<{ username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> }> {
  const review = await client.request<{ status?: { userInfo?: Record<string, unknown> } }>(
    'POST',
    '/apis/authentication.k8s.io/v1/selfsubjectreviews',
    { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } },
  );
  return (review.status?.userInfo ?? {}) as {
    username?: string;
    uid?: string;
    groups?: string[];
    extra?: Record<string, string[]>;
  };
}
