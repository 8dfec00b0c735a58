// Cluster API's own managers (harness/cluster-api.ts) run against the shared control plane: their admission webhooks
// answer for real (a server-side dry run gets Cluster API's defaulting and its verdict), and stop() leaves nothing
// cluster-scoped behind for the other e2e files.
import { startClusterApi } from './harness/cluster-api';
import type { ClusterApi } from './harness/cluster-api';
import { KubeApiError } from './harness/kube-client';
import type { KubeObject } from './harness/kube-client';
import { sharedControlPlane } from './harness/shared';

const client = sharedControlPlane();
// Dry runs persist nothing, so any existing namespace will do.
const namespace = 'default';
let clusterApi: ClusterApi | undefined;

interface KubeadmControlPlane extends KubeObject {
  spec: {
    version: string;
    replicas?: number;
    rollout?: { strategy?: { type?: string; rollingUpdate?: { maxSurge?: number | string } } };
  };
}

/** A v1beta2 KubeadmControlPlane; `external` switches etcd to an external cluster (what the nested-cluster e2e uses). */
function kubeadmControlPlane(overrides: { version: string; replicas?: number; external?: boolean }): KubeObject {
  return {
    apiVersion: 'controlplane.cluster.x-k8s.io/v1beta2',
    kind: 'KubeadmControlPlane',
    metadata: { name: 'harness', namespace },
    spec: {
      version: overrides.version,
      ...(overrides.replicas === undefined ? {} : { replicas: overrides.replicas }),
      machineTemplate: {
        spec: {
          infrastructureRef: {
            apiGroup: 'infrastructure.cluster.x-k8s.io',
            kind: 'HarnessMachineTemplate',
            name: 'harness',
          },
        },
      },
      kubeadmConfigSpec: overrides.external
        ? {
            clusterConfiguration: {
              etcd: {
                external: {
                  endpoints: ['https://127.0.0.1:2379'],
                  caFile: '/etc/kubernetes/pki/etcd/ca.crt',
                  certFile: '/etc/kubernetes/pki/apiserver-etcd-client.crt',
                  keyFile: '/etc/kubernetes/pki/apiserver-etcd-client.key',
                },
              },
            },
          }
        : // The schema wants some content; a SAN is the least that says nothing about etcd.
          { clusterConfiguration: { apiServer: { certSANs: ['localhost'] } } },
    },
  };
}

function cluster(spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'cluster.x-k8s.io/v1beta2',
    kind: 'Cluster',
    metadata: { name: 'harness', namespace },
    spec: {
      controlPlaneRef: { apiGroup: 'controlplane.cluster.x-k8s.io', kind: 'KubeadmControlPlane', name: 'harness' },
      infrastructureRef: { apiGroup: 'infrastructure.cluster.x-k8s.io', kind: 'HarnessCluster', name: 'harness' },
      ...spec,
    },
  };
}

async function rejection(object: KubeObject): Promise<KubeApiError> {
  try {
    await client.create(object, { dryRun: true });
  } catch (error) {
    if (error instanceof KubeApiError) return error;
    throw error;
  }
  throw new Error(`dry-run create of ${object.kind} was accepted`);
}

beforeAll(async () => {
  // A cold cache builds the managers first (about 3 minutes on 2 cores).
  clusterApi = await startClusterApi();
}, 900_000);

afterAll(async () => {
  await clusterApi?.stop();
  client.close();
}, 120_000);

test('the mutating webhook defaults a KubeadmControlPlane as Cluster API does', async () => {
  const defaulted = (await client.create(kubeadmControlPlane({ version: '1.35.8' }), {
    dryRun: true,
  })) as KubeadmControlPlane;
  expect(defaulted.spec.version).toBe('v1.35.8');
  expect(defaulted.spec.replicas).toBe(1);
  expect(defaulted.spec.rollout?.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } });
});

test('the validating webhook gives Cluster API verdicts', async () => {
  const even = await rejection(kubeadmControlPlane({ version: 'v1.35.8', replicas: 2 }));
  expect(even.code).toBe(422);
  expect(even.serverMessage).toContain('cannot be an even number when etcd is stacked');
  // The same replica count is fine with external etcd (the mode the nested-cluster e2e uses).
  await expect(
    client.create(kubeadmControlPlane({ version: 'v1.35.8', replicas: 2, external: true }), { dryRun: true }),
  ).resolves.toBeDefined();

  await expect(client.create(cluster(), { dryRun: true })).resolves.toBeDefined();
  const topology = await rejection(cluster({ topology: { classRef: { name: 'some-class' }, version: 'v1.35.8' } }));
  expect(topology.serverMessage).toContain('ClusterTopology');
});

test('the managers keep running', () => {
  for (const [manager, pid] of Object.entries(clusterApi?.pids ?? {})) {
    // Signal 0 only checks the process exists.
    expect({ manager, alive: process.kill(pid, 0) }).toEqual({ manager, alive: true });
  }
});

test('stop() removes every CRD and webhook configuration and ends the managers', async () => {
  const running = clusterApi;
  if (!running) throw new Error('Cluster API did not start');
  const crds = running.crdNames;
  const webhooks = running.webhookConfigurations;
  const pids = Object.values(running.pids);
  expect(crds.length).toBeGreaterThan(10);
  await running.stop();
  clusterApi = undefined;
  for (const name of crds) {
    expect(await client.tryGet('apiextensions.k8s.io/v1', 'CustomResourceDefinition', name)).toBeUndefined();
  }
  for (const name of webhooks.mutating) {
    expect(
      await client.tryGet('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', name),
    ).toBeUndefined();
  }
  for (const name of webhooks.validating) {
    expect(
      await client.tryGet('admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration', name),
    ).toBeUndefined();
  }
  for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
});
