import type { NodeView, PodView, VmAction, VmView } from '../../../operator/controller/vm-lifecycle';
import { DEFAULT_LIFECYCLE, VM_FINALIZER, reconcileVm } from '../../../operator/controller/vm-lifecycle';
import type { RunPolicy, VirtualMachineStatus } from '../../../api';

const NOW = new Date('2026-11-22T12:00:00Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();
const podName = (run: number) => `vm-web-run${run}`;

function vm(
  runPolicy: RunPolicy,
  status?: VirtualMachineStatus,
  extra: Partial<VmView['metadata']> = {},
  restartRequest?: string,
): VmView {
  return {
    metadata: { name: 'web', namespace: 'default', uid: 'u1', generation: 3, finalizers: [VM_FINALIZER], ...extra },
    spec: {
      runPolicy,
      instance: {},
      power: { paused: false, shutdownGracePeriodSeconds: 60, ...(restartRequest ? { restartRequest } : {}) },
    },
    ...(status ? { status } : {}),
  };
}
const pod = (
  name: string,
  phase?: PodView['status'] extends infer S ? (S extends { phase?: infer P } ? P : never) : never,
  nodeName?: string,
  extra: Partial<PodView> = {},
): PodView => ({
  metadata: { name, uid: `uid-${name}` },
  spec: nodeName ? { nodeName } : {},
  status: phase ? { phase } : {},
  ...extra,
});
const readyNode = (name: string): NodeView => ({
  metadata: { name },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
});
const lostNode = (name: string, sinceMs: number): NodeView => ({
  metadata: { name },
  status: { conditions: [{ type: 'Ready', status: 'Unknown', lastTransitionTime: ago(sinceMs) }] },
});
const nodes = (...n: NodeView[]) => new Map(n.map((x) => [x.metadata.name, x]));
const kinds = (a: VmAction[]) =>
  a
    .filter((x) => x.type !== 'event')
    .map((x) =>
      x.type === 'deletePod'
        ? `delete ${x.name}${x.force ? ' (force)' : ''}`
        : x.type === 'createPod'
          ? `create run ${x.run}`
          : x.type,
    );

describe('start at creation', () => {
  test.each<[RunPolicy, string | undefined, string[]]>([
    ['Always', 'Scheduling', ['create run 0']],
    ['RerunOnFailure', 'Scheduling', ['create run 0']],
    ['Once', 'Scheduling', ['create run 0']],
    ['Manual', 'Stopped', []],
    ['Halted', 'Stopped', []],
  ])('%s → %s', (policy, phase, acts) => {
    const d = reconcileVm(vm(policy), [], nodes(), NOW, podName);
    expect(d.status.phase).toBe(phase);
    expect(kinds(d.actions)).toEqual(acts);
    if (phase === 'Scheduling') expect(d.status.vmPodName).toBe('vm-web-run0');
    expect(d.status.observedGeneration).toBe(3);
  });

  test('Manual starts on a restartRequest, and records it', () => {
    const d = reconcileVm(vm('Manual', { phase: 'Stopped' }, {}, 'go-1'), [], nodes(), NOW, podName);
    expect(kinds(d.actions)).toEqual(['create run 0']);
    expect(d.status.observedRestartRequest).toBe('go-1');
  });

  test('adds the finalizer first', () => {
    expect(kinds(reconcileVm(vm('Once', undefined, { finalizers: [] }), [], nodes(), NOW, podName).actions)).toContain(
      'addFinalizer',
    );
  });
});

describe('while the pod runs', () => {
  const scheduling = { phase: 'Scheduling', vmPodName: 'vm-web-run0', restarts: 0 } as const;

  test('Scheduling → Scheduled once the pod is bound, recording node and pod UID', () => {
    const d = reconcileVm(
      vm('Once', scheduling),
      [pod('vm-web-run0', 'Pending', 'n1')],
      nodes(readyNode('n1')),
      NOW,
      podName,
    );
    expect(d.status).toEqual(
      expect.objectContaining({ phase: 'Scheduled', nodeName: 'n1', vmPodUID: 'uid-vm-web-run0' }),
    );
  });

  test('a pod missing during Scheduling is created again (idempotent after a crash)', () => {
    expect(kinds(reconcileVm(vm('Once', scheduling), [], nodes(), NOW, podName).actions)).toEqual(['create run 0']);
  });

  const exited = (exitReason?: 'PoweredOff' | 'Crashed' | 'BootFailed'): VirtualMachineStatus => ({
    ...scheduling,
    phase: 'Running',
    nodeName: 'n1',
    guest: { podName: 'vm-web-run0', bootTime: ago(5_000), ...(exitReason ? { exitReason } : {}) },
  });
  const endedPod = (finishedAgoMs: number) =>
    pod('vm-web-run0', 'Succeeded', 'n1', {
      status: {
        phase: 'Succeeded',
        containerStatuses: [
          { name: 'launcher', state: { terminated: { exitCode: 0, finishedAt: ago(finishedAgoMs) } } },
        ],
      },
    });

  test.each([
    ['pod failed', exited(), [pod('vm-web-run0', 'Failed', 'n1')], 'Failed', 'PodFailed'],
    ['guest powered off', exited('PoweredOff'), [endedPod(0)], 'Succeeded', 'GuestPoweredOff'],
    // CH exits 0 on a crash too: only the daemon's report tells, and it may come before the kubelet's.
    ['guest crashed', exited('Crashed'), [endedPod(0)], 'Failed', 'GuestCrashed'],
    [
      'guest crashed, pod not yet ended',
      exited('Crashed'),
      [pod('vm-web-run0', 'Running', 'n1')],
      'Failed',
      'GuestCrashed',
    ],
    ['boot failed', exited('BootFailed'), [endedPod(0)], 'Failed', 'BootFailed'],
    ['pod ended, no daemon report for 30 s', exited(), [endedPod(30_000)], 'Succeeded', 'Shutdown'],
    ['pod deleted', exited(), [], 'Failed', 'PodDeleted'],
  ] as const)('%s → %s', (_n, status, pods, phase, reason) => {
    const d = reconcileVm(vm('Once', status), pods, nodes(readyNode('n1')), NOW, podName);
    expect(d.status.phase).toBe(phase);
    expect(d.status.conditions?.find((c) => c.type === 'Ready')).toEqual(
      expect.objectContaining({ status: 'False', reason }),
    );
    expect(d.status.phaseTransitionTime).toBe(NOW.toISOString());
    expect(d.requeueAfterMs).toBe(1);
  });

  test('a pod that ended without a report from the node daemon waits for it (CH exits 0 on a crash too)', () => {
    const d = reconcileVm(vm('Once', exited()), [endedPod(10_000)], nodes(readyNode('n1')), NOW, podName);
    expect(d.status.phase).toBe('Running');
    expect(d.requeueAfterMs).toBe(DEFAULT_LIFECYCLE.guestExitReportMs - 10_000);
  });

  test('a report about an earlier pod says nothing about the current one', () => {
    const stale = { ...exited('Crashed'), guest: { podName: 'vm-web-old', exitReason: 'Crashed' as const } };
    const d = reconcileVm(
      vm('Once', stale),
      [pod('vm-web-run0', 'Running', 'n1')],
      nodes(readyNode('n1')),
      NOW,
      podName,
    );
    expect(d.status.phase).toBe('Running');
  });

  test('during a migration an ended source pod waits for the switch-over however long it takes', () => {
    const migrating = { ...exited(), migration: { name: 'm', uid: 'mu', targetVMPodName: 'vm-web-t' } };
    const d = reconcileVm(vm('Once', migrating), [endedPod(600_000)], nodes(readyNode('n1')), NOW, podName);
    expect(d.status.phase).toBe('Running');
    expect(d.requeueAfterMs).toBeGreaterThan(0);
  });

  test('the termination message becomes the failure reason', () => {
    const failed = pod('vm-web-run0', 'Failed', 'n1', {
      status: {
        phase: 'Failed',
        containerStatuses: [
          { name: 'launcher', state: { terminated: { exitCode: 1, message: 'spec.volumes[0]: image not found' } } },
        ],
      },
    });
    const d = reconcileVm(
      vm('Once', { ...scheduling, phase: 'Running' }),
      [failed],
      nodes(readyNode('n1')),
      NOW,
      podName,
    );
    expect(d.actions).toContainEqual({
      type: 'event',
      reason: 'PodFailed',
      message: 'spec.volumes[0]: image not found',
      warning: true,
    });
  });

  test.each([
    ['the pod is ready but no guest booted yet', { phase: 'Scheduled' }, true, 'False', 'GuestNotRunning'],
    ['the daemon says Running but reported no boot', { phase: 'Running' }, true, 'False', 'GuestNotRunning'],
    [
      'the guest booted in an earlier pod',
      { phase: 'Running', guest: { podName: 'x', bootTime: ago(1) } },
      true,
      'False',
      'GuestNotRunning',
    ],
    [
      'the guest runs, its readiness probe fails',
      { phase: 'Running', guest: { podName: 'vm-web-run0', bootTime: ago(1) } },
      false,
      'False',
      'GuestNotReady',
    ],
    [
      'the guest is paused',
      { phase: 'Paused', guest: { podName: 'vm-web-run0', bootTime: ago(1) } },
      true,
      'False',
      'Paused',
    ],
    [
      'the guest runs and is ready',
      { phase: 'Running', guest: { podName: 'vm-web-run0', bootTime: ago(1) } },
      true,
      'True',
      'GuestReady',
    ],
  ] as const)('Ready: %s → %s', (_n, extra, podReady, status, reason) => {
    const p = pod('vm-web-run0', 'Running', 'n1', {
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: podReady ? 'True' : 'False' }] },
    });
    const d = reconcileVm(
      vm('Once', { ...scheduling, nodeName: 'n1', ...extra }),
      [p],
      nodes(readyNode('n1')),
      NOW,
      podName,
    );
    expect(d.status.conditions?.find((c) => c.type === 'Ready')).toEqual(expect.objectContaining({ status, reason }));
  });

  test('Ready keeps its transition time while it holds', () => {
    const readyPod = pod('vm-web-run0', 'Running', 'n1', {
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
    });
    const d1 = reconcileVm(
      vm('Once', { ...scheduling, phase: 'Running', guest: { podName: 'vm-web-run0', bootTime: ago(1) } }),
      [readyPod],
      nodes(readyNode('n1')),
      NOW,
      podName,
    );
    const ready = d1.status.conditions!.find((c) => c.type === 'Ready')!;
    expect(ready.status).toBe('True');
    const later = new Date(NOW.getTime() + 60_000);
    const d2 = reconcileVm(vm('Once', d1.status), [readyPod], nodes(readyNode('n1')), later, podName);
    expect(d2.status.conditions!.find((c) => c.type === 'Ready')!.lastTransitionTime).toBe(ready.lastTransitionTime);
  });
});

