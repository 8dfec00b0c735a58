/**
 * The VM reconciler against an in-memory cluster: a pod that carries the VM's label but another controller is
 * neither adopted nor deleted; a pod that names the VM as controller counts only once the controller recorded its UID
 * (created or checked by createPod); a pod name someone else took is reported on the VM (PodNameTaken), once, while
 * the reconciler keeps looking; Secrets left by a create that stopped half-way are settled; what of a VM stored before
 * the current rules the pod leaves out is reported (SpecNotApplied).
 */
import type { Cluster, MigrationObject, VmObject, VmPodSecret } from '../../../operator/controller/cluster';
import { NameTakenError, controllerOf } from '../../../operator/controller/cluster';
import type { PodView } from '../../../operator/controller/vm-lifecycle';
import { VM_FINALIZER } from '../../../operator/controller/vm-lifecycle';
import {
  HeldStartStatus,
  NAME_TAKEN_RETRY_MS,
  START_STATUS_HOLD_MS,
  reconcileVmKey,
} from '../../../operator/controller/vm-reconciler';
import type { VirtualMachineStatus } from '../../../api';
import { vmPodName } from '../../../constructs/vm-pod';

const NOW = new Date('2026-11-22T12:00:00Z');

class FakeCluster implements Cluster {
  events: { type: string; reason: string; message: string }[] = [];
  created: { pod: Record<string, unknown>; secret?: VmPodSecret }[] = [];
  settled: { name: string; podUid?: string }[] = [];
  deleted: string[] = [];
  statuses: VirtualMachineStatus[] = [];
  taken = new Set<string>();
  vmCacheBehind?: () => boolean;
  podCreatedNotSeen?: (namespace: string, name: string, uid: string) => boolean;
  constructor(
    public vmObject: VmObject,
    public pods: PodView[] = [],
  ) {}
  vm(): VmObject | undefined {
    return this.vmObject;
  }
  migration(): MigrationObject | undefined {
    return undefined;
  }
  podsOfVm(): PodView[] {
    return this.pods;
  }
  node(name: string) {
    // Every node the tests bind pods to is Ready.
    return { metadata: { name }, status: { conditions: [{ type: 'Ready', status: 'True' }] } };
  }
  attachmentPodsOfVm(): PodView[] {
    return [];
  }
  async createPod(pod: Record<string, unknown>, secret?: VmPodSecret): Promise<string> {
    const name = (pod.metadata as { name: string }).name;
    if (this.taken.has(name)) throw new NameTakenError('Pod', 'default', name);
    this.created.push({ pod, ...(secret ? { secret } : {}) });
    return `uid-${name}`;
  }
  async settleVmSecret(_ns: string, name: string, _vmUid: string, podUid?: string): Promise<void> {
    this.settled.push({ name, ...(podUid ? { podUid } : {}) });
  }
  async deletePod(_ns: string, name: string): Promise<void> {
    this.deleted.push(name);
  }
  async updateVmStatus(_vm: VmObject, status: VirtualMachineStatus): Promise<void> {
    this.statuses.push(status);
    this.vmObject = { ...this.vmObject, status };
  }
  async updateMigrationStatus(): Promise<void> {}
  async setVmMigration(): Promise<void> {}
  async addFinalizer(): Promise<string | undefined> {
    return '2';
  }
  async removeFinalizer(): Promise<void> {}
  async event(_o: unknown, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    this.events.push({ type, reason, message });
  }
}

const vmObject = (status?: VirtualMachineStatus): VmObject => ({
  apiVersion: 'kubevisor.io/v1alpha1',
  kind: 'VirtualMachine',
  metadata: { name: 'web', namespace: 'default', uid: 'vm-uid', generation: 1, finalizers: [VM_FINALIZER] },
  spec: {
    runPolicy: 'Always',
    instance: { disks: [{ name: 'root' }] },
    volumes: [{ name: 'root', containerDisk: { image: 'd:1' } }],
  },
  ...(status ? { status } : {}),
});
const options = { pod: { image: 'kubevisor:test' }, now: () => NOW };

test('the controller of an object is its one owner reference with controller: true', () => {
  const own: PodView = {
    metadata: { name: 'a', ownerReferences: [{ uid: 'other' }, { uid: 'vm-uid', controller: true }] },
  };
  const labelled: PodView = { metadata: { name: 'b', labels: { 'kubevisor.io/vm': 'web' } } };
  const referenced: PodView = { metadata: { name: 'c', ownerReferences: [{ uid: 'vm-uid' }] } };
  expect([own, labelled, referenced].map((p) => controllerOf(p)?.uid)).toEqual(['vm-uid', undefined, undefined]);
});

