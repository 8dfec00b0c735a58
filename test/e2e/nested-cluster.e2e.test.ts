/**
 * A nested Kubernetes cluster end to end, on the real control plane: Cluster API v1.14.2's own managers (core, kubeadm
 * bootstrap, kubeadm control plane; harness/cluster-api.ts) with kubevisor's controller as the infrastructure provider
 * (`--cluster-api`, under the install's controller rules), the NestedCluster construct's objects applied as a user
 * would, and every machine a real VirtualMachine whose pod runs on a KWOK node (kubelet stand-in, a real node daemon,
 * the CH stand-in; harness/vm-nodes.ts).
 *
 * Played, because the guests cannot boot kubeadm here (harness/tenant-cluster.ts): the tenant cluster itself — a real
 * etcd and API server at the endpoint the provider set, with certificates from the CA Cluster API generated, and what
 * kubeadm would have left in it once each VM joined (its Node with the VM's providerID, the control-plane static pods,
 * kubeadm-config) — and the management cluster's load balancer, which gives the control-plane Service an address.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { INFRASTRUCTURE_API_VERSION } from '../../api';
import { metaData } from '../../operator/launcher/cloud-init';
import { buildApp } from '../../stacks/cdk8s/app';
import { renderNestedCluster, type NestedClusterProps } from '../../constructs';
import { NESTED_CLUSTER_EXAMPLE } from '../../stacks/examples';
import { startClusterApi, type ClusterApi } from './harness/cluster-api';
import { installCrds } from './harness/crds';
import type { KubeObject } from './harness/kube-client';
import { DAEMON_NAMESPACE, installDaemonIdentity, type DaemonIdentityInstall } from './harness/node-identity';
import { installControllerIdentity, type ControllerIdentity } from './harness/operator-identity';
import { startController, type OperatorProcess } from './harness/operator-process';
import { sharedControlPlane, sharedControlPlaneInfo } from './harness/shared';
import { prepareTenantCluster, type TenantCluster } from './harness/tenant-cluster';
import { startVmNodes, stopVmNodes, type VmNode } from './harness/vm-nodes';
import { waitFor } from './harness/wait';

const client = sharedControlPlane();
const info = sharedControlPlaneInfo();
const ns = `e2e-nested-${Date.now().toString(36)}`;
const root = mkdtempSync(path.join(tmpdir(), 'kubevisor-e2e-nested-'));
const CLUSTER = 'tenant';
// The played load balancer's address: a loopback address of its own, where the tenant API server listens.
const LB_IP = `127.77.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
const CAPI = 'cluster.x-k8s.io/v1beta2';
const KCP = 'controlplane.cluster.x-k8s.io/v1beta2';
const VM = 'kubevisor.io/v1alpha1';
const within = { timeoutMs: 240_000, intervalMs: 500 };

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface Machine extends KubeObject {
  spec: {
    version?: string;
    bootstrap?: { dataSecretName?: string };
    infrastructureRef?: { name: string };
  };
  status?: { phase?: string; nodeRef?: { name?: string }; conditions?: Condition[] };
}
interface KubevisorMachine extends KubeObject {
  spec: { providerID?: string };
  status?: { initialization?: { provisioned?: boolean }; addresses?: { type: string; address: string }[] };
}
interface Vm extends KubeObject {
  spec: { volumes?: { name: string; cloudInit?: { userDataSecretName?: string } }[] };
  status?: { phase?: string; vmPodName?: string };
}

let clusterApi: ClusterApi | undefined;
let tenant: TenantCluster | undefined;
let controller: OperatorProcess | undefined;
let controllerIdentity: ControllerIdentity | undefined;
let daemonIdentity: DaemonIdentityInstall | undefined;
const nodes: VmNode[] = [];
/** Machines whose VM the played tenant cluster has "joined" (kubeadm ran in the guest), by Machine name. */
const joined = new Set<string>();

/** The cluster under test: the example's shape, small VMs, external etcd (the played tenant's real etcd). */
function props(overrides: Partial<NestedClusterProps> = {}): NestedClusterProps {
  if (!tenant) throw new Error('no tenant cluster');
  return {
    ...NESTED_CLUSTER_EXAMPLE,
    metadata: { namespace: ns },
    endpoint: { service: 'LoadBalancer' },
    etcd: { external: tenant.externalEtcd },
    ...overrides,
  };
}

async function applyCluster(p: NestedClusterProps): Promise<KubeObject[]> {
  const objects = renderNestedCluster(CLUSTER, p) as unknown as KubeObject[];
  for (const o of objects) await client.apply(o);
  return objects;
}