describe('node loss', () => {
  const running = { phase: 'Running', vmPodName: 'vm-web-run0', nodeName: 'n1', restarts: 0 } as const;

  test('within the grace period: Unknown, look again when it ends', () => {
    const d = reconcileVm(
      vm('Always', running),
      [pod('vm-web-run0', 'Running', 'n1')],
      nodes(lostNode('n1', 10_000)),
      NOW,
      podName,
    );
    expect(d.status.phase).toBe('Unknown');
    expect(d.requeueAfterMs).toBe(DEFAULT_LIFECYCLE.nodeLossGraceMs - 10_000);
    expect(kinds(d.actions)).toEqual([]);
  });

  test('past the grace period: the pod is force-deleted and the VM Failed (NodeLost)', () => {
    const d = reconcileVm(
      vm('Always', running),
      [pod('vm-web-run0', 'Running', 'n1')],
      nodes(lostNode('n1', 61_000)),
      NOW,
      podName,
    );
    expect(kinds(d.actions)).toEqual(['delete vm-web-run0 (force)']);
    expect(d.status.phase).toBe('Failed');
    expect(d.actions).toContainEqual(expect.objectContaining({ type: 'event', reason: 'NodeLost', warning: true }));
  });

  test('a node that disappeared counts as lost at once', () => {
    const d = reconcileVm(vm('Always', running), [pod('vm-web-run0', 'Running', 'n1')], nodes(), NOW, podName);
    expect(d.status.phase).toBe('Failed');
  });

  test('the node coming back ends Unknown', () => {
    const d = reconcileVm(
      vm('Always', { ...running, phase: 'Unknown' }),
      [pod('vm-web-run0', 'Running', 'n1')],
      nodes(readyNode('n1')),
      NOW,
      podName,
    );
    expect(d.status.phase).toBe('Scheduled');
  });
});