test('a labelled pod of another owner is not deleted as a leftover, and the VM creates its pod with its Secret', async () => {
  const squatter: PodView = {
    metadata: { name: 'vm-web-old', labels: { 'kubevisor.io/vm': 'web', 'kubevisor.io/run': '0' } },
    status: { phase: 'Running' },
  };
  const cluster = new FakeCluster(vmObject(), [squatter]);
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.deleted).toEqual([]);
  expect(cluster.created).toHaveLength(1);
  const { pod, secret } = cluster.created[0];
  expect((secret!.secret.metadata as { name: string }).name).toBe((pod.metadata as { name: string }).name);
});

test('a taken pod name is reported on the VM once, and looked at again', async () => {
  const cluster = new FakeCluster(vmObject());
  cluster.taken.add(vmPodName('web', 'vm-uid', { run: 0 }));
  const first = await reconcileVmKey(cluster, 'default', 'web', options);
  expect(first.requeueAfterMs).toBeLessThanOrEqual(NAME_TAKEN_RETRY_MS);
  const ready = cluster.vmObject.status?.conditions?.find((c) => c.type === 'Ready');
  expect(ready).toEqual(expect.objectContaining({ status: 'False', reason: 'PodNameTaken' }));
  expect(ready?.message).toContain('is not controlled by this VM (another controller); it is not adopted');
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.events.filter((e) => e.reason === 'PodNameTaken')).toHaveLength(1);
  expect(cluster.events.find((e) => e.reason === 'PodNameTaken')?.type).toBe('Warning');
  // The name is free again: the VM's own pod is created.
  cluster.taken.clear();
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.created).toHaveLength(1);
});

const podName0 = vmPodName('web', 'vm-uid', { run: 0 });
const ownedBy = (uid: string) => [{ uid, controller: true }];

test("the pod the VM created is recorded by UID, and only a pod of that UID is the VM's current pod", async () => {
  const cluster = new FakeCluster(vmObject());
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.vmObject.status).toEqual(
    expect.objectContaining({ phase: 'Scheduling', vmPodName: podName0, vmPodUID: `uid-${podName0}` }),
  );
  // The scheduler binds it: the VM follows its own pod.
  cluster.pods = [
    {
      metadata: { name: podName0, uid: `uid-${podName0}`, ownerReferences: ownedBy('vm-uid') },
      spec: { nodeName: 'n1' },
    },
  ];
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.vmObject.status).toEqual(expect.objectContaining({ phase: 'Scheduled', nodeName: 'n1' }));
  expect(cluster.settled).toContainEqual({ name: podName0, podUid: `uid-${podName0}` });
});

test('a pod that names the VM as controller is not its pod until createPod has checked it', async () => {
  // A tenant created the pod of the VM's next name first, naming the VM as its controller, and bound it to a node.
  const cluster = new FakeCluster(
    vmObject({ phase: 'Scheduling', vmPodName: podName0, restarts: 0, observedGeneration: 1 }),
    [{ metadata: { name: podName0, uid: 'forged', ownerReferences: ownedBy('vm-uid') }, spec: { nodeName: 'n1' } }],
  );
  cluster.taken.add(podName0);
  await reconcileVmKey(cluster, 'default', 'web', options);
  const status = cluster.vmObject.status!;
  // Not Scheduled on the forged pod's word, no UID recorded: the node daemon never takes it for the VM's pod.
  expect(status.phase).toBe('Scheduling');
  expect(status.vmPodUID).toBeUndefined();
  expect(status.nodeName).toBeUndefined();
  expect(status.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('PodNameTaken');
  expect(cluster.deleted).toEqual([]);
  expect(cluster.settled.map((x) => x.name)).not.toContain(podName0);
  // createPod accepts it (it is exactly the pod the VM renders, e.g. the VM's own after a crash): now it is the VM's.
  cluster.taken.clear();
  cluster.pods = [{ ...cluster.pods[0], metadata: { ...cluster.pods[0].metadata, uid: `uid-${podName0}` } }];
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.vmObject.status?.vmPodUID).toBe(`uid-${podName0}`);
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.vmObject.status).toEqual(expect.objectContaining({ phase: 'Scheduled', nodeName: 'n1' }));
});

test('a restart settles the Secret of the run before, whose pod may be gone before it got it', async () => {
  const before = vmObject({
    phase: 'Failed',
    vmPodName: podName0,
    vmPodUID: `uid-${podName0}`,
    restarts: 0,
    observedGeneration: 1,
  });
  const cluster = new FakeCluster(before);
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.created).toHaveLength(1);
  expect(cluster.settled).toContainEqual({ name: podName0 });
});

