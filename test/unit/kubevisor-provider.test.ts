/**
 * The Cluster API infrastructure provider as the controller runs it with `--cluster-api`: the real store
 * (operator/controller/cluster-api-cluster.ts — informers, event routing, writes) and both reconcilers on work queues,
 * against the loopback API stand-in, playing Cluster API's part by hand (owner references, the Cluster's
 * infrastructureProvisioned, the Machine's bootstrap data) and the VM controller's (the VM's status). Then the install:
 * the `clusterApi` prop adds the flag and exactly the provider's RBAC, and nothing without it.
 */
import type { KubevisorClusterObject, KubevisorMachineObject } from '../../operator/controller/kubevisor-cluster-api';
import { INFRASTRUCTURE_API_VERSION } from '../../api';
import { renderPlatform } from '../../constructs/platform/render';
import type { ManifestObject } from '../../constructs/platform/render';
import { platformPropsProblems } from '../../constructs/platform/validate-props';
import { KubeClusterApi } from '../../operator/controller/cluster-api-cluster';
import { reconcileKubevisorClusterKey } from '../../operator/controller/kubevisor-cluster-reconciler';
import { KUBEVISOR_MACHINE_FINALIZER } from '../../operator/controller/kubevisor-machine-lifecycle';
import { reconcileKubevisorMachineKey } from '../../operator/controller/kubevisor-machine-reconciler';
import { parseControllerArgs } from '../../operator/controller/main';
import type { KubeObject } from '../../operator/kube';
import { Informer, WorkQueue, runWorkers, splitObjectKey } from '../../operator/kube';
import {
  CLUSTER_API_CONTROLLER_RULES,
  CLUSTER_API_MANAGER_RULES,
  CONTROLLER_RULES,
  SIGNER_CLUSTER_RULES,
} from '../../operator/rbac';
import type { PolicyRule } from '../../operator/rbac';
import type { StoredObject } from './kube/kube-api-standin';
import { useKubeStandin, waitUntil } from './kube/standin-fixture';

const NS = 'tenant-a';
const CAPI = 'cluster.x-k8s.io/v1beta2';
const VM_API = 'kubevisor.io/v1alpha1';

