import type { MigrationView } from '../../../operator/controller/migration-lifecycle';
import {
  MIGRATION_FINALIZER,
  notMigratableReason,
  reconcileMigration,
} from '../../../operator/controller/migration-lifecycle';
import type { PodView, VmView } from '../../../operator/controller/vm-lifecycle';
import { renderVirtualMachine } from '../../../constructs';
import { EXAMPLES } from '../../../stacks/examples';

const NOW = new Date('2026-11-22T12:00:00Z');
const TARGET = 'vm-db-target';

const db = (status: VmView['status'], extra: Partial<VmView['metadata']> = {}): VmView => {
  const o = renderVirtualMachine('db', EXAMPLES.db);
  return { metadata: { name: 'db', uid: 'vm-uid', ...extra }, spec: o.spec as VmView['spec'], status };
};
// The db example bridges a Multus network and boots from a PVC: migratable.
const running = db({ phase: 'Running', nodeName: 'n1', vmPodName: 'vm-db-run0' });
const migration = (
  status?: MigrationView['status'],
  extra: Partial<MigrationView['metadata']> = {},
): MigrationView => ({
  metadata: {
    name: 'move',
    uid: 'm-uid',
    generation: 1,
    creationTimestamp: new Date(NOW.getTime() - 10_000).toISOString(),
    finalizers: [MIGRATION_FINALIZER],
    ...extra,
  },
  spec: { vmName: 'db', timeoutSeconds: 600 },
  ...(status ? { status } : {}),
});
const claimed = (status: VmView['status']) =>
  db({ ...status, migration: { name: 'move', uid: 'm-uid', targetVMPodName: TARGET } });
const types = (d: { actions: { type: string }[] }) => d.actions.filter((a) => a.type !== 'event').map((a) => a.type);

test('accepting claims the VM and records the source node', () => {
  const d = reconcileMigration(migration(), running, [], NOW, TARGET);
  expect(d.status).toEqual(
    expect.objectContaining({ phase: 'Pending', sourceNodeName: 'n1', targetVMPodName: TARGET }),
  );
  expect(d.actions).toContainEqual({
    type: 'setVmMigration',
    migration: { name: 'move', uid: 'm-uid', targetVMPodName: TARGET },
  });
});

test.each([
  ['VM missing', undefined, 'VMNotFound'],
  ['VM not running', db({ phase: 'Scheduling' }), 'VMNotRunning'],
  [
    'VM on a containerDisk',
    { ...running, spec: renderVirtualMachine('web', EXAMPLES.web).spec as VmView['spec'] },
    'NotMigratable',
  ],
])('%s → Failed (%s)', (_n, vm, reason) => {
  const d = reconcileMigration(migration(), vm, [], NOW, TARGET);
  expect(d.status.phase).toBe('Failed');
  expect(d.status.conditions?.[0]).toEqual(expect.objectContaining({ type: 'Complete', status: 'False', reason }));
  expect(types(d)).not.toContain('setVmMigration');
});

test('a VM another migration holds: this one waits (no phase, a condition, one event) and starts once released', () => {
  const held = db({ phase: 'Running', nodeName: 'n1', migration: { name: 'other', uid: 'x' } });
  const d1 = reconcileMigration(migration(), held, [], NOW, TARGET);
  expect(d1.status.phase).toBeUndefined();
  expect(d1.status.conditions?.[0]).toEqual(
    expect.objectContaining({ type: 'Complete', status: 'False', reason: 'WaitingForMigration' }),
  );
  expect(d1.requeueAfterMs).toBeLessThanOrEqual(1000);
  expect(types(d1)).toEqual([]);
  expect(d1.actions.filter((a) => a.type === 'event')).toHaveLength(1);
  // Still held: no second event.
  const d2 = reconcileMigration(migration(d1.status), held, [], NOW, TARGET);
  expect(d2.actions.filter((a) => a.type === 'event')).toHaveLength(0);
  // Released: accepted.
  const d3 = reconcileMigration(migration(d2.status), running, [], NOW, TARGET);
  expect(d3.status.phase).toBe('Pending');
  // Held until the timeout: it fails then, as any migration.
  const late = new Date(NOW.getTime() + 600_000);
  expect(reconcileMigration(migration(d1.status), held, [], late, TARGET).status.phase).toBe('Failed');
});

test('Pending → Scheduling → Scheduled → TargetReady as the target pod is created, bound and ready', () => {
  const vm = claimed({ phase: 'Running', nodeName: 'n1' });
  const d1 = reconcileMigration(migration({ phase: 'Pending', targetVMPodName: TARGET }), vm, [], NOW, TARGET);
  expect(types(d1)).toEqual(['createTargetPod']);
  expect(d1.status.phase).toBe('Scheduling');
  const bound: PodView = { metadata: { name: TARGET }, spec: { nodeName: 'n2' }, status: { phase: 'Pending' } };
  const d2 = reconcileMigration(migration(d1.status), vm, [bound], NOW, TARGET);
  expect(d2.status).toEqual(expect.objectContaining({ phase: 'Scheduled', targetNodeName: 'n2' }));
  const ready: PodView = { ...bound, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } };
  expect(reconcileMigration(migration(d2.status), vm, [ready], NOW, TARGET).status.phase).toBe('TargetReady');
});

test('a failed target pod fails the migration, releases the VM and removes the pod', () => {
  const failed: PodView = { metadata: { name: TARGET }, spec: { nodeName: 'n2' }, status: { phase: 'Failed' } };
  const d = reconcileMigration(
    migration({ phase: 'Scheduled', targetVMPodName: TARGET }),
    claimed({ phase: 'Running' }),
    [failed],
    NOW,
    TARGET,
  );
  expect(d.status.phase).toBe('Failed');
  expect(types(d)).toEqual(['setVmMigration', 'deletePod']);
});

test('the timeout fails the migration and leaves the VM where it is', () => {
  const old = migration(
    { phase: 'Scheduling', targetVMPodName: TARGET },
    { creationTimestamp: new Date(NOW.getTime() - 601_000).toISOString() },
  );
  const d = reconcileMigration(old, claimed({ phase: 'Running' }), [{ metadata: { name: TARGET } }], NOW, TARGET);
  expect(d.status.conditions?.[0].reason).toBe('Timeout');
  expect(types(d)).toEqual(['setVmMigration', 'deletePod']);
});

test('deleting the migration cleans up, then drops the finalizer', () => {
  const d = reconcileMigration(
    migration({ phase: 'Scheduled', targetVMPodName: TARGET }, { deletionTimestamp: NOW.toISOString() }),
    claimed({ phase: 'Running' }),
    [{ metadata: { name: TARGET } }],
    NOW,
    TARGET,
  );
  expect(types(d)).toEqual(['setVmMigration', 'deletePod', 'removeFinalizer']);
});

test('migratability follows what Cloud Hypervisor and the pod network allow', () => {
  expect(notMigratableReason(running)).toBeUndefined();
  const web = { ...running, spec: renderVirtualMachine('web', EXAMPLES.web).spec as VmView['spec'] };
  expect(notMigratableReason(web)).toMatch(/ephemeral storage/);
  const bridged = { ...running, spec: renderVirtualMachine('kb', EXAMPLES['kernel-boot']).spec as VmView['spec'] };
  expect(notMigratableReason(bridged)).toMatch(/bridges the pod network|ephemeral/);
});
