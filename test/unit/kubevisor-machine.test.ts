/**
 * The KubevisorMachine lifecycle (operator/controller/kubevisor-machine-lifecycle.ts) and its reconciler against an
 * in-memory store: it waits for the owner Machine, the Cluster's infrastructure and the bootstrap data (never on
 * deletion), makes the VM from the template plus a cloud-init disk naming the bootstrap Secret, with Cluster API's
 * labels and the machine as controller; sets the providerID once, the addresses and the node; reports the VM's progress
 * on Ready; treats a VM that ended for good, was deleted or replaced as terminal; deletes the VM and waits for it to go.
 */
import type { Condition, KubevisorMachineStatus, VirtualMachineStatus } from '../../api';
import {
  API_VERSION,
  BOOTSTRAP_VOLUME,
  INFRASTRUCTURE_API_VERSION,
  INFRASTRUCTURE_GROUP,
  validateObject,
} from '../../api';
import type {
  CapiClusterView,
  CapiMachineView,
  ClusterApiStore,
  InfrastructureObject,
  KubevisorMachineObject,
  MachineVmView,
  SecretView,
} from '../../operator/controller/kubevisor-cluster-api';
import { KubeApiError } from '../../operator/kube/errors';
import {
  KUBEVISOR_MACHINE_FINALIZER,
  clusterNameOf,
  decideKubevisorMachine,
  machineAddresses,
  machineVm,
  providerIdOf,
} from '../../operator/controller/kubevisor-machine-lifecycle';
import type { KubevisorMachineAction } from '../../operator/controller/kubevisor-machine-lifecycle';
import { reconcileKubevisorMachineKey } from '../../operator/controller/kubevisor-machine-reconciler';

const NOW = new Date('2026-11-22T12:00:00Z');
const NS = 'tenant-a';

function kubevisorMachine(over: { metadata?: object; spec?: object; status?: KubevisorMachineStatus } = {}) {
  return {
    apiVersion: INFRASTRUCTURE_API_VERSION,
    kind: 'KubevisorMachine',
    metadata: {
      name: 'demo-cp-abcde',
      namespace: NS,
      uid: 'km-uid',
      generation: 1,
      resourceVersion: '10',
      labels: { 'cluster.x-k8s.io/cluster-name': 'demo' },
      finalizers: [KUBEVISOR_MACHINE_FINALIZER],
      ownerReferences: [
        {
          apiVersion: 'cluster.x-k8s.io/v1beta2',
          kind: 'Machine',
          name: 'demo-cp-xyz',
          uid: 'm-uid',
          controller: true,
        },
      ],
      ...over.metadata,
    },
    spec: {
      virtualMachine: {
        metadata: {
          labels: { team: 'a', 'cluster.x-k8s.io/control-plane': '' },
          annotations: { note: 'from template' },
        },
        spec: {
          runPolicy: 'Once',
          instance: {
            memory: { size: '2Gi' },
            kernel: { image: 'example.com/kernel:6.1', cmdline: 'console=ttyS0 root=/dev/vda rw' },
            disks: [{ name: 'root' }],
            interfaces: [{ name: 'pod' }],
          },
          volumes: [{ name: 'root', containerRootfs: { image: 'example.com/rootfs:1.35', size: '4Gi' } }],
          networks: [{ name: 'pod', pod: {} }],
        },
      },
      ...over.spec,
    },
    ...(over.status ? { status: over.status } : {}),
  } as KubevisorMachineObject;
}

const machine = (over: { labels?: Record<string, string>; dataSecretName?: string } = {}): CapiMachineView => ({
  metadata: {
    name: 'demo-cp-xyz',
    namespace: NS,
    uid: 'm-uid',
    labels: over.labels ?? { 'cluster.x-k8s.io/cluster-name': 'demo', 'cluster.x-k8s.io/control-plane': '' },
  },
  spec: {
    clusterName: 'demo',
    bootstrap: 'dataSecretName' in over ? { dataSecretName: over.dataSecretName } : { dataSecretName: 'demo-cp-xyz' },
    infrastructureRef: { apiGroup: INFRASTRUCTURE_GROUP, kind: 'KubevisorMachine', name: 'demo-cp-abcde' },
  },
});

