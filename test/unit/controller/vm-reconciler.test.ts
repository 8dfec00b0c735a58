/**
 * The VM reconciler against an in-memory cluster: a pod that carries the VM's label but another controller is
 * neither adopted nor deleted, and a pod name someone else took is reported on the VM (PodNameTaken), once, while the
 * reconciler keeps looking.
 */
import type { Cluster, MigrationObject, VmObject } from '../../../operator/controller/cluster';
import { NameTakenError, controlledBy } from '../../../operator/controller/cluster';
import type { PodView } from '../../../operator/controller/vm-lifecycle';
import { VM_FINALIZER } from '../../../operator/controller/vm-lifecycle';
import { NAME_TAKEN_RETRY_MS, reconcileVmKey } from '../../../operator/controller/vm-reconciler';
import type { VirtualMachineStatus } from '../../../api';
import { vmPodName } from '../../../constructs/vm-pod';

const NOW = new Date('2026-11-22T12:00:00Z');

class FakeCluster implements Cluster {
  events: { type: string; reason: string; message: string }[] = [];
  created: { pod: Record<string, unknown>; secret?: Record<string, unknown> }[] = [];
  deleted: string[] = [];
  statuses: VirtualMachineStatus[] = [];
  taken = new Set<string>();
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
  node() {
    return undefined;
  }
  attachmentPodsOfVm(): PodView[] {
    return [];
  }
  async createPod(pod: Record<string, unknown>, secret?: Record<string, unknown>): Promise<void> {
    const name = (pod.metadata as { name: string }).name;
    if (this.taken.has(name)) throw new NameTakenError('Pod', 'default', name);
    this.created.push({ pod, ...(secret ? { secret } : {}) });
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

test('only pods the VM controls are its pods', () => {
  const own: PodView = { metadata: { name: 'a', ownerReferences: [{ uid: 'vm-uid', controller: true }] } };
  const labelled: PodView = { metadata: { name: 'b', labels: { 'kubevisor.io/vm': 'web' } } };
  const referenced: PodView = { metadata: { name: 'c', ownerReferences: [{ uid: 'vm-uid' }] } };
  expect(controlledBy([own, labelled, referenced], 'vm-uid')).toEqual([own]);
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
  expect((secret!.metadata as { name: string }).name).toBe((pod.metadata as { name: string }).name);
});

test('a taken pod name is reported on the VM once, and looked at again', async () => {
  const cluster = new FakeCluster(vmObject());
  cluster.taken.add(vmPodName('web', 'vm-uid', { run: 0 }));
  const first = await reconcileVmKey(cluster, 'default', 'web', options);
  expect(first.requeueAfterMs).toBeLessThanOrEqual(NAME_TAKEN_RETRY_MS);
  const ready = cluster.vmObject.status?.conditions?.find((c) => c.type === 'Ready');
  expect(ready).toEqual(expect.objectContaining({ status: 'False', reason: 'PodNameTaken' }));
  expect(ready?.message).toContain('is not controlled by this VM; it is not adopted');
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.events.filter((e) => e.reason === 'PodNameTaken')).toHaveLength(1);
  expect(cluster.events.find((e) => e.reason === 'PodNameTaken')?.type).toBe('Warning');
  // The name is free again: the VM's own pod is created.
  cluster.taken.clear();
  await reconcileVmKey(cluster, 'default', 'web', options);
  expect(cluster.created).toHaveLength(1);
});