describe('after the VM stopped', () => {
  const stoppedAt = (
    phase: 'Succeeded' | 'Failed',
    sinceMs: number,
    restarts = 0,
    consecutiveFailures = 0,
  ): VirtualMachineStatus => ({
    phase,
    vmPodName: 'vm-web-run0',
    restarts,
    consecutiveFailures,
    phaseTransitionTime: ago(sinceMs),
  });

  test('a pod of a newer run than the (stale) status is never deleted', () => {
    const fresh = pod('vm-web-run1', 'Pending', undefined, {
      metadata: { name: 'vm-web-run1', labels: { 'kubevisor.io/run': '1' } },
    });
    const d = reconcileVm(vm('Always', stoppedAt('Succeeded', 600_000)), [fresh], nodes(), NOW, podName);
    expect(kinds(d.actions)).toEqual(['create run 1']);
  });

  test('old pods are deleted before anything restarts', () => {
    const d = reconcileVm(
      vm('Always', stoppedAt('Succeeded', 0)),
      [pod('vm-web-run0', 'Succeeded', 'n1')],
      nodes(),
      NOW,
      podName,
    );
    expect(kinds(d.actions)).toEqual(['delete vm-web-run0']);
    expect(d.status.phase).toBe('Succeeded');
  });

  test.each<[RunPolicy, 'Succeeded' | 'Failed', boolean]>([
    ['Always', 'Succeeded', true],
    ['Always', 'Failed', true],
    ['RerunOnFailure', 'Succeeded', false],
    ['RerunOnFailure', 'Failed', true],
    ['Once', 'Succeeded', false],
    ['Once', 'Failed', false],
    ['Manual', 'Failed', false],
  ])('%s after %s: restarts=%s', (policy, phase, restarts) => {
    const d = reconcileVm(vm(policy, stoppedAt(phase, 600_000)), [], nodes(), NOW, podName);
    expect(kinds(d.actions)).toEqual(restarts ? ['create run 1'] : []);
    expect(d.status.phase).toBe(restarts ? 'Scheduling' : phase);
    if (restarts) expect(d.status).toEqual(expect.objectContaining({ restarts: 1, vmPodName: 'vm-web-run1' }));
  });

  test('a restart waits the backoff of the consecutive failures, not of the lifetime restarts', () => {
    // 3 failures in a row: 5 s × 2² = 20 s.
    const early = reconcileVm(vm('Always', stoppedAt('Failed', 1_000, 2, 3)), [], nodes(), NOW, podName);
    expect(kinds(early.actions)).toEqual([]);
    expect(early.requeueAfterMs).toBe(5_000 * 4 - 1_000);
    expect(
      kinds(reconcileVm(vm('Always', stoppedAt('Failed', 20_000, 2, 3)), [], nodes(), NOW, podName).actions),
    ).toEqual(['create run 3']);
    // 40 restarts in a VM's life, none failing in a row: no wait (the old rule waited 5 min).
    expect(kinds(reconcileVm(vm('Always', stoppedAt('Failed', 0, 40, 0)), [], nodes(), NOW, podName).actions)).toEqual([
      'create run 41',
    ]);
  });

  describe('consecutive failures', () => {
    const runningSince = (bootAgoMs: number, consecutiveFailures = 0): VirtualMachineStatus => ({
      phase: 'Running',
      vmPodName: 'vm-web-run0',
      nodeName: 'n1',
      consecutiveFailures,
      guest: { podName: 'vm-web-run0', bootTime: ago(bootAgoMs), exitReason: 'PoweredOff' },
    });
    const ended = [pod('vm-web-run0', 'Succeeded', 'n1')];
    test.each<[string, RunPolicy, number, number, number]>([
      ['Always, guest stopped after 5 s: counts', 'Always', 5_000, 2, 3],
      ['Always, guest stopped after 10 min: resets', 'Always', 600_000, 2, 0],
      ['Once, guest powered off: resets (no automatic restart)', 'Once', 5_000, 2, 0],
    ])('%s', (_n, policy, bootAgoMs, before, after) => {
      const d = reconcileVm(vm(policy, runningSince(bootAgoMs, before)), ended, nodes(readyNode('n1')), NOW, podName);
      expect(d.status.phase).toBe('Succeeded');
      expect(d.status.consecutiveFailures).toBe(after);
    });

    test('an Always VM whose guest keeps powering off at once restarts with a growing delay, not in a tight loop', () => {
      let status: VirtualMachineStatus = runningSince(1_000);
      const delays: number[] = [];
      let now = NOW;
      for (let i = 0; i < 4; i++) {
        // The guest powered off one second after booting; the pod is gone.
        status = reconcileVm(vm('Always', status), ended, nodes(readyNode('n1')), now, podName).status;
        const wait = reconcileVm(vm('Always', status), [], nodes(), now, podName);
        expect(kinds(wait.actions)).toEqual([]);
        delays.push(wait.requeueAfterMs!);
        now = new Date(now.getTime() + wait.requeueAfterMs!);
        const restart = reconcileVm(vm('Always', status), [], nodes(), now, podName);
        expect(kinds(restart.actions)).toEqual([`create run ${i + 1}`]);
        status = {
          ...restart.status,
          phase: 'Running',
          guest: {
            podName: restart.status.vmPodName,
            bootTime: ago(-(now.getTime() - NOW.getTime()) + 1_000),
            exitReason: 'PoweredOff',
          },
        };
      }
      expect(delays).toEqual([5_000, 10_000, 20_000, 40_000]);
    });
  });

  test('a new restartRequest starts a stopped Once VM at once and is acted on only once', () => {
    const d = reconcileVm(vm('Once', stoppedAt('Failed', 0), {}, 'r1'), [], nodes(), NOW, podName);
    expect(kinds(d.actions)).toEqual(['create run 1']);
    expect(d.status.observedRestartRequest).toBe('r1');
    const again = reconcileVm(
      vm('Once', { ...stoppedAt('Failed', 0), observedRestartRequest: 'r1' }, {}, 'r1'),
      [],
      nodes(),
      NOW,
      podName,
    );
    expect(kinds(again.actions)).toEqual([]);
  });
});