test('a VM stored before the probe and toleration rules gets a pod without them, and an Event says so', async () => {
  const stored = vmObject();
  stored.spec = {
    ...stored.spec,
    livenessProbe: { exec: { command: ['cat', '/etc/shadow'] } } as unknown as VmObject['spec']['livenessProbe'],
    readinessProbe: { tcpSocket: { port: 'ssh' } },
    tolerations: [{ operator: 'Exists' }, { key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }],
  };
  const cluster = new FakeCluster(stored);
  await reconcileVmKey(cluster, 'default', 'web', options);
  const spec = (cluster.created[0].pod as { spec: Record<string, unknown> }).spec;
  const launcher = (spec.containers as Record<string, unknown>[])[0];
  expect(launcher.livenessProbe).toBeUndefined();
  expect(launcher.readinessProbe).toBeUndefined();
  expect(spec.tolerations).toEqual([{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }]);
  const event = cluster.events.find((e) => e.reason === 'SpecNotApplied');
  expect(event?.type).toBe('Warning');
  expect(event?.message).toContain('spec.livenessProbe (only httpGet and tcpSocket probes are run)');
  expect(event?.message).toContain('spec.readinessProbe (port "ssh" is a name; the VM pod declares no named ports)');
  expect(event?.message).toContain('spec.tolerations[0] (no taint key: it would tolerate every taint)');
});

/** A JSON document with its object keys in reverse order (as the API server's sorted keys differ from ours). */
const reversedKeys = <T>(v: T): T =>
  Array.isArray(v)
    ? (v.map(reversedKeys) as T)
    : v && typeof v === 'object'
      ? (Object.fromEntries(
          Object.entries(v)
            .reverse()
            .map(([k, x]) => [k, reversedKeys(x)]),
        ) as T)
      : v;

test('one status write per transition: none while the pod is unbound, none for a status that differs only in key order', async () => {
  const cluster = new FakeCluster(vmObject());
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.statuses).toHaveLength(1);
  // The status as the API server returns it: the same document, keys sorted differently.
  cluster.vmObject = { ...cluster.vmObject, status: reversedKeys(cluster.vmObject.status) };
  const pod: PodView = { metadata: { name: podName0, uid: `uid-${podName0}`, ownerReferences: ownedBy('vm-uid') } };
  cluster.pods = [pod];
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.statuses).toHaveLength(1);
  cluster.pods = [{ ...pod, spec: { nodeName: 'n1' } }];
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.statuses).toHaveLength(2);
  cluster.vmObject = { ...cluster.vmObject, status: reversedKeys(cluster.vmObject.status) };
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.statuses).toHaveLength(2);
});

test('a VM whose cache is behind its own last write is left alone until the watch brings that write', async () => {
  const cluster = new FakeCluster(vmObject());
  let behind = true;
  cluster.vmCacheBehind = () => behind;
  const r = await reconcileVmKey(cluster, 'default', 'web', options);
  expect(r.requeueAfterMs).toBeGreaterThan(0);
  expect(cluster.created).toHaveLength(0);
  expect(cluster.statuses).toHaveLength(0);
  behind = false;
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.created).toHaveLength(1);
});

test('a pod the controller created and the pod cache does not show yet is not created again', async () => {
  const cluster = new FakeCluster(vmObject());
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.created).toHaveLength(1);
  let seen = false;
  cluster.podCreatedNotSeen = (_ns: string, name: string, uid: string) =>
    !seen && name === podName0 && uid === `uid-${podName0}`;
  const r = await reconcileVmKey(cluster, 'default', 'web', options);
  expect(r.requeueAfterMs).toBeGreaterThan(0);
  expect(cluster.created).toHaveLength(1);
  expect(cluster.statuses).toHaveLength(1);
  // Past the expectation (or after the cache showed it and it went): created again, as after a crash.
  seen = true;
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.created).toHaveLength(2);
});

