/**
 * The controller's identity on the e2e control plane, as the platform install gives it: the ServiceAccount
 * `kubevisor-controller` in a namespace that plays the install's `kubevisor-system`, bound to exactly the controller's
 * rules of operator/rbac.ts — CONTROLLER_RULES and SIGNER_CLUSTER_RULES cluster-wide, the Lease and the migration CA
 * (CONTROLLER_NAMESPACED_RULES, SIGNER_NAMESPACED_RULES) in that namespace — and a token of it. Every suite that runs
 * the controller or its migration signer runs it with this identity, never as admin: each step those suites take shows
 * the install's rules suffice, and the API server's audit log names, by this user, every call the controller made
 * (test/e2e/rbac.e2e.test.ts proves each one against the platform's own RBAC objects).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CONTROLLER_SERVICE_ACCOUNT,
  DAEMON_SERVICE_ACCOUNT,
  NODE_SETUP_SERVICE_ACCOUNT,
  serviceAccountUser,
} from '../../../constructs/platform/names';
import {
  CLUSTER_API_CONTROLLER_RULES,
  CONTROLLER_NAMESPACED_RULES,
  CONTROLLER_RULES,
  SIGNER_CLUSTER_RULES,
  SIGNER_NAMESPACED_RULES,
} from '../../../operator/rbac';
import type { KubeClient, KubeObject } from './kube-client';
import { writeTokenKubeconfig } from './kubeconfig';
import { sharedControlPlaneInfo } from './shared';
import { waitFor } from './wait';

/** The operator's processes, each with its own ServiceAccount in the install. */
export type OperatorRole = 'controller' | 'daemon' | 'node-setup';

/** The ServiceAccount name of each role, as the install names it (the e2e suites use the same names). */
export const OPERATOR_SERVICE_ACCOUNTS: Readonly<Record<OperatorRole, string>> = {
  controller: CONTROLLER_SERVICE_ACCOUNT,
  daemon: DAEMON_SERVICE_ACCOUNT,
  'node-setup': NODE_SETUP_SERVICE_ACCOUNT,
};

/**
 * Which operator role a user of the audit log is, and the namespace that played `kubevisor-system` for it (its
 * ServiceAccount's namespace, as in the install): the suites run each operator process as a ServiceAccount named as
 * the install names that role's, so the name alone says the role. Undefined for every other user.
 */
export function operatorRoleOf(username: string): { role: OperatorRole; platformNamespace: string } | undefined {
  const match = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  if (!match) return undefined;
  const [, namespace, account] = match;
  const role = (Object.keys(OPERATOR_SERVICE_ACCOUNTS) as OperatorRole[]).find(
    (r) => OPERATOR_SERVICE_ACCOUNTS[r] === account,
  );
  return role ? { role, platformNamespace: namespace } : undefined;
}

/** The controller's credentials, and what removes them. */
export interface ControllerIdentity {
  /** Plays `kubevisor-system`: the ServiceAccount, the Lease and the migration CA are here. */
  platformNamespace: string;
  /** The user the API server gives the token. */
  username: string;
  /** A ServiceAccount token (TokenRequest, one hour). */
  token: string;
  /** A kubeconfig that authenticates with `token` only. */
  kubeconfigPath: string;
  /** Controller flags that put its Lease and migration CA in `platformNamespace` (defaults are kubevisor-system). */
  args: string[];
  /** Deletes what the install created, the namespace too if it made it. Idempotent. */
  remove(): Promise<void>;
}

const RBAC = 'rbac.authorization.k8s.io/v1';

/**
 * The controller's ServiceAccount, its RBAC (exactly the install's rules) and a token. `platformNamespace` is created
 * if absent (waiting out a namespace of that name still terminating from an earlier file) and then removed by
 * remove(); the daemon and migration suites pass `kubevisor-system`, where the daemons look for the migration CA, the
 * others a namespace of their own so that no file inherits another's Lease or CA.
 */
export async function installControllerIdentity(
  admin: KubeClient,
  /** clusterApi: also the rules the install adds for the Cluster API provider (platform prop `clusterApi`). */
  options: { platformNamespace: string; clusterApi?: boolean },
): Promise<ControllerIdentity> {
  const namespace = options.platformNamespace;
  const account = CONTROLLER_SERVICE_ACCOUNT;
  // Cluster-scoped, so named per platform namespace: two files' identities never share (or delete) a ClusterRole.
  const clusterName = `kubevisor-e2e:${namespace}:controller`;
  const labels = { 'app.kubernetes.io/name': 'kubevisor-e2e', 'app.kubernetes.io/component': 'controller' };
  const subjects = [{ kind: 'ServiceAccount', name: account, namespace }];
  const created: KubeObject[] = [];
  // Holds a token: removed with the rest.
  const kubeconfigDir = mkdtempSync(join(tmpdir(), 'kubevisor-controller-rbac-'));
  let removed: Promise<void> | undefined;
  const remove = (): Promise<void> =>
    (removed ??= (async () => {
      rmSync(kubeconfigDir, { recursive: true, force: true });
      for (const object of [...created].reverse()) {
        const { apiVersion, kind, metadata } = object;
        await admin.delete(apiVersion, kind, metadata.name ?? '', metadata.namespace, { ignoreNotFound: true });
      }
    })());
  try {
    await waitFor(
      `namespace ${namespace} to finish terminating`,
      async () => ((await admin.tryGet('v1', 'Namespace', namespace))?.metadata.deletionTimestamp ? undefined : true),
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    const create = async (object: KubeObject): Promise<void> => {
      await admin.create(object);
      created.push(object);
    };
    if (!(await admin.tryGet('v1', 'Namespace', namespace))) {
      await create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels } });
    }
    await create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: account, namespace, labels } });
    await create({
      apiVersion: RBAC,
      kind: 'ClusterRole',
      metadata: { name: clusterName, labels },
      rules: [
        ...CONTROLLER_RULES,
        ...SIGNER_CLUSTER_RULES,
        ...(options.clusterApi ? CLUSTER_API_CONTROLLER_RULES : []),
      ],
    });
    await create({
      apiVersion: RBAC,
      kind: 'ClusterRoleBinding',
      metadata: { name: clusterName, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterName },
      subjects,
    });
    await create({
      apiVersion: RBAC,
      kind: 'Role',
      metadata: { name: account, namespace, labels },
      rules: [...CONTROLLER_NAMESPACED_RULES, ...SIGNER_NAMESPACED_RULES],
    });
    await create({
      apiVersion: RBAC,
      kind: 'RoleBinding',
      metadata: { name: account, namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: account },
      subjects,
    });
    const request = await admin.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${account}/token`,
      { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } } },
    );
    const token = request.status.token;
    const info = sharedControlPlaneInfo();
    const kubeconfigPath = join(kubeconfigDir, 'kubeconfig');
    writeTokenKubeconfig(kubeconfigPath, { server: info.server, caPem: info.caPem, token });
    return {
      platformNamespace: namespace,
      username: serviceAccountUser(account, namespace),
      token,
      kubeconfigPath,
      args: ['--lease-namespace', namespace, '--pki-namespace', namespace],
      remove,
    };
  } catch (error) {
    await remove().catch(() => undefined);
    throw error;
  }
}
