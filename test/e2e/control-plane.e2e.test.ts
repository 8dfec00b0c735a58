// The shared e2e control plane works as a cluster: KWOK nodes are Ready, the scheduler binds pods
// and KWOK runs them, the controller-manager's controllers act, and RBAC is enforced.
import { KubeApiError } from './harness/kube-client';
import type { KubeObject } from './harness/kube-client';
import { sharedControlPlane, sharedControlPlaneInfo } from './harness/shared';
import { waitFor } from './harness/wait';

interface PodObject extends KubeObject {
  spec: { nodeName?: string };
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

const client = sharedControlPlane();
const info = sharedControlPlaneInfo();
const namespace = `e2e-control-plane-${Date.now().toString(36)}`;
const within = { timeoutMs: 60_000, intervalMs: 200 };

beforeAll(async () => {
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  // The ServiceAccount admission plugin rejects pods until the controller-manager made this account.
  await waitFor(
    `ServiceAccount ${namespace}/default`,
    () => client.tryGet('v1', 'ServiceAccount', 'default', namespace),
    within,
  );
});

afterAll(async () => {
  // Namespace deletion completes here (the controller-manager runs), but nothing waits for it.
  await client.delete('v1', 'Namespace', namespace, undefined, { ignoreNotFound: true });
  client.close();
});

test('the KWOK nodes are Ready', async () => {
  const nodes = await client.list<KubeObject & { status?: PodObject['status'] }>('v1', 'Node');
  for (const name of info.nodeNames) {
    const node = nodes.find((n) => n.metadata.name === name);
    expect(node?.status?.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'True' }));
  }
});

test('a Pod is scheduled onto a KWOK node and reaches Running', async () => {
  await client.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'plain', namespace },
    // KWOK never pulls or runs the image.
    spec: { containers: [{ name: 'main', image: 'registry.invalid/kubevisor/e2e:never-pulled' }] },
  });
  const pod = await waitFor(
    'pod plain Running',
    async () => {
      const current = await client.get<PodObject>('v1', 'Pod', 'plain', namespace);
      return current.status?.phase === 'Running' ? current : undefined;
    },
    within,
  );
  expect(info.nodeNames).toContain(pod.spec.nodeName);
  expect(pod.status?.podIP).toMatch(/^10\.244\./);
  expect(pod.status?.conditions).toContainEqual(expect.objectContaining({ type: 'PodScheduled', status: 'True' }));
});

test('a Deployment gets a ReplicaSet and Running pods', async () => {
  const labels = { app: 'web' };
  const deployment = await client.create<KubeObject>({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace },
    spec: {
      replicas: 2,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: 'main', image: 'registry.invalid/kubevisor/e2e:never-pulled' }] },
      },
    },
  });
  const replicaSet = await waitFor(
    'a ReplicaSet owned by Deployment web',
    async () => {
      const sets = await client.list('apps/v1', 'ReplicaSet', { namespace, labelSelector: 'app=web' });
      return sets.find((rs) =>
        (rs.metadata.ownerReferences as { uid: string }[] | undefined)?.some((o) => o.uid === deployment.metadata.uid),
      );
    },
    within,
  );
  const pods = await waitFor(
    '2 Running pods of ReplicaSet ' + replicaSet.metadata.name,
    async () => {
      const all = await client.list<PodObject>('v1', 'Pod', { namespace, labelSelector: 'app=web' });
      const running = all.filter((p) => p.status?.phase === 'Running');
      return running.length === 2 ? running : undefined;
    },
    within,
  );
  for (const pod of pods) expect(info.nodeNames).toContain(pod.spec.nodeName);
  await waitFor(
    'Deployment web to report 2 available replicas',
    async () => {
      const current = await client.get<KubeObject & { status?: { availableReplicas?: number } }>(
        'apps/v1',
        'Deployment',
        'web',
        namespace,
      );
      return current.status?.availableReplicas === 2 ? true : undefined;
    },
    within,
  );
});

describe('RBAC is enforced', () => {
  const serviceAccount = (): string => `system:serviceaccount:${namespace}:default`;

  test('the admin (system:masters) may list secrets cluster-wide', async () => {
    await expect(client.list('v1', 'Secret')).resolves.toEqual(expect.any(Array));
  });

  test('an impersonated service account may not list secrets cluster-wide', async () => {
    const unprivileged = client.impersonate({
      user: serviceAccount(),
      groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
    });
    const error = await unprivileged.list('v1', 'Secret').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error).toMatchObject({ code: 403, reason: 'Forbidden' });
    expect((error as KubeApiError).serverMessage).toContain(
      `User "${serviceAccount()}" cannot list resource "secrets"`,
    );
    unprivileged.close();
  });

  test("a service account's own token is authenticated but may not list secrets cluster-wide", async () => {
    // TokenRequest exercises the service-account signing key; the API server verifies it with the public key.
    const tokenRequest = await client.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${namespace}/serviceaccounts/default/token`,
      { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 } } },
    );
    const tokenClient = client.withToken(tokenRequest.status.token);
    const review = await tokenClient.request<{ status: { userInfo: { username: string } } }>(
      'POST',
      '/apis/authentication.k8s.io/v1/selfsubjectreviews',
      { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } },
    );
    expect(review.status.userInfo.username).toBe(serviceAccount());
    await expect(tokenClient.list('v1', 'Secret')).rejects.toMatchObject({ code: 403, reason: 'Forbidden' });
    tokenClient.close();
  });
});