/** The bootstrap data Secret as Cluster API's kubeadm bootstrap writes it (type and cluster label). */
const bootstrapSecret = (over: { type?: string; cluster?: string } = {}): SecretView => ({
  metadata: {
    name: 'demo-cp-xyz',
    namespace: NS,
    uid: 's-uid',
    labels: { 'cluster.x-k8s.io/cluster-name': over.cluster ?? 'demo' },
  },
  type: over.type ?? 'cluster.x-k8s.io/secret',
});

const cluster = (over: { paused?: boolean; provisioned?: boolean } = {}): CapiClusterView => ({
  metadata: { name: 'demo', namespace: NS, uid: 'c-uid' },
  spec: { paused: over.paused ?? false },
  status: { initialization: { infrastructureProvisioned: over.provisioned ?? true } },
});

function vm(
  status: VirtualMachineStatus = {},
  over: { uid?: string; owner?: string; deletionTimestamp?: string; runPolicy?: 'Always' | 'Once' } = {},
): MachineVmView {
  return {
    metadata: {
      name: 'demo-cp-abcde',
      namespace: NS,
      uid: over.uid ?? 'vm-uid',
      ...(over.deletionTimestamp ? { deletionTimestamp: over.deletionTimestamp } : {}),
      ownerReferences: [
        {
          apiVersion: INFRASTRUCTURE_API_VERSION,
          kind: 'KubevisorMachine',
          name: 'demo-cp-abcde',
          uid: over.owner ?? 'km-uid',
          controller: true,
        },
      ],
    },
    spec: { runPolicy: over.runPolicy ?? 'Once' },
    status,
  };
}

const readyCondition = (status: 'True' | 'False', message: string): Condition => ({
  type: 'Ready',
  status,
  reason: status === 'True' ? 'GuestReady' : 'GuestNotReady',
  message,
  lastTransitionTime: NOW.toISOString(),
});

const ready = (s: KubevisorMachineStatus | undefined) => s?.conditions?.find((c) => c.type === 'Ready');
const types = (actions: KubevisorMachineAction[]) => actions.map((a) => a.type);
const decide = (input: Partial<Parameters<typeof decideKubevisorMachine>[0]>) =>
  decideKubevisorMachine({
    km: kubevisorMachine(),
    machine: machine(),
    cluster: cluster(),
    vm: undefined,
    bootstrapSecret: bootstrapSecret(),
    now: NOW,
    ...input,
  });