const machines = () => client.list<Machine>(CAPI, 'Machine', { namespace: ns });
const vms = () => client.list<Vm>(VM, 'VirtualMachine', { namespace: ns });

/**
 * Plays kubeadm in each guest: once the provider reports a machine's VM running (providerID set, provisioned), the
 * Node it would register appears in the tenant cluster, from the bootstrap data the VM was given.
 */
async function playGuests(): Promise<void> {
  const running = tenant;
  if (!running) return;
  for (const machine of await machines()) {
    const name = machine.metadata.name ?? '';
    const secretName = machine.spec.bootstrap?.dataSecretName;
    if (joined.has(name) || machine.metadata.deletionTimestamp || !secretName) continue;
    const infra = await client.tryGet<KubevisorMachine>(
      INFRASTRUCTURE_API_VERSION,
      'KubevisorMachine',
      machine.spec.infrastructureRef?.name ?? '',
      ns,
    );
    if (!infra?.spec.providerID || !infra.status?.initialization?.provisioned) continue;
    const vm = await client.get<Vm>(VM, 'VirtualMachine', infra.metadata.name ?? '', ns);
    const secret = await client.get<KubeObject & { data: { value: string } }>('v1', 'Secret', secretName, ns);
    const bootstrapData = Buffer.from(secret.data.value, 'base64').toString('utf8');
    // What the guest's kubelet would register as: the provider-id kubelet argument of the bootstrap data, rendered by
    // cloud-init (jinja) with the instance-id of the meta-data the launcher writes for this VM.
    const providerID = guestProviderId(bootstrapData, vm);
    expect(providerID).toBe(infra.spec.providerID);
    await running.joinNode({
      name,
      providerID,
      controlPlane: machine.metadata.labels?.['cluster.x-k8s.io/control-plane'] !== undefined,
      kubernetesVersion: machine.spec.version ?? '',
      bootstrapData,
    });
    joined.add(name);
  }
}