describe('Halted and deletion', () => {
  test('switching a running VM to Halted deletes its pod gracefully, then Stopped', () => {
    const running = { phase: 'Running', vmPodName: 'vm-web-run0', nodeName: 'n1' } as const;
    const d = reconcileVm(
      vm('Halted', running),
      [pod('vm-web-run0', 'Running', 'n1')],
      nodes(readyNode('n1')),
      NOW,
      podName,
    );
    expect(kinds(d.actions)).toEqual(['delete vm-web-run0']);
    expect(d.status.phase).toBe('Running');
    const gone = reconcileVm(vm('Halted', running), [], nodes(readyNode('n1')), NOW, podName);
    expect(gone.status.phase).toBe('Stopped');
  });

  test('a Halted VM stays Stopped, even on a restartRequest', () => {
    for (const request of [undefined, 'r1']) {
      const d = reconcileVm(vm('Halted', { phase: 'Stopped', restarts: 1 }, {}, request), [], nodes(), NOW, podName);
      expect(kinds(d.actions)).toEqual([]);
      expect(d.status.phase).toBe('Stopped');
    }
  });

  test('a deleted VM deletes its pods and drops the finalizer only when none is left', () => {
    const deleting = vm(
      'Always',
      { phase: 'Running', vmPodName: 'vm-web-run0' },
      { deletionTimestamp: NOW.toISOString() },
    );
    expect(kinds(reconcileVm(deleting, [pod('vm-web-run0', 'Running', 'n1')], nodes(), NOW, podName).actions)).toEqual([
      'delete vm-web-run0',
    ]);
    const terminating = pod('vm-web-run0', 'Running', 'n1', {
      metadata: { name: 'vm-web-run0', deletionTimestamp: NOW.toISOString() },
    });
    expect(kinds(reconcileVm(deleting, [terminating], nodes(), NOW, podName).actions)).toEqual([]);
    expect(kinds(reconcileVm(deleting, [], nodes(), NOW, podName).actions)).toEqual(['removeFinalizer']);
  });

  test('pods of earlier runs are garbage-collected', () => {
    const d = reconcileVm(
      vm('Always', { phase: 'Scheduled', vmPodName: 'vm-web-run1', nodeName: 'n1', restarts: 1 }),
      [pod('vm-web-run0', 'Running', 'n2'), pod('vm-web-run1', 'Running', 'n1')],
      nodes(readyNode('n1'), readyNode('n2')),
      NOW,
      podName,
    );
    expect(kinds(d.actions)).toEqual(['delete vm-web-run0']);
  });
});