describe('the first start writes its status once, when the pod is bound (held back at most START_STATUS_HOLD_MS)', () => {
  const at = (ms: number) => () => new Date(NOW.getTime() + ms);
  const unbound: PodView = {
    metadata: { name: podName0, uid: `uid-${podName0}`, ownerReferences: ownedBy('vm-uid') },
  };
  const bound: PodView = { ...unbound, spec: { nodeName: 'n1' } };

  test('created, seen unbound, bound: one write, Scheduled with the pod UID and node, and no Events', async () => {
    const heldStarts = new HeldStartStatus();
    const cluster = new FakeCluster(vmObject());
    const first = await reconcileVmKey(cluster, 'default', 'web', { ...options, heldStarts });
    expect(cluster.created).toHaveLength(1);
    expect(cluster.statuses).toHaveLength(0);
    expect(first.requeueAfterMs).toBe(START_STATUS_HOLD_MS);
    // The pod reaches the cache unbound: still nothing to write, and it is not created again.
    cluster.pods = [unbound];
    const second = await reconcileVmKey(cluster, 'default', 'web', { ...options, now: at(1_000), heldStarts });
    expect(cluster.statuses).toHaveLength(0);
    expect(cluster.created).toHaveLength(1);
    expect(second.requeueAfterMs).toBe(START_STATUS_HOLD_MS - 1_000);
    cluster.pods = [bound];
    await reconcileVmKey(cluster, 'default', 'web', { ...options, now: at(2_000), heldStarts });
    expect(cluster.statuses).toHaveLength(1);
    expect(cluster.statuses[0]).toEqual(
      expect.objectContaining({ phase: 'Scheduled', vmPodName: podName0, vmPodUID: `uid-${podName0}`, nodeName: 'n1' }),
    );
    expect(heldStarts.size).toBe(0);
    // The start and the binding are in the status (and the pod's own Events): no Event repeats them.
    expect(cluster.events).toEqual([]);
    await reconcileVmKey(cluster, 'default', 'web', { ...options, now: at(3_000), heldStarts });
    expect(cluster.statuses).toHaveLength(1);
  });

  test('a pod still unbound when the hold ends: Scheduling is written, then Scheduled', async () => {
    const heldStarts = new HeldStartStatus();
    const cluster = new FakeCluster(vmObject());
    await reconcileVmKey(cluster, 'default', 'web', { ...options, heldStarts });
    cluster.pods = [unbound];
    await reconcileVmKey(cluster, 'default', 'web', { ...options, now: at(START_STATUS_HOLD_MS), heldStarts });
    expect(cluster.statuses).toEqual([
      expect.objectContaining({ phase: 'Scheduling', vmPodName: podName0, vmPodUID: `uid-${podName0}` }),
    ]);
    cluster.pods = [bound];
    await reconcileVmKey(cluster, 'default', 'web', { ...options, now: at(START_STATUS_HOLD_MS + 1), heldStarts });
    expect(cluster.statuses).toHaveLength(2);
    expect(cluster.statuses[1].phase).toBe('Scheduled');
  });

  test('a controller that stopped while holding: the next one adopts the pod through createPod, then records it', async () => {
    const cluster = new FakeCluster(vmObject());
    await reconcileVmKey(cluster, 'default', 'web', { ...options, heldStarts: new HeldStartStatus() });
    expect(cluster.statuses).toHaveLength(0);
    // A new controller: nothing held, nothing stored; the pod is there (bound) but its UID is recorded nowhere.
    const next = new HeldStartStatus();
    cluster.pods = [bound];
    await reconcileVmKey(cluster, 'default', 'web', { ...options, now: at(1_000), heldStarts: next });
    // The stable name leads createPod to the same pod (the fake accepts it, as createPod does the pod it renders).
    expect(cluster.created.map((c) => (c.pod.metadata as { name: string }).name)).toEqual([podName0, podName0]);
    await reconcileVmKey(cluster, 'default', 'web', { ...options, now: at(1_500), heldStarts: next });
    expect(cluster.statuses).toEqual([
      expect.objectContaining({ phase: 'Scheduled', vmPodUID: `uid-${podName0}`, nodeName: 'n1' }),
    ]);
  });

  test('a restart is not held: its status names the new run at once', async () => {
    const heldStarts = new HeldStartStatus();
    const cluster = new FakeCluster(
      vmObject({
        phase: 'Succeeded',
        vmPodName: podName0,
        vmPodUID: `uid-${podName0}`,
        restarts: 0,
        observedGeneration: 1,
        phaseTransitionTime: new Date(NOW.getTime() - 3_600_000).toISOString(),
      }),
    );
    await reconcileVmKey(cluster, 'default', 'web', { ...options, heldStarts });
    expect(cluster.statuses).toEqual([expect.objectContaining({ phase: 'Scheduling', restarts: 1 })]);
    expect(cluster.events.map((e) => e.reason)).toEqual(['Restarting']);
  });

  test('a VM deleted while its start is held: its pod is deleted, nothing held stays', async () => {
    const heldStarts = new HeldStartStatus();
    const cluster = new FakeCluster(vmObject());
    await reconcileVmKey(cluster, 'default', 'web', { ...options, heldStarts });
    cluster.pods = [unbound];
    cluster.vmObject = {
      ...cluster.vmObject,
      metadata: { ...cluster.vmObject.metadata, deletionTimestamp: NOW.toISOString() },
    };
    await reconcileVmKey(cluster, 'default', 'web', { ...options, now: at(500), heldStarts });
    expect(cluster.deleted).toEqual([podName0]);
    expect(cluster.statuses).toHaveLength(0);
    expect(heldStarts.size).toBe(0);
  });
});