describe('the provider on a stand-in API server', () => {
  const context = useKubeStandin();

  // The stand-in copies its kinds at start: these are this file's only.
  beforeEach(() => {
    const { standin } = context();
    standin.kinds.push(
      { apiVersion: 'v1', kind: 'Service', plural: 'services', namespaced: true },
      { apiVersion: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true },
      { apiVersion: CAPI, kind: 'Cluster', plural: 'clusters', namespaced: true },
      { apiVersion: CAPI, kind: 'Machine', plural: 'machines', namespaced: true },
      {
        apiVersion: INFRASTRUCTURE_API_VERSION,
        kind: 'KubevisorCluster',
        plural: 'kubevisorclusters',
        namespaced: true,
      },
      {
        apiVersion: INFRASTRUCTURE_API_VERSION,
        kind: 'KubevisorMachine',
        plural: 'kubevisormachines',
        namespaced: true,
      },
    );
  });

  /** Starts the store, its informers and a worker per queue, as main.ts does; stopped after the test. */
  async function startProvider() {
    const { client, cleanup } = context();
    const vms = new Informer<KubeObject>({
      client,
      path: `/apis/${VM_API}/virtualmachines`,
      apiVersion: VM_API,
      kind: 'VirtualMachine',
    });
    const store = new KubeClusterApi(client, vms);
    const kcQueue = new WorkQueue({ name: 'kubevisorcluster' });
    const kmQueue = new WorkQueue({ name: 'kubevisormachine' });
    store.route({ cluster: (k) => kcQueue.add(k), machine: (k) => kmQueue.add(k) });
    const informers = [vms, ...store.informers];
    for (const i of informers) i.start();
    await Promise.all(informers.map((i) => i.waitForSync(4000)));
    const run =
      (fn: typeof reconcileKubevisorClusterKey | typeof reconcileKubevisorMachineKey) => async (key: string) => {
        const { namespace, name } = splitObjectKey(key);
        await fn(store, namespace ?? '', name);
      };
    const workers = [
      runWorkers(kcQueue, 1, run(reconcileKubevisorClusterKey)),
      runWorkers(kmQueue, 1, run(reconcileKubevisorMachineKey)),
    ];
    cleanup(async () => {
      kcQueue.shutdown();
      kmQueue.shutdown();
      await Promise.all(workers.map((w) => w.stopped));
      await Promise.all(informers.map((i) => i.stop()));
    });
    return store;
  }

  const stored = <T>(apiVersion: string, kind: string, name: string) =>
    context().standin.stored(apiVersion, kind, name, NS) as unknown as T | undefined;
  const upsert = (o: object) => context().standin.upsert(o as StoredObject);

  test('cluster then machine: Service and endpoint, VM with bootstrap data, providerID, and deletion', async () => {
    const { standin, client } = context();
    await startProvider();
    const capiCluster = upsert({
      apiVersion: CAPI,
      kind: 'Cluster',
      metadata: { name: 'demo', namespace: NS },
      spec: {
        infrastructureRef: { apiGroup: 'infrastructure.cluster.x-k8s.io', kind: 'KubevisorCluster', name: 'demo' },
      },
      status: { initialization: { infrastructureProvisioned: false } },
    });
    const owner = (o: StoredObject) => ({
      apiVersion: CAPI,
      kind: o.kind,
      name: o.metadata.name,
      uid: o.metadata.uid!,
      controller: true,
    });
    upsert({
      apiVersion: INFRASTRUCTURE_API_VERSION,
      kind: 'KubevisorCluster',
      metadata: { name: 'demo', namespace: NS, generation: 1, ownerReferences: [owner(capiCluster)] },
      spec: {},
    });

    // The Service comes first; the stand-in allocates no cluster IP, so the endpoint waits for one.
    await waitUntil(() => standin.stored('v1', 'Service', 'demo', NS) !== undefined, 'the control-plane Service');
    const service = standin.stored('v1', 'Service', 'demo', NS)!;
    expect(service.spec).toEqual(
      expect.objectContaining({
        selector: { 'cluster.x-k8s.io/cluster-name': 'demo', 'cluster.x-k8s.io/control-plane': '' },
      }),
    );
    upsert({ ...service, spec: { ...(service.spec as object), clusterIP: '10.96.0.10' } });
    await waitUntil(
      () =>
        stored<KubevisorClusterObject>(INFRASTRUCTURE_API_VERSION, 'KubevisorCluster', 'demo')?.status?.initialization
          ?.provisioned === true,
      'the KubevisorCluster provisioned',
    );
    const kc = stored<KubevisorClusterObject>(INFRASTRUCTURE_API_VERSION, 'KubevisorCluster', 'demo')!;
    expect(kc.spec?.controlPlaneEndpoint).toEqual({ host: '10.96.0.10', port: 6443 });
    expect(kc.metadata.finalizers).toEqual(['kubevisorcluster.infrastructure.cluster.x-k8s.io']);

    // Someone edits the Service: the Service event brings it back. (The stand-in's apply merges maps, where the API
    // server replaces the atomic selector: an edited value, not an added key, is what both put back alike.)
    const edited = standin.stored('v1', 'Service', 'demo', NS)!;
    const selector = { 'cluster.x-k8s.io/cluster-name': 'demo', 'cluster.x-k8s.io/control-plane': 'edited' };
    upsert({ ...edited, spec: { ...(edited.spec as object), selector } });
    await waitUntil(
      () =>
        (standin.stored('v1', 'Service', 'demo', NS)?.spec as { selector: Record<string, string> }).selector[
          'cluster.x-k8s.io/control-plane'
        ] === '',
      'the Service put back',
    );

    // A machine: waits for the Cluster's infrastructure, then for bootstrap data (each woken by that object's event).
    const machine = upsert({
      apiVersion: CAPI,
      kind: 'Machine',
      metadata: {
        name: 'demo-cp-1',
        namespace: NS,
        labels: { 'cluster.x-k8s.io/cluster-name': 'demo', 'cluster.x-k8s.io/control-plane': '' },
      },
      spec: {
        clusterName: 'demo',
        bootstrap: {},
        infrastructureRef: { apiGroup: 'infrastructure.cluster.x-k8s.io', kind: 'KubevisorMachine', name: 'demo-cp-1' },
      },
    });
    upsert({
      apiVersion: INFRASTRUCTURE_API_VERSION,
      kind: 'KubevisorMachine',
      metadata: {
        name: 'demo-cp-1',
        namespace: NS,
        generation: 1,
        labels: { 'cluster.x-k8s.io/cluster-name': 'demo' },
        ownerReferences: [owner(machine)],
      },
      spec: {
        virtualMachine: {
          spec: {
            runPolicy: 'Once',
            instance: {
              kernel: { image: 'example.com/kernel', cmdline: 'console=ttyS0 root=/dev/vda rw' },
              disks: [{ name: 'root' }],
            },
            volumes: [{ name: 'root', containerRootfs: { image: 'example.com/rootfs', size: '4Gi' } }],
          },
        },
      },
    });
    const machineReason = () =>
      stored<KubevisorMachineObject>(
        INFRASTRUCTURE_API_VERSION,
        'KubevisorMachine',
        'demo-cp-1',
      )?.status?.conditions?.find((c) => c.type === 'Ready')?.reason;
    await waitUntil(() => machineReason() === 'WaitingForClusterInfrastructure', 'the machine waiting for the cluster');
    upsert({
      ...standin.stored(CAPI, 'Cluster', 'demo', NS)!,
      status: { initialization: { infrastructureProvisioned: true } },
    });
    await waitUntil(() => machineReason() === 'WaitingForBootstrapData', 'the machine waiting for bootstrap data');
    // The bootstrap data as Cluster API's kubeadm bootstrap writes it: its Secret type, the cluster's label.
    upsert({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'demo-cp-1-bootstrap', namespace: NS, labels: { 'cluster.x-k8s.io/cluster-name': 'demo' } },
      type: 'cluster.x-k8s.io/secret',
      data: { value: Buffer.from('#cloud-config\n').toString('base64') },
    });
    upsert({
      ...standin.stored(CAPI, 'Machine', 'demo-cp-1', NS)!,
      spec: {
        ...(standin.stored(CAPI, 'Machine', 'demo-cp-1', NS)!.spec as object),
        bootstrap: { dataSecretName: 'demo-cp-1-bootstrap' },
      },
    });
    await waitUntil(() => standin.stored(VM_API, 'VirtualMachine', 'demo-cp-1', NS) !== undefined, 'the VM');
    const vm = standin.stored(VM_API, 'VirtualMachine', 'demo-cp-1', NS)!;
    expect(vm.metadata.labels).toEqual({
      'cluster.x-k8s.io/cluster-name': 'demo',
      'cluster.x-k8s.io/control-plane': '',
    });
    expect((vm.spec as { volumes: object[] }).volumes).toContainEqual({
      name: 'cluster-api-bootstrap',
      cloudInit: { userDataSecretName: 'demo-cp-1-bootstrap' },
    });

    // The VM controller reports it running: the VM's event brings providerID, addresses and provisioned.
    upsert({
      ...vm,
      status: {
        phase: 'Running',
        nodeName: 'node-1',
        interfaces: [{ name: 'pod', ipAddresses: ['10.244.0.7'] }],
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'GuestReady',
            message: 'ok',
            lastTransitionTime: new Date().toISOString(),
          },
        ],
      },
    });
    await waitUntil(
      () =>
        stored<KubevisorMachineObject>(INFRASTRUCTURE_API_VERSION, 'KubevisorMachine', 'demo-cp-1')?.status
          ?.initialization?.provisioned === true,
      'the machine provisioned',
    );
    const km = stored<KubevisorMachineObject>(INFRASTRUCTURE_API_VERSION, 'KubevisorMachine', 'demo-cp-1')!;
    expect(km.spec.providerID).toBe(`kubevisor://${vm.metadata.uid}`);
    expect(km.status?.addresses).toEqual([
      { type: 'Hostname', address: 'demo-cp-1' },
      { type: 'InternalIP', address: '10.244.0.7' },
    ]);
    expect(km.status?.nodeName).toBe('node-1');

    // Deleting the machine deletes its VM, and its finalizer goes once the VM's delete event arrives.
    await client.delete(INFRASTRUCTURE_API_VERSION, 'KubevisorMachine', 'demo-cp-1', NS);
    await waitUntil(
      () =>
        stored<KubevisorMachineObject>(
          INFRASTRUCTURE_API_VERSION,
          'KubevisorMachine',
          'demo-cp-1',
        )?.metadata.finalizers?.includes(KUBEVISOR_MACHINE_FINALIZER) === false,
      'the machine finalizer removed',
    );
    expect(standin.stored(VM_API, 'VirtualMachine', 'demo-cp-1', NS)).toBeUndefined();

    // Deleting the cluster deletes its Service.
    await client.delete(INFRASTRUCTURE_API_VERSION, 'KubevisorCluster', 'demo', NS);
    await waitUntil(() => standin.stored('v1', 'Service', 'demo', NS) === undefined, 'the Service deleted');
  });

  test('the caches keep only what the reconcilers read, and only the provider’s labelled Services', async () => {
    const store = await startProvider();
    upsert({
      apiVersion: CAPI,
      kind: 'Cluster',
      metadata: {
        name: 'c',
        namespace: NS,
        labels: { 'cluster.x-k8s.io/cluster-name': 'c', 'team.example.com/secret-project': 'x' },
        annotations: { 'cluster.x-k8s.io/paused': '', 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
        finalizers: ['cluster.cluster.x-k8s.io'],
      },
      spec: { paused: false, clusterNetwork: { pods: { cidrBlocks: ['10.0.0.0/8'] } } },
    });
    const labelled = (name: string, labels: Record<string, string>) =>
      upsert({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS, labels }, spec: {} });
    labelled('someones', { 'cluster.x-k8s.io/cluster-name': 'c' });
    labelled('providers', {
      'cluster.x-k8s.io/cluster-name': 'c',
      'infrastructure.cluster.x-k8s.io/kubevisor-cluster': 'c',
    });
    await waitUntil(
      () => store.cluster(NS, 'c') !== undefined && store.service(NS, 'providers') !== undefined,
      'caches',
    );
    const c = store.cluster(NS, 'c')!;
    expect(c.metadata.labels).toEqual({ 'cluster.x-k8s.io/cluster-name': 'c' });
    expect(c.metadata.annotations).toEqual({ 'cluster.x-k8s.io/paused': '' });
    expect(c.metadata.finalizers).toBeUndefined();
    expect(c.spec).not.toHaveProperty('clusterNetwork');
    expect(store.service(NS, 'someones')).toBeUndefined();
  });

  test('a foreign VM holding the machine’s name is reported, and its deletion wakes the machine', async () => {
    const { standin } = context();
    await startProvider();
    upsert({
      apiVersion: CAPI,
      kind: 'Cluster',
      metadata: { name: 'demo', namespace: NS },
      status: { initialization: { infrastructureProvisioned: true } },
    });
    const machine = upsert({
      apiVersion: CAPI,
      kind: 'Machine',
      metadata: { name: 'm', namespace: NS, labels: { 'cluster.x-k8s.io/cluster-name': 'demo' } },
      spec: {
        clusterName: 'demo',
        bootstrap: { dataSecretName: 'm-bootstrap' },
        infrastructureRef: { apiGroup: 'infrastructure.cluster.x-k8s.io', kind: 'KubevisorMachine', name: 'w' },
      },
    });
    upsert({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'm-bootstrap', namespace: NS, labels: { 'cluster.x-k8s.io/cluster-name': 'demo' } },
      type: 'cluster.x-k8s.io/secret',
    });
    upsert({ apiVersion: VM_API, kind: 'VirtualMachine', metadata: { name: 'w', namespace: NS }, spec: {} });
    upsert({
      apiVersion: INFRASTRUCTURE_API_VERSION,
      kind: 'KubevisorMachine',
      metadata: {
        name: 'w',
        namespace: NS,
        labels: { 'cluster.x-k8s.io/cluster-name': 'demo' },
        ownerReferences: [{ apiVersion: CAPI, kind: 'Machine', name: 'm', uid: machine.metadata.uid! }],
      },
      spec: {
        virtualMachine: { spec: { instance: { kernel: { image: 'example.com/kernel', cmdline: 'console=ttyS0' } } } },
      },
    });
    const reason = () =>
      stored<KubevisorMachineObject>(INFRASTRUCTURE_API_VERSION, 'KubevisorMachine', 'w')?.status?.conditions?.find(
        (c) => c.type === 'Ready',
      )?.reason;
    await waitUntil(() => reason() === 'VirtualMachineConflict', 'the conflict reported');
    standin.remove(VM_API, 'VirtualMachine', 'w', NS);
    await waitUntil(
      () =>
        (
          standin.stored(VM_API, 'VirtualMachine', 'w', NS)?.metadata.ownerReferences as { kind: string }[] | undefined
        )?.[0]?.kind === 'KubevisorMachine',
      'the machine’s own VM',
    );
  });
});

