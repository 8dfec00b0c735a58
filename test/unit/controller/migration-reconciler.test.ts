/**
 * The migration reconciler against an in-memory cluster: the receiving pod selects the source node's CPU features
 * (node setup's `kubevisor.io/cpu-features`), so the guest only moves to a node exposing the CPU it booted on; without
 * the label (a node node setup never saw) the pod selects only the VM's own labels.
 */
import type { VirtualMachineMigrationStatus, VirtualMachineStatus } from '../../../api';
import { renderVirtualMachine } from '../../../constructs';
import type { Cluster, MigrationObject, VmObject, VmPodSecret } from '../../../operator/controller/cluster';
import { MIGRATION_FINALIZER } from '../../../operator/controller/migration-lifecycle';
import { reconcileMigrationKey } from '../../../operator/controller/migration-reconciler';
import type { NodeView, PodView } from '../../../operator/controller/vm-lifecycle';
import { EXAMPLES } from '../../../stacks/examples';

const NOW = new Date('2026-11-22T12:00:00Z');

class FakeCluster implements Cluster {
  created: Record<string, unknown>[] = [];
  constructor(
    private readonly vmObject: VmObject,
    private readonly migrationObject: MigrationObject,
    private readonly nodes: Record<string, NodeView>,
  ) {}
  vm = () => this.vmObject;
  migration = () => this.migrationObject;
  podsOfVm = (): PodView[] => [];
  node = (name: string) => this.nodes[name];
  attachmentPodsOfVm = (): PodView[] => [];
  async createPod(pod: Record<string, unknown>, _secret?: VmPodSecret): Promise<string> {
    this.created.push(pod);
    return 'target-uid';
  }
  async settleVmSecret(): Promise<void> {}
  async deletePod(): Promise<void> {}
  async updateVmStatus(_vm: VmObject, _status: VirtualMachineStatus): Promise<void> {}
  async updateMigrationStatus(_m: MigrationObject, _status: VirtualMachineMigrationStatus): Promise<void> {}
  async setVmMigration(): Promise<void> {}
  async addFinalizer(): Promise<string | undefined> {
    return '2';
  }
  async removeFinalizer(): Promise<void> {}
  async event(): Promise<void> {}
}

const node = (name: string, features?: string): NodeView => ({
  metadata: { name, ...(features ? { labels: { 'kubevisor.io/cpu-features': features } } : {}) },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
});

function setup(sourceFeatures?: string) {
  const o = renderVirtualMachine('db', EXAMPLES.db);
  const vm = {
    ...o,
    metadata: { name: 'db', namespace: 'default', uid: 'vm-uid', generation: 1 },
    status: {
      phase: 'Running',
      nodeName: 'n1',
      vmPodName: 'vm-db-run0',
      migration: { name: 'move', uid: 'm-uid', targetVMPodName: 'vm-db-target' },
    },
  } as unknown as VmObject;
  const migration = {
    apiVersion: 'kubevisor.io/v1alpha1',
    kind: 'VirtualMachineMigration',
    metadata: { name: 'move', namespace: 'default', uid: 'm-uid', generation: 1, finalizers: [MIGRATION_FINALIZER] },
    spec: { vmName: 'db', timeoutSeconds: 600 },
    status: { phase: 'Pending', sourceNodeName: 'n1', targetVMPodName: 'vm-db-target' },
  } as unknown as MigrationObject;
  return new FakeCluster(vm, migration, { n1: node('n1', sourceFeatures), n2: node('n2', 'other') });
}

const selectorOf = (pod: Record<string, unknown>) =>
  (pod.spec as { nodeSelector: Record<string, string> }).nodeSelector;

test("the receiving pod selects the source node's CPU features", async () => {
  const cluster = setup('0123456789abcdef');
  await reconcileMigrationKey(cluster, 'default', 'move', { pod: { image: 'kubevisor:test' }, now: () => NOW });
  expect(cluster.created).toHaveLength(1);
  // The db example's own nodeSelector (kubevisor.io/storage) still holds.
  expect(selectorOf(cluster.created[0])).toEqual({
    'kubevisor.io/storage': 'local',
    'kubevisor.io/cpu-features': '0123456789abcdef',
    'kubevisor.io/kvm': 'true',
  });
});

test('a source node without the label adds no CPU selector', async () => {
  const cluster = setup();
  await reconcileMigrationKey(cluster, 'default', 'move', { pod: { image: 'kubevisor:test' }, now: () => NOW });
  expect(selectorOf(cluster.created[0])).toEqual({ 'kubevisor.io/storage': 'local', 'kubevisor.io/kvm': 'true' });
});