describe('the VM of a machine', () => {
  const made = machineVm(kubevisorMachine(), machine(), 'demo', 'demo-cp-xyz');

  test('is named after the machine, in its namespace, controlled by it (blockOwnerDeletion)', () => {
    expect(made.apiVersion).toBe(API_VERSION);
    expect(made.kind).toBe('VirtualMachine');
    expect(made.metadata.name).toBe('demo-cp-abcde');
    expect(made.metadata.namespace).toBe(NS);
    expect(made.metadata.ownerReferences).toEqual([
      {
        apiVersion: INFRASTRUCTURE_API_VERSION,
        kind: 'KubevisorMachine',
        name: 'demo-cp-abcde',
        uid: 'km-uid',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  test('adds a cloud-init disk and volume naming the bootstrap Secret (nothing inlined), after the root disk', () => {
    expect(made.spec.instance.disks).toEqual([{ name: 'root' }, { name: BOOTSTRAP_VOLUME }]);
    expect(made.spec.volumes).toEqual([
      { name: 'root', containerRootfs: { image: 'example.com/rootfs:1.35', size: '4Gi' } },
      { name: BOOTSTRAP_VOLUME, cloudInit: { userDataSecretName: 'demo-cp-xyz' } },
    ]);
    expect(JSON.stringify(made)).not.toMatch(/userData"|userDataBase64/);
    expect(made.spec.instance.memory).toEqual({ size: '2Gi' });
    expect(made.spec.runPolicy).toBe('Once');
  });

  test('is a valid VirtualMachine', () => {
    expect(validateObject(made)).toEqual([]);
  });

  test('carries the template’s labels and annotations, with Cluster API’s labels from the Machine', () => {
    expect(made.metadata.labels).toEqual({
      team: 'a',
      'cluster.x-k8s.io/cluster-name': 'demo',
      'cluster.x-k8s.io/control-plane': '',
    });
    expect(made.metadata.annotations).toEqual({ note: 'from template' });
    // A worker: the template's control-plane label does not reach its VM (the control-plane Service selects by it).
    const worker = machineVm(
      kubevisorMachine(),
      machine({ labels: { 'cluster.x-k8s.io/cluster-name': 'demo', 'cluster.x-k8s.io/deployment-name': 'demo-md-0' } }),
      'demo',
      'w',
    );
    expect(worker.metadata.labels).toEqual({
      team: 'a',
      'cluster.x-k8s.io/cluster-name': 'demo',
      'cluster.x-k8s.io/deployment-name': 'demo-md-0',
    });
  });
});

describe('addresses', () => {
  test('Hostname is the VM name; every distinct guest IP is an InternalIP', () => {
    const v = vm({
      interfaces: [
        { name: 'pod', ipAddresses: ['10.244.1.5', 'fd00::5'] },
        { name: 'b', ipAddresses: ['10.244.1.5'] },
      ],
    });
    expect(machineAddresses(v, undefined)).toEqual([
      { type: 'Hostname', address: 'demo-cp-abcde' },
      { type: 'InternalIP', address: '10.244.1.5' },
      { type: 'InternalIP', address: 'fd00::5' },
    ]);
  });
  test('while the guest reports none, the last known IPs stay', () => {
    const previous = [
      { type: 'Hostname' as const, address: 'demo-cp-abcde' },
      { type: 'InternalIP' as const, address: '10.244.1.5' },
    ];
    expect(machineAddresses(vm({ interfaces: [{ name: 'pod' }] }), previous)).toEqual(previous);
    expect(machineAddresses(vm({}), undefined)).toEqual([{ type: 'Hostname', address: 'demo-cp-abcde' }]);
  });
});

describe('the lifecycle', () => {
  test.each([
    ['the Cluster has spec.paused', kubevisorMachine(), cluster({ paused: true })],
    [
      'the object has the paused annotation',
      kubevisorMachine({ metadata: { annotations: { 'cluster.x-k8s.io/paused': 'true' } } }),
      cluster(),
    ],
  ])('paused when %s: only the Paused condition, deletion included', (_why, km, c) => {
    for (const obj of [km, { ...km, metadata: { ...km.metadata, deletionTimestamp: NOW.toISOString() } }]) {
      const d = decide({ km: obj, cluster: c, vm: vm({ phase: 'Running' }) });
      expect(d.actions).toEqual([]);
      expect(d.status?.conditions).toEqual([
        expect.objectContaining({ type: 'Paused', status: 'True', reason: 'Paused' }),
      ]);
    }
  });

  test('without an owner Machine: Ready False WaitingForMachine, no finalizer', () => {
    const d = decide({
      km: kubevisorMachine({ metadata: { ownerReferences: [], finalizers: [] } }),
      machine: undefined,
    });
    expect(d.actions).toEqual([]);
    expect(ready(d.status)).toEqual(expect.objectContaining({ status: 'False', reason: 'WaitingForMachine' }));
    expect(d.status?.conditions?.find((c) => c.type === 'Paused')?.status).toBe('False');
  });

  test('waits for the Cluster’s infrastructure, then for the bootstrap data; the finalizer comes first', () => {
    const fresh = kubevisorMachine({ metadata: { finalizers: [] } });
    const noInfra = decide({ km: fresh, cluster: cluster({ provisioned: false }) });
    expect(types(noInfra.actions)).toEqual(['addFinalizer']);
    expect(ready(noInfra.status)).toEqual(
      expect.objectContaining({
        reason: 'WaitingForClusterInfrastructure',
        message: expect.stringContaining('Cluster demo'),
      }),
    );
    expect(ready(decide({ cluster: undefined }).status)?.reason).toBe('WaitingForClusterInfrastructure');
    const noData = decide({ machine: machine({ dataSecretName: undefined }) });
    expect(noData.actions).toEqual([]);
    expect(ready(noData.status)).toEqual(
      expect.objectContaining({ status: 'False', reason: 'WaitingForBootstrapData' }),
    );
  });

  test('then creates the VM (validated) and waits for it', () => {
    const d = decide({});
    expect(types(d.actions)).toEqual(['createVm']);
    const created = d.actions[0] as Extract<KubevisorMachineAction, { type: 'createVm' }>;
    expect(created.vm).toEqual(machineVm(kubevisorMachine(), machine(), 'demo', 'demo-cp-xyz'));
    expect(ready(d.status)).toEqual(expect.objectContaining({ status: 'False', reason: 'WaitingForVirtualMachine' }));
  });

  test('a VM the API would refuse is not created: Ready False InvalidVirtualMachine, naming the field', () => {
    const km = kubevisorMachine();
    // Below the VM schema's minimum of one socket.
    (km.spec.virtualMachine.spec.instance as { cpu?: object }).cpu = { sockets: 0 };
    const d = decide({ km });
    expect(types(d.actions)).toEqual(['event']);
    expect(ready(d.status)).toEqual(
      expect.objectContaining({
        reason: 'InvalidVirtualMachine',
        message: expect.stringContaining('spec.instance.cpu.sockets'),
      }),
    );
  });

  test('a VM of that name the machine does not control: VirtualMachineConflict, once, never touched', () => {
    const foreign = vm({ phase: 'Running' }, { owner: 'someone-else' });
    const d = decide({ vm: foreign });
    expect(types(d.actions)).toEqual(['event']);
    expect(ready(d.status)).toEqual(
      expect.objectContaining({ reason: 'VirtualMachineConflict', message: expect.stringContaining('not adopted') }),
    );
    expect(d.status?.vmName).toBeUndefined();
    const again = decide({ km: kubevisorMachine({ status: d.status! }), vm: foreign });
    expect(again.actions).toEqual([]);
    // Deleting the machine leaves the foreign VM alone.
    const deleting = kubevisorMachine({ metadata: { deletionTimestamp: NOW.toISOString() } });
    expect(decide({ km: deleting, vm: foreign }).actions).toEqual([{ type: 'removeFinalizer' }]);
  });

  test('the VM exists: providerID kubevisor://<VM UID> once, VM name, node, addresses; the VM’s own words', () => {
    const scheduling = vm({
      phase: 'Scheduling',
      conditions: [readyCondition('False', 'waiting for a node with /dev/kvm')],
    });
    const d = decide({ vm: scheduling });
    expect(d.actions).toContainEqual({ type: 'setProviderID', providerID: 'kubevisor://vm-uid' });
    expect(providerIdOf('vm-uid')).toBe('kubevisor://vm-uid');
    expect(d.status?.vmName).toBe('demo-cp-abcde');
    expect(d.status?.initialization?.provisioned).toBeUndefined();
    expect(ready(d.status)).toEqual(
      expect.objectContaining({ reason: 'WaitingForVirtualMachine', message: 'waiting for a node with /dev/kvm' }),
    );
    const withId = kubevisorMachine({ spec: { providerID: 'kubevisor://vm-uid' } });
    expect(types(decide({ km: withId, vm: scheduling }).actions)).toEqual([]);
  });

  test('Running: provisioned; Ready follows the VM’s readiness; provisioned stays true afterwards', () => {
    const km = kubevisorMachine({ spec: { providerID: 'kubevisor://vm-uid' } });
    const running = vm({
      phase: 'Running',
      nodeName: 'node-1',
      interfaces: [{ name: 'pod', ipAddresses: ['10.244.1.5'] }],
      conditions: [readyCondition('False', 'the guest is running; its readiness probe does not pass yet')],
    });
    const notReady = decide({ km, vm: running });
    expect(notReady.status?.initialization).toEqual({ provisioned: true });
    expect(notReady.status?.nodeName).toBe('node-1');
    expect(notReady.status?.addresses).toContainEqual({ type: 'InternalIP', address: '10.244.1.5' });
    expect(ready(notReady.status)).toEqual(
      expect.objectContaining({
        status: 'False',
        reason: 'VirtualMachineNotReady',
        message: expect.stringContaining('readiness probe'),
      }),
    );
    const readyVm = { ...running, status: { ...running.status, conditions: [readyCondition('True', 'ok')] } };
    const d = decide({ km, vm: readyVm });
    expect(ready(d.status)).toEqual(expect.objectContaining({ status: 'True', reason: 'VirtualMachineReady' }));
    const paused = decide({ km: kubevisorMachine({ spec: km.spec, status: d.status! }), vm: vm({ phase: 'Paused' }) });
    expect(paused.status?.initialization?.provisioned).toBe(true);
    expect(ready(paused.status)?.reason).toBe('VirtualMachinePaused');
  });

  test.each(['Failed', 'Succeeded'] as const)(
    '%s with runPolicy Once is terminal (VirtualMachineTerminated, a Warning) and stays so',
    (phase) => {
      const km = kubevisorMachine({ spec: { providerID: 'kubevisor://vm-uid' } });
      const d = decide({ km, vm: vm({ phase }) });
      expect(types(d.actions)).toEqual(['event']);
      expect(ready(d.status)).toEqual(
        expect.objectContaining({
          status: 'False',
          reason: 'VirtualMachineTerminated',
          message: expect.stringContaining(phase),
        }),
      );
      // Whatever the VM does next, the machine stays terminal until Cluster API replaces it.
      const later = decide({
        km: kubevisorMachine({ spec: km.spec, status: d.status! }),
        vm: vm({ phase: 'Running' }),
      });
      expect(later.actions).toEqual([]);
      expect(ready(later.status)?.reason).toBe('VirtualMachineTerminated');
    },
  );

  test('Failed with runPolicy Always restarts in place: not terminal', () => {
    const km = kubevisorMachine({ spec: { providerID: 'kubevisor://vm-uid' } });
    const d = decide({ km, vm: vm({ phase: 'Failed' }, { runPolicy: 'Always' }) });
    expect(ready(d.status)?.reason).toBe('VirtualMachineRestarting');
  });

  test('a VM that was deleted, is being deleted or was replaced is terminal; it is never made again', () => {
    const km = kubevisorMachine({ spec: { providerID: 'kubevisor://vm-uid' } });
    const deleted = decide({ km, vm: undefined });
    expect(types(deleted.actions)).toEqual(['event']);
    expect(ready(deleted.status)).toEqual(
      expect.objectContaining({ reason: 'VirtualMachineTerminated', message: expect.stringContaining('deleted') }),
    );
    const deleting = decide({ km, vm: vm({ phase: 'Running' }, { deletionTimestamp: NOW.toISOString() }) });
    expect(ready(deleting.status)?.reason).toBe('VirtualMachineTerminated');
    const replaced = decide({ km, vm: vm({ phase: 'Running' }, { uid: 'another-uid' }) });
    expect(types(replaced.actions)).toEqual(['event']);
    expect(ready(replaced.status)).toEqual(
      expect.objectContaining({ reason: 'VirtualMachineTerminated', message: expect.stringContaining('replaced') }),
    );
  });

  test('deletion: the VM is deleted, the finalizer stays until it is gone (Deleting), without the Cluster or data', () => {
    const km = kubevisorMachine({ metadata: { deletionTimestamp: NOW.toISOString() } });
    const first = decide({ km, machine: undefined, cluster: undefined, vm: vm({ phase: 'Running' }) });
    expect(first.actions.filter((a) => a.type !== 'event')).toEqual([
      { type: 'deleteVm', name: 'demo-cp-abcde', uid: 'vm-uid' },
    ]);
    expect(ready(first.status)).toEqual(expect.objectContaining({ status: 'False', reason: 'Deleting' }));
    const going = decide({
      km,
      machine: undefined,
      cluster: undefined,
      vm: vm({ phase: 'Running' }, { deletionTimestamp: NOW.toISOString() }),
    });
    expect(going.actions).toEqual([]);
    expect(ready(going.status)?.reason).toBe('Deleting');
    const gone = decide({ km, machine: undefined, cluster: undefined, vm: undefined });
    expect(gone).toEqual({ actions: [{ type: 'removeFinalizer' }] });
  });
});

/** An in-memory store: the machine's writes land on it, so the next pass reads them. */
class FakeStore implements ClusterApiStore {
  calls: string[] = [];
  events: string[] = [];
  created: Record<string, unknown>[] = [];
  createError?: Error;
  secret: SecretView | undefined = bootstrapSecret();
  constructor(
    public km: KubevisorMachineObject,
    public machineView: CapiMachineView | undefined,
    public clusterView: CapiClusterView | undefined,
    public vmView?: MachineVmView,
  ) {}
  kubevisorCluster() {
    return undefined;
  }
  kubevisorMachine() {
    return this.km;
  }
  cluster(_ns: string, name: string) {
    return this.clusterView?.metadata.name === name ? this.clusterView : undefined;
  }
  machine(_ns: string, name: string) {
    return this.machineView?.metadata.name === name ? this.machineView : undefined;
  }
  service() {
    return undefined;
  }
  async readService() {
    return undefined;
  }
  vm() {
    return this.vmView;
  }
  async readSecret(_ns: string, name: string) {
    this.calls.push(`readSecret ${name}`);
    return this.secret;
  }
  async createService() {
    throw new Error('not a machine write');
  }
  async applyService() {
    throw new Error('not a machine write');
  }
  async deleteService() {
    throw new Error('not a machine write');
  }
  async createVm(v: Record<string, unknown>) {
    this.calls.push('createVm');
    if (this.createError) throw this.createError;
    this.created.push(v);
  }
  async deleteVm(_ns: string, name: string, uid: string) {
    this.calls.push(`deleteVm ${name} ${uid}`);
  }
  async patchSpec(_obj: InfrastructureObject, spec: Record<string, unknown>) {
    this.calls.push(`patchSpec ${JSON.stringify(spec)}`);
    this.km = { ...this.km, spec: { ...this.km.spec, ...spec } };
    return '11';
  }
  async updateStatus(_obj: InfrastructureObject, status: object) {
    this.calls.push('updateStatus');
    this.km = { ...this.km, status: status as KubevisorMachineStatus };
  }
  async addFinalizer(_obj: InfrastructureObject, f: string) {
    this.calls.push(`addFinalizer`);
    this.km = { ...this.km, metadata: { ...this.km.metadata, finalizers: [f] } };
    return '11';
  }
  async removeFinalizer() {
    this.calls.push('removeFinalizer');
  }
  async event(_obj: InfrastructureObject, type: string, reason: string) {
    this.events.push(`${type} ${reason}`);
  }
}

describe('the reconciler', () => {
  test('finds Machine and Cluster, creates the VM, then records what it observes of it', async () => {
    const store = new FakeStore(kubevisorMachine({ metadata: { finalizers: [] } }), machine(), cluster());
    await reconcileKubevisorMachineKey(store, NS, 'demo-cp-abcde', { now: () => NOW });
    expect(store.calls).toEqual(['readSecret demo-cp-xyz', 'addFinalizer', 'createVm', 'updateStatus']);
    expect(store.events).toEqual(['Normal VirtualMachineCreated']);
    expect((store.created[0] as { metadata: { name: string } }).metadata.name).toBe('demo-cp-abcde');

    store.calls = [];
    store.vmView = vm({ phase: 'Running', nodeName: 'node-1', conditions: [readyCondition('True', 'ok')] });
    await reconcileKubevisorMachineKey(store, NS, 'demo-cp-abcde', { now: () => NOW });
    expect(store.calls).toEqual(['patchSpec {"providerID":"kubevisor://vm-uid"}', 'updateStatus']);
    expect(store.km.status?.initialization).toEqual({ provisioned: true });
    expect(ready(store.km.status)?.status).toBe('True');

    store.calls = [];
    await reconcileKubevisorMachineKey(store, NS, 'demo-cp-abcde', { now: () => NOW });
    expect(store.calls).toEqual([]);
  });

  test('a create that finds the VM already there (the cache behind) waits for the VM’s event instead of failing', async () => {
    const store = new FakeStore(kubevisorMachine(), machine(), cluster());
    store.createError = new KubeApiError(409, 'AlreadyExists', 'exists', [], 'POST', '/x', {});
    await expect(reconcileKubevisorMachineKey(store, NS, 'demo-cp-abcde', { now: () => NOW })).resolves.toEqual({});
    expect(store.events).toEqual([]);
    store.createError = new KubeApiError(403, 'Forbidden', 'no', [], 'POST', '/x', {});
    await expect(reconcileKubevisorMachineKey(store, NS, 'demo-cp-abcde', { now: () => NOW })).rejects.toThrow(
      'Forbidden',
    );
  });

  test('deletion deletes the VM by UID, and removes the finalizer only once the VM is gone', async () => {
    const km = kubevisorMachine({ metadata: { deletionTimestamp: NOW.toISOString() } });
    const store = new FakeStore(km, undefined, undefined, vm({ phase: 'Running' }));
    await reconcileKubevisorMachineKey(store, NS, 'demo-cp-abcde', { now: () => NOW });
    expect(store.calls).toEqual(['deleteVm demo-cp-abcde vm-uid', 'updateStatus']);
    store.calls = [];
    store.vmView = undefined;
    await reconcileKubevisorMachineKey(store, NS, 'demo-cp-abcde', { now: () => NOW });
    expect(store.calls).toEqual(['removeFinalizer']);
  });

  test('a VM the API server refuses (422) is reported on Ready (InvalidVirtualMachine), once, not rethrown', async () => {
    const store = new FakeStore(kubevisorMachine(), machine(), cluster());
    store.createError = new KubeApiError(
      422,
      'Invalid',
      'spec.instance.memory.size: exceeds the namespace quota',
      [],
      'POST',
      '/x',
      {},
    );
    await expect(reconcileKubevisorMachineKey(store, NS, 'demo-cp-abcde', { now: () => NOW })).resolves.toEqual({});
    expect(ready(store.km.status)).toEqual(
      expect.objectContaining({
        status: 'False',
        reason: 'InvalidVirtualMachine',
        message: expect.stringContaining('exceeds the namespace quota'),
      }),
    );
    expect(store.events).toEqual(['Warning InvalidVirtualMachine']);
    await reconcileKubevisorMachineKey(store, NS, 'demo-cp-abcde', { now: () => NOW });
    expect(store.events).toEqual(['Warning InvalidVirtualMachine']);
  });

  test('a bootstrap Secret that is missing, of another type or of another cluster: no VM, BootstrapDataInvalid', async () => {
    for (const secret of [
      undefined,
      bootstrapSecret({ type: 'Opaque' }),
      bootstrapSecret({ cluster: 'someone-else' }),
    ]) {
      const store = new FakeStore(kubevisorMachine(), machine(), cluster());
      store.secret = secret;
      const r = await reconcileKubevisorMachineKey(store, NS, 'demo-cp-abcde', { now: () => NOW });
      expect(store.calls).toEqual(['readSecret demo-cp-xyz', 'updateStatus']);
      expect(store.created).toEqual([]);
      expect(ready(store.km.status)).toEqual(
        expect.objectContaining({ status: 'False', reason: 'BootstrapDataInvalid' }),
      );
      expect(store.events).toEqual(['Warning BootstrapDataInvalid']);
      // Nothing watches Secrets: the machine looks again.
      expect(r.requeueAfterMs).toBeGreaterThan(0);
    }
  });
});

describe('who owns the machine', () => {
  test('the lifecycle asks for the bootstrap Secret before it makes a VM, and makes none without it', () => {
    const d = decide({ bootstrapSecret: undefined });
    expect(d.needsBootstrapSecret).toBe(true);
    expect(types(d.actions)).not.toContain('createVm');
  });

  test.each([
    ['another Machine of the same name (UID)', { metadata: { ...machine().metadata, uid: 'someone-else' } }],
    [
      'a Machine naming another KubevisorMachine',
      {
        spec: {
          ...machine().spec,
          infrastructureRef: { apiGroup: INFRASTRUCTURE_GROUP, kind: 'KubevisorMachine', name: 'other' },
        },
      },
    ],
    [
      'a Machine naming another kind',
      {
        spec: {
          ...machine().spec,
          infrastructureRef: { apiGroup: 'example.com', kind: 'KubevisorMachine', name: 'demo-cp-abcde' },
        },
      },
    ],
  ])('an owner reference to %s is not trusted: Ready False OwnerMismatch, no VM', (_why, over) => {
    const d = decide({ km: kubevisorMachine({ metadata: { finalizers: [] } }), machine: { ...machine(), ...over } });
    expect(d.actions).toEqual([]);
    expect(ready(d.status)).toEqual(expect.objectContaining({ status: 'False', reason: 'OwnerMismatch' }));
  });

  test('the cluster is the Machine’s spec.clusterName; a cluster-name label naming another is refused', () => {
    const lying = kubevisorMachine({ metadata: { labels: { 'cluster.x-k8s.io/cluster-name': 'victim' } } });
    expect(clusterNameOf(lying, machine())).toBe('demo');
    const d = decide({ km: lying });
    expect(types(d.actions)).toEqual([]);
    expect(ready(d.status)).toEqual(
      expect.objectContaining({
        status: 'False',
        reason: 'ClusterNameMismatch',
        message: expect.stringContaining('victim'),
      }),
    );
  });
});