describe('the install', () => {
  type Role = ManifestObject & { rules: PolicyRule[] };
  const find = (objects: ManifestObject[], kind: string, name: string) =>
    objects.find((o) => o.kind === kind && o.metadata.name === name) as Role | undefined;
  const args = (objects: ManifestObject[]) =>
    (
      find(objects, 'Deployment', 'kubevisor-controller') as unknown as {
        spec: { template: { spec: { containers: { args: string[] }[] } } };
      }
    ).spec.template.spec.containers[0].args;
  const grants = (rules: readonly PolicyRule[]) =>
    rules
      .flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`))))
      .sort();

  test('clusterApi: the flag, the provider’s rules bound to the controller, and the role Cluster API aggregates', () => {
    const objects = renderPlatform({ clusterApi: true });
    expect(args(objects)).toContain('--cluster-api');
    const role = find(objects, 'ClusterRole', 'kubevisor-controller-cluster-api')!;
    expect(grants(role.rules)).toEqual(grants(CLUSTER_API_CONTROLLER_RULES));
    const binding = find(objects, 'ClusterRoleBinding', 'kubevisor-controller-cluster-api') as unknown as {
      roleRef: object;
      subjects: object[];
    };
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'kubevisor-controller-cluster-api',
    });
    expect(binding.subjects).toEqual([
      { apiGroup: '', kind: 'ServiceAccount', name: 'kubevisor-controller', namespace: 'kubevisor-system' },
    ]);
    const manager = find(objects, 'ClusterRole', 'kubevisor-cluster-api-manager')!;
    expect(manager.metadata.labels).toEqual({ 'cluster.x-k8s.io/aggregate-to-manager': 'true' });
    expect(grants(manager.rules)).toEqual(grants(CLUSTER_API_MANAGER_RULES));
    expect(
      objects.some(
        (o) =>
          o.kind === 'ClusterRoleBinding' &&
          (o as unknown as { roleRef: { name: string } }).roleRef.name === 'kubevisor-cluster-api-manager',
      ),
    ).toBe(false);
    // The controller's own role is unchanged.
    expect(grants(find(objects, 'ClusterRole', 'kubevisor-controller')!.rules)).toEqual(
      grants([...CONTROLLER_RULES, ...SIGNER_CLUSTER_RULES]),
    );
  });

  test('by default: no flag, no Cluster API rules, and the controller cannot create or delete VMs', () => {
    const objects = renderPlatform();
    expect(args(objects)).not.toContain('--cluster-api');
    expect(find(objects, 'ClusterRole', 'kubevisor-controller-cluster-api')).toBeUndefined();
    expect(find(objects, 'ClusterRole', 'kubevisor-cluster-api-manager')).toBeUndefined();
    const controller = grants(find(objects, 'ClusterRole', 'kubevisor-controller')!.rules);
    expect(controller).not.toContain('kubevisor.io|virtualmachines|create');
    expect(controller.filter((g) => g.startsWith('|services|'))).toEqual([]);
  });

  test('the provider adds no Secret rule: it checks the bootstrap Secret with the controller’s own get', () => {
    expect(CONTROLLER_RULES.some((r) => r.resources.includes('secrets') && r.verbs.includes('get'))).toBe(true);
    expect(CLUSTER_API_CONTROLLER_RULES.some((r) => r.resources.includes('secrets'))).toBe(false);
  });

  test('clusterApi must be a boolean or the provider’s options', () => {
    expect(platformPropsProblems({ clusterApi: 'false' as unknown as boolean })).toEqual([
      'clusterApi: Invalid value: "false": must be true, false or { loadBalancers?: boolean }',
    ]);
    expect(platformPropsProblems({ clusterApi: { loadBalancers: 'yes' as unknown as boolean } })).toEqual([
      'clusterApi.loadBalancers: Invalid value: "yes": must be true or false',
    ]);
    expect(platformPropsProblems({ clusterApi: { loadbalancers: true } as never })).toEqual([
      'clusterApi.loadbalancers: Invalid value: true: is not an option (loadBalancers is)',
    ]);
    expect(platformPropsProblems({ clusterApi: true })).toEqual([]);
    expect(platformPropsProblems({ clusterApi: { loadBalancers: true } })).toEqual([]);
  });

  test('LoadBalancer Services only with clusterApi.loadBalancers: the flag', () => {
    for (const clusterApi of [true, {}, { loadBalancers: false }]) {
      const a = args(renderPlatform({ clusterApi }));
      expect(a).toContain('--cluster-api');
      expect(a).not.toContain('--cluster-api-load-balancers');
    }
    expect(args(renderPlatform({ clusterApi: { loadBalancers: true } }))).toEqual(
      expect.arrayContaining(['--cluster-api', '--cluster-api-load-balancers']),
    );
    expect(args(renderPlatform({ clusterApi: false }))).not.toContain('--cluster-api');
  });

  test('the controller flags', () => {
    expect(parseControllerArgs(['--image', 'x', '--cluster-api']).clusterApi).toBe(true);
    expect(parseControllerArgs(['--image', 'x']).clusterApi).toBeUndefined();
    expect(parseControllerArgs(['--image', 'x']).clusterApiLoadBalancers).toBeUndefined();
    expect(
      parseControllerArgs(['--image', 'x', '--cluster-api', '--cluster-api-load-balancers']).clusterApiLoadBalancers,
    ).toBe(true);
  });
});