/** The provider ID the guest's kubelet gets: cloud-init renders the jinja user-data with the launcher's meta-data. */
function guestProviderId(bootstrapData: string, vm: Vm): string {
  if (!bootstrapData.startsWith('## template: jinja')) throw new Error('bootstrap data is not a jinja template');
  const arg = /name: provider-id\s*\n\s*value: ['"]?(.+?)['"]?\s*$/m.exec(bootstrapData);
  if (!arg) throw new Error('no provider-id kubelet argument in the bootstrap data');
  const meta = parseYaml(metaData({ metadata: vm.metadata } as Parameters<typeof metaData>[0])) as {
    'instance-id': string;
  };
  return arg[1].replace(/\{\{ ?ds\.meta_data\.instance_id ?\}\}/, meta['instance-id']);
}

/** Waits, playing the guests meanwhile, until `want` machines are Running (and only those), all at `version`. */
async function machinesRunning(want: number, version: string, timeoutMs = within.timeoutMs): Promise<Machine[]> {
  let last: Machine[] = [];
  try {
    return await waitFor(
      `${want} Machines Running at ${version}`,
      async () => {
        await playGuests();
        last = await machines();
        const ok =
          last.length === want &&
          last.every(
            (m) => m.status?.phase === 'Running' && m.spec.version === version && !m.metadata.deletionTimestamp,
          );
        return ok ? last : undefined;
      },
      { ...within, timeoutMs },
    );
  } catch (e) {
    const summary = last.map((m) => `${m.metadata.name} ${m.spec.version} ${m.status?.phase}`).join(', ');
    throw new Error(
      `${(e as Error).message}\nmachines: ${summary}\ncontroller:\n${controller?.lines().slice(-15).join('\n')}`,
    );
  }
}

/** The played load balancer: gives the control-plane Service the loopback address the tenant API server listens on. */
async function playLoadBalancer(): Promise<void> {
  const service = await waitFor(
    'the control-plane Service',
    async () =>
      (await client.list<KubeObject & { spec: { type?: string } }>('v1', 'Service', { namespace: ns })).find(
        (s) => s.metadata.labels?.['cluster.x-k8s.io/cluster-name'] === CLUSTER,
      ),
    within,
  );
  expect(service.spec.type).toBe('LoadBalancer');
  await client.patchStatus(service, { status: { loadBalancer: { ingress: [{ ip: LB_IP }] } } });
}

beforeAll(async () => {
  clusterApi = await startClusterApi();
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await installCrds(client);
  daemonIdentity = await installDaemonIdentity(client);
  controllerIdentity = await installControllerIdentity(client, {
    platformNamespace: DAEMON_NAMESPACE,
    clusterApi: true,
  });
  controller = await startController(controllerIdentity.kubeconfigPath, [
    ...controllerIdentity.args,
    '--namespace',
    ns,
    '--cluster-api',
    // The played load balancer serves the control-plane Service (platform prop clusterApi: { loadBalancers: true }).
    '--cluster-api-load-balancers',
  ]);
  await startVmNodes(client, info, root, nodes);
  tenant = await prepareTenantCluster({
    client,
    namespace: ns,
    clusterName: CLUSTER,
    endpointHost: LB_IP,
    endpointPort: 6443,
  });
}, 900_000);

afterAll(async () => {
  // The Cluster first, while every controller still runs: its finalizers need them.
  if (await client.tryGet(CAPI, 'Cluster', CLUSTER, ns)) {
    await client.delete(CAPI, 'Cluster', CLUSTER, ns, { ignoreNotFound: true });
    await waitFor(
      'the Cluster gone',
      async () => ((await client.tryGet(CAPI, 'Cluster', CLUSTER, ns)) ? undefined : true),
      within,
    ).catch(() => undefined);
  }
  await tenant?.stop();
  await clusterApi?.stop();
  await Promise.all(nodes.map((n) => n.daemon.stop()));
  await controller?.stop();
  await stopVmNodes(nodes);
  await controllerIdentity?.remove();
  await daemonIdentity?.remove();
  await client.delete('v1', 'Namespace', ns, undefined, { ignoreNotFound: true });
  client.close();
  rmSync(root, { recursive: true, force: true });
}, 300_000);

test("the nested cluster `npm run synth` writes passes server-side dry-run with Cluster API's CRDs and webhooks", async () => {
  const out = path.join(root, 'synth');
  buildApp(out).synth();
  const file = readdirSync(out).find((f) => f.includes('nested-cluster'));
  const objects = parseAllDocuments(readFileSync(path.join(out, file ?? ''), 'utf8')).map(
    (d) => d.toJS() as KubeObject,
  );
  const kinds = new Set(objects.map((o) => o.kind));
  for (const kind of [
    'Cluster',
    'KubevisorCluster',
    'KubeadmControlPlane',
    'KubevisorMachineTemplate',
    'MachineDeployment',
    'KubeadmConfigTemplate',
    'MachineHealthCheck',
    'ClusterResourceSet',
  ])
    expect(kinds).toContain(kind);
  for (const o of objects) {
    const applied = await client.apply(o, { dryRun: true });
    expect(applied.metadata.name).toBe(o.metadata.name);
  }
  process.stdout.write(`nested: ${objects.length} synthesized objects accepted by a server-side dry run\n`);
});

let endpoint = '';
let firstVersion = '';

test('the cluster comes up: every machine a VM, Running, its Node in the tenant cluster with the VM providerID', async () => {
  firstVersion = props().kubernetesVersion;
  const startedAt = Date.now();
  await applyCluster(props());
  await playLoadBalancer();
  await tenant!.start();
  const running = await machinesRunning(3, firstVersion);
  // The provider set the endpoint from the load balancer, and Cluster API copied it into the Cluster.
  const cluster = await client.get<KubeObject & { spec: { controlPlaneEndpoint?: { host: string; port: number } } }>(
    CAPI,
    'Cluster',
    CLUSTER,
    ns,
  );
  expect(cluster.spec.controlPlaneEndpoint).toEqual({ host: LB_IP, port: 6443 });
  endpoint = `${LB_IP}:6443`;
  // The provider's cluster object is provisioned, and Cluster API reports the whole cluster Available.
  const infraCluster = await client.get<KubeObject & { status?: { initialization?: { provisioned?: boolean } } }>(
    INFRASTRUCTURE_API_VERSION,
    'KubevisorCluster',
    CLUSTER,
    ns,
  );
  expect(infraCluster.status?.initialization?.provisioned).toBe(true);
  let conditions: Condition[] = [];
  await waitFor(
    'the Cluster Available',
    async () => {
      await playGuests();
      const c = await client.get<KubeObject & { status?: { conditions?: Condition[] } }>(CAPI, 'Cluster', CLUSTER, ns);
      conditions = c.status?.conditions ?? [];
      return conditions.some((x) => x.type === 'Available' && x.status === 'True') ? true : undefined;
    },
    within,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\nconditions: ${JSON.stringify(conditions, null, 1)}`);
  });
  // Each machine is a VM of its name, with the bootstrap data referenced (never copied) from Cluster API's Secret.
  const byName = new Map((await vms()).map((v) => [v.metadata.name, v]));
  const tenantClient = tenant!.client();
  try {
    for (const m of running) {
      const vm = byName.get(m.metadata.name);
      expect(vm?.status?.phase).toBe('Running');
      const bootstrap = vm?.spec.volumes?.find((v) => v.cloudInit);
      expect(bootstrap?.cloudInit?.userDataSecretName).toBe(m.spec.bootstrap?.dataSecretName);
      const secret = await client.get<KubeObject & { data: { value: string } }>(
        'v1',
        'Secret',
        m.spec.bootstrap?.dataSecretName ?? '',
        ns,
      );
      expect(JSON.stringify(vm)).not.toContain(secret.data.value.slice(0, 64));
      const infra = await client.get<KubevisorMachine>(
        INFRASTRUCTURE_API_VERSION,
        'KubevisorMachine',
        m.metadata.name!,
        ns,
      );
      expect(infra.spec.providerID).toBe(`kubevisor://${vm?.metadata.uid}`);
      expect(infra.status?.addresses).toEqual(expect.arrayContaining([{ type: 'Hostname', address: m.metadata.name }]));
      const node = await tenantClient.get<KubeObject & { spec: { providerID?: string } }>(
        'v1',
        'Node',
        m.status!.nodeRef!.name!,
      );
      expect(node.spec.providerID).toBe(infra.spec.providerID);
    }
  } finally {
    tenantClient.close();
  }
  process.stdout.write(
    `nested: ${running.length} machines Running in ${Math.round((Date.now() - startedAt) / 1000)} s after apply\n`,
  );
});

test('scaling the worker pool up and down adds and removes machines and their VMs', async () => {
  await applyCluster(props({ workers: [{ ...NESTED_CLUSTER_EXAMPLE.workers![0]!, replicas: 3 }] }));
  await machinesRunning(4, firstVersion);
  expect((await vms()).length).toBe(4);
  await applyCluster(props({ workers: [{ ...NESTED_CLUSTER_EXAMPLE.workers![0]!, replicas: 1 }] }));
  await machinesRunning(2, firstVersion);
  await waitFor('the removed machines’ VMs gone', async () => ((await vms()).length === 2 ? true : undefined), within);
});

test('a Kubernetes version bump rolls every machine onto new templates', async () => {
  const scaled = { workers: [{ ...NESTED_CLUSTER_EXAMPLE.workers![0]!, replicas: 1 }] };
  const before = await applyCluster(props(scaled));
  const next = bumpPatch(firstVersion);
  const startedAt = Date.now();
  const after = await applyCluster(props({ ...scaled, kubernetesVersion: next }));
  const templates = (objects: KubeObject[]) =>
    objects
      .filter((o) => o.kind === 'KubevisorMachineTemplate' || o.kind === 'KubeadmConfigTemplate')
      .map((o) => o.metadata.name);
  // Content-hash names: a version change is a new template, so Cluster API rolls the machines.
  expect(templates(after).filter((n) => templates(before).includes(n))).toEqual([]);
  const oldMachines = new Set((await machines()).map((m) => m.metadata.name));
  const rolled = await machinesRunning(2, next, 420_000);
  expect(rolled.filter((m) => oldMachines.has(m.metadata.name))).toEqual([]);
  await waitFor(
    'only the new machines’ VMs left',
    async () => {
      const names = (await vms()).map((v) => v.metadata.name);
      return names.length === 2 && names.every((n) => !oldMachines.has(n)) ? true : undefined;
    },
    within,
  );
  process.stdout.write(
    `nested: ${rolled.length} machines Running, endpoint ${endpoint}, rollout in ${Math.round((Date.now() - startedAt) / 1000)} s\n`,
  );
});

test('deleting the cluster removes every VM', async () => {
  await client.delete(CAPI, 'Cluster', CLUSTER, ns);
  await waitFor(
    'Cluster, Machines, KubevisorMachines and VMs gone',
    async () => {
      const left = [
        ...(await client.list(CAPI, 'Cluster', { namespace: ns })),
        ...(await machines()),
        ...(await client.list(INFRASTRUCTURE_API_VERSION, 'KubevisorMachine', { namespace: ns })),
        ...(await client.list(KCP, 'KubeadmControlPlane', { namespace: ns })),
        ...(await vms()),
      ];
      return left.length === 0 ? true : undefined;
    },
    within,
  );
});

/** v1.35.8 → v1.35.9 */
function bumpPatch(version: string): string {
  const [major, minor, patch] = version.replace(/^v/, '').split('.').map(Number);
  return `v${major}.${minor}.${(patch ?? 0) + 1}`;
}
