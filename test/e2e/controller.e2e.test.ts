/**
 * The controller against the real control plane with KWOK nodes: one VM pod per VM, the phases it drives, every
 * runPolicy after pod success, failure and deletion, node loss, deletion while running, and a migration up to
 * TargetReady. KWOK runs the pods; where the node daemon will later act (guest shut down, pod failed) the test
 * writes the pod's status itself, as the kubelet would.
 *
 * The controller runs as a ServiceAccount with exactly the install's RBAC rules (operator/rbac.ts, through
 * harness/operator-identity.ts), so every step here shows those rules suffice. The namespace enforces Pod Security
 * `baseline`, so every VM pod here is admitted under it; the tenant-isolation tests add what a tenant may try through
 * a VM (and a pod of the VM's future name, with a foreign owner or naming the VM as its owner) and, once every one of
 * them was seen refused, print `security: baseline admitted, N tenant attacks refused`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunPolicy, VirtualMachineStatus } from '../../api';
import type { VirtualMachineProps } from '../../constructs';
import { renderVirtualMachine, renderVirtualMachineMigration } from '../../constructs';
import { renderVmPod, vmPodName } from '../../constructs/vm-pod';
import { podMismatch } from '../../operator/controller/adoption';
import { HOTPLUG_VOLUME } from '../../operator/pod-layout';
import { BAD_INPUT_CASES } from '../bad-input/cases';
import {
  ADOPTION_CASES,
  AS_RETURNED_DIR,
  adoptionAttachmentPod,
  adoptionPod,
  stableCopy,
} from '../fixtures/adoption-cases';
import { KubeApiError, type KubeObject } from './harness/kube-client';
import { kwokNode } from './harness/control-plane';
import { installControllerIdentity, type ControllerIdentity } from './harness/operator-identity';
import { startController, controllerGet, type ControllerProcess } from './harness/operator-process';
import { sharedControlPlane, sharedControlPlaneInfo } from './harness/shared';
import { waitFor } from './harness/wait';
import { installCrds } from './harness/crds';

const client = sharedControlPlane();
const info = sharedControlPlaneInfo();
const ns = `e2e-controller-${Date.now().toString(36)}`;
const within = { timeoutMs: 60_000, intervalMs: 200 };
let controller: ControllerProcess;
let identity: ControllerIdentity | undefined;

interface Vm extends KubeObject {
  status?: VirtualMachineStatus;
}
interface Pod extends KubeObject {
  spec: { nodeName?: string };
  status?: { phase?: string };
}

const props = (extra: VirtualMachineProps = {}): VirtualMachineProps => ({
  disks: [{ name: 'root' }],
  volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1' } }],
  ...extra,
});

async function createVm(name: string, extra: VirtualMachineProps = {}): Promise<void> {
  const o = renderVirtualMachine(name, props({ ...extra, metadata: { ...extra.metadata, name, namespace: ns } }));
  await client.create(o as unknown as KubeObject);
}
const getVm = (name: string) => client.get<Vm>('kubevisor.io/v1alpha1', 'VirtualMachine', name, ns);
const vmPods = async (name: string) =>
  (await client.list<Pod>('v1', 'Pod', { namespace: ns, labelSelector: `kubevisor.io/vm=${name}` })).filter(
    (p) => !p.metadata.deletionTimestamp,
  );

/** Waits until the VM satisfies `ok`; on timeout the error shows the VM's last status and its events. */
async function waitVm(name: string, what: string, ok: (vm: Vm) => boolean, timeoutMs = within.timeoutMs): Promise<Vm> {
  let last: Vm | undefined;
  try {
    return await waitFor(
      `VM ${name} ${what}`,
      async () => {
        last = await getVm(name);
        return ok(last) ? last : undefined;
      },
      { ...within, timeoutMs },
    );
  } catch (e) {
    const events = await client.list('v1', 'Event', { namespace: ns, fieldSelector: `involvedObject.name=${name}` });
    const reasons = events.map((x) => `${(x as { reason?: string }).reason}: ${(x as { message?: string }).message}`);
    throw new Error(
      `${(e as Error).message}\nlast status: ${JSON.stringify(last?.status)}\nevents: ${reasons.join(' | ')}`,
    );
  }
}
const phase = (name: string, expected: string, timeoutMs?: number) =>
  waitVm(name, `phase ${expected}`, (v) => v.status?.phase === expected, timeoutMs);
const restarted = (name: string) =>
  waitVm(name, 'restarted and Scheduled', (v) => v.status?.restarts === 1 && v.status.phase === 'Scheduled');

/** Ends the VM's current pod as the kubelet would report it. */
async function endPod(podName: string, podPhase: 'Succeeded' | 'Failed', message = ''): Promise<void> {
  const pod = await client.get<Pod>('v1', 'Pod', podName, ns);
  await client.request('PATCH', `/api/v1/namespaces/${ns}/pods/${podName}/status`, {
    contentType: 'application/merge-patch+json',
    body: {
      metadata: { resourceVersion: pod.metadata.resourceVersion },
      status: {
        phase: podPhase,
        containerStatuses: [
          {
            name: 'launcher',
            image: 'kubevisor:e2e',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: {
              terminated: {
                exitCode: podPhase === 'Failed' ? 1 : 0,
                message,
                reason: podPhase === 'Failed' ? 'Error' : 'Completed',
              },
            },
          },
        ],
      },
    },
  });
}

/** Asks a Manual VM to start (a new restartRequest). */
async function requestStart(name: string): Promise<void> {
  await client.request('PATCH', `/apis/kubevisor.io/v1alpha1/namespaces/${ns}/virtualmachines/${name}`, {
    contentType: 'application/merge-patch+json',
    body: { spec: { power: { restartRequest: 'start' } } },
  });
}

async function scheduledPod(name: string): Promise<{ vm: Vm; pod: Pod }> {
  const vm = await phase(name, 'Scheduled');
  const pod = await client.get<Pod>('v1', 'Pod', vm.status!.vmPodName!, ns);
  return { vm, pod };
}

beforeAll(async () => {
  await client.create({
    apiVersion: 'v1',
    kind: 'Namespace',
    // What a platform gives tenants: no privileged pods, no hostPath — and VM pods must still be admitted.
    metadata: {
      name: ns,
      labels: {
        'pod-security.kubernetes.io/enforce': 'baseline',
        'pod-security.kubernetes.io/enforce-version': 'latest',
      },
    },
  });
  await installCrds(client);
  identity = await installControllerIdentity(client, { platformNamespace: `${ns}-system` });
  controller = await startController(identity.kubeconfigPath, [
    ...identity.args,
    '--namespace',
    ns,
    '--node-loss-grace',
    '3',
    // No node daemon runs here: an ended pod is taken as a guest power-off at once.
    '--guest-exit-report',
    '0',
  ]);
});

afterAll(async () => {
  await controller?.stop();
  await identity?.remove();
  await client.delete('v1', 'Namespace', ns, undefined, { ignoreNotFound: true });
  client.close();
});

test('a VM gets exactly one pod, owned by it, and reaches Scheduled on a node', async () => {
  await createVm('basic');
  const { vm, pod } = await scheduledPod('basic');
  expect(vm.metadata.finalizers).toContain('kubevisor.io/vm-protection');
  expect(vm.status).toEqual(
    expect.objectContaining({
      nodeName: pod.spec.nodeName,
      vmPodUID: pod.metadata.uid,
      observedGeneration: vm.metadata.generation,
    }),
  );
  expect(pod.metadata.ownerReferences).toEqual([
    expect.objectContaining({ kind: 'VirtualMachine', name: 'basic', uid: vm.metadata.uid, controller: true }),
  ]);
  expect(await vmPods('basic')).toHaveLength(1);
  // The start and the binding are in the VM's status (and the pod's own Events): the VM gets no Event repeating them.
  const events = await client.list('v1', 'Event', { namespace: ns, fieldSelector: `involvedObject.name=basic` });
  const reasons = events.map((e) => (e as { reason?: string }).reason);
  expect(reasons).not.toContain('Starting');
  expect(reasons).not.toContain('Scheduled');
});

describe('runPolicy after the VM stops', () => {
  test.each<[RunPolicy, 'Succeeded' | 'Failed', boolean]>([
    ['Always', 'Succeeded', true],
    ['Always', 'Failed', true],
    ['RerunOnFailure', 'Succeeded', false],
    ['RerunOnFailure', 'Failed', true],
    ['Once', 'Succeeded', false],
    ['Once', 'Failed', false],
  ])('%s after %s → restarts: %s', async (policy, end, restarts) => {
    const name = `p-${policy.toLowerCase()}-${end.toLowerCase()}`;
    await createVm(name, { runPolicy: policy });
    const { pod } = await scheduledPod(name);
    await endPod(pod.metadata.name!, end, end === 'Failed' ? 'disk image not found' : '');
    if (restarts) {
      // The terminal phase may last only a moment before the restart, so wait for the restart itself.
      const vm = await restarted(name);
      expect(vm.status!.vmPodName).not.toBe(pod.metadata.name);
      await waitFor(
        `old pod of ${name} gone`,
        async () => ((await vmPods(name)).length === 1 ? true : undefined),
        within,
      );
    } else {
      await phase(name, end);
      // Give the controller time to (wrongly) restart, then check it did not.
      await new Promise((r) => setTimeout(r, 2_000));
      const vm = await getVm(name);
      expect(vm.status).toEqual(expect.objectContaining({ phase: end }));
      expect(vm.status?.restarts ?? 0).toBe(0);
      expect(await vmPods(name)).toEqual([]);
    }
    if (end === 'Failed') {
      const events = await client.list('v1', 'Event', { namespace: ns, fieldSelector: `involvedObject.name=${name}` });
      expect(
        events.some(
          (e) =>
            (e as { reason?: string; message?: string }).reason === 'PodFailed' &&
            (e as { message?: string }).message === 'disk image not found',
        ),
      ).toBe(true);
    }
  });

  test('Manual waits for a restartRequest; the same request never acts twice', async () => {
    await createVm('manual', { runPolicy: 'Manual' });
    await phase('manual', 'Stopped');
    expect(await vmPods('manual')).toEqual([]);
    await client.request('PATCH', `/apis/kubevisor.io/v1alpha1/namespaces/${ns}/virtualmachines/manual`, {
      contentType: 'application/merge-patch+json',
      body: { spec: { power: { restartRequest: 'start-1' } } },
    });
    const { pod } = await scheduledPod('manual');
    expect((await getVm('manual')).status?.observedRestartRequest).toBe('start-1');
    await endPod(pod.metadata.name!, 'Succeeded');
    await phase('manual', 'Succeeded');
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await getVm('manual')).status?.phase).toBe('Succeeded');
  });

  test('Halted never starts; switching a running VM to Halted stops it', async () => {
    await createVm('halted', { runPolicy: 'Halted' });
    await phase('halted', 'Stopped');
    await createVm('to-halt', { runPolicy: 'Always' });
    await scheduledPod('to-halt');
    await client.request('PATCH', `/apis/kubevisor.io/v1alpha1/namespaces/${ns}/virtualmachines/to-halt`, {
      contentType: 'application/merge-patch+json',
      body: { spec: { runPolicy: 'Halted' } },
    });
    await phase('to-halt', 'Stopped');
    expect(await vmPods('to-halt')).toEqual([]);
  });
});

test('pod deletion fails the VM and Always brings it back', async () => {
  await createVm('podgone', { runPolicy: 'Always' });
  const { pod } = await scheduledPod('podgone');
  await client.delete('v1', 'Pod', pod.metadata.name!, ns, { gracePeriodSeconds: 0 });
  await restarted('podgone');
  const events = await client.list('v1', 'Event', { namespace: ns, fieldSelector: 'involvedObject.name=podgone' });
  expect(events.map((e) => (e as { reason?: string }).reason)).toContain('PodDeleted');
});

test('node loss: the VM is recovered on another node after the grace period', async () => {
  const lost = `kwok-lost-${Date.now().toString(36)}`;
  await client.create(kwokNode(lost));
  await waitFor(
    `node ${lost} Ready and untainted`,
    async () => {
      const n = await client.get<
        KubeObject & {
          spec?: { taints?: { key: string }[] };
          status?: { conditions?: { type: string; status: string }[] };
        }
      >('v1', 'Node', lost);
      // The node lifecycle controller removes node.kubernetes.io/not-ready a moment after Ready: until then the
      // scheduler places the pod elsewhere, whatever the preference.
      const ready = n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      const tainted = n.spec?.taints?.some((t) => t.key.startsWith('node.kubernetes.io/'));
      return ready && !tainted ? true : undefined;
    },
    within,
  );
  try {
    await createVm('nodeloss', { runPolicy: 'Always', affinity: preferNode(lost) });
    const { pod } = await scheduledPod('nodeloss');
    expect(pod.spec.nodeName).toBe(lost);
    // KWOK stops heartbeating a node without its annotation; then the node reports NotReady, as a dead kubelet would.
    await client.request('PATCH', `/api/v1/nodes/${lost}`, {
      contentType: 'application/merge-patch+json',
      body: { metadata: { annotations: { 'kwok.x-k8s.io/node': null } }, spec: { unschedulable: true } },
    });
    await client.request('PATCH', `/api/v1/nodes/${lost}/status`, {
      contentType: 'application/strategic-merge-patch+json',
      body: {
        status: {
          conditions: [
            {
              type: 'Ready',
              status: 'False',
              reason: 'KubeletStopped',
              message: 'test',
              lastTransitionTime: new Date().toISOString(),
              lastHeartbeatTime: new Date().toISOString(),
            },
          ],
        },
      },
    });
    await phase('nodeloss', 'Unknown', 30_000);
    const vm = await waitVm(
      'nodeloss',
      'running elsewhere',
      (v) => v.status?.phase === 'Scheduled' && v.status.nodeName !== lost,
    );
    expect(vm.status?.restarts).toBe(1);
    const events = await client.list('v1', 'Event', { namespace: ns, fieldSelector: 'involvedObject.name=nodeloss' });
    expect(events.map((e) => (e as { reason?: string }).reason)).toEqual(
      expect.arrayContaining(['NodeNotReady', 'NodeLost']),
    );
  } finally {
    await client.delete('v1', 'Node', lost, undefined, { ignoreNotFound: true });
  }
});

test('deleting a running VM removes its pod, then the VM', async () => {
  await createVm('deleteme', { runPolicy: 'Always' });
  const { pod } = await scheduledPod('deleteme');
  await client.delete('kubevisor.io/v1alpha1', 'VirtualMachine', 'deleteme', ns);
  await waitFor(
    'VM deleteme gone',
    async () => ((await client.tryGet('kubevisor.io/v1alpha1', 'VirtualMachine', 'deleteme', ns)) ? undefined : true),
    within,
  );
  expect(await client.tryGet('v1', 'Pod', pod.metadata.name!, ns)).toBeUndefined();
});

/** A statically bound PV/PVC pair (no provisioner runs here), so a VM can boot from a migratable disk. */
async function boundClaim(name: string): Promise<void> {
  await client.create({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `${ns}-${name}` },
    spec: {
      capacity: { storage: '1Gi' },
      accessModes: ['ReadWriteMany'],
      storageClassName: '',
      nfs: { server: '192.0.2.1', path: `/${name}` },
      claimRef: { namespace: ns, name },
    },
  });
  await client.create({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: ns },
    spec: {
      accessModes: ['ReadWriteMany'],
      storageClassName: '',
      volumeName: `${ns}-${name}`,
      resources: { requests: { storage: '1Gi' } },
    },
  });
  await waitFor(
    `PVC ${name} Bound`,
    async () =>
      (await client.get<KubeObject & { status?: { phase?: string } }>('v1', 'PersistentVolumeClaim', name, ns)).status
        ?.phase === 'Bound'
        ? true
        : undefined,
    within,
  );
}

test('a migration creates the receiving pod on another node and reaches TargetReady', async () => {
  await boundClaim('mover-root');
  // A shared (RWX) disk and a masquerade NIC: what live migration needs.
  await createVm('mover', {
    runPolicy: 'Always',
    volumes: [{ name: 'root', persistentVolumeClaim: { claimName: 'mover-root' } }],
    interfaces: [{ name: 'pod', masquerade: {} }],
    networks: [{ name: 'pod', pod: {} }],
  });
  const { vm, pod } = await scheduledPod('mover');
  // Running is the node daemon's to set; the test plays that part.
  await client.request('PATCH', `/apis/kubevisor.io/v1alpha1/namespaces/${ns}/virtualmachines/mover/status`, {
    contentType: 'application/merge-patch+json',
    body: { metadata: { resourceVersion: vm.metadata.resourceVersion }, status: { phase: 'Running' } },
  });
  await phase('mover', 'Running');
  await client.create(
    renderVirtualMachineMigration('move-1', { vmName: 'mover', metadata: { namespace: ns } }) as unknown as KubeObject,
  );
  const m = await waitFor(
    'migration TargetReady',
    async () => {
      const x = await client.get<
        KubeObject & {
          status?: { phase?: string; sourceNodeName?: string; targetNodeName?: string; targetVMPodName?: string };
        }
      >('kubevisor.io/v1alpha1', 'VirtualMachineMigration', 'move-1', ns);
      if (x.status?.phase === 'Failed') throw new Error(`migration failed: ${JSON.stringify(x.status)}`);
      return x.status?.phase === 'TargetReady' ? x : undefined;
    },
    within,
  );
  expect(m.status?.sourceNodeName).toBe(pod.spec.nodeName);
  expect(m.status?.targetNodeName).not.toBe(pod.spec.nodeName);
  expect((await getVm('mover')).status?.migration).toEqual(
    expect.objectContaining({ name: 'move-1', targetVMPodName: m.status?.targetVMPodName }),
  );
  expect(await vmPods('mover')).toHaveLength(2);
});

describe('tenant isolation', () => {
  /** Attacks seen refused in this run: each is added only after the assertion that it was refused passed. */
  const refused: string[] = [];
  let admitted = false;

  test('a VM pod is admitted under baseline, its Secret goes with it, reserved metadata stays behind', async () => {
    await createVm('tenant', {
      metadata: {
        labels: { app: 'tenant', 'kubevisor.io/run': '99' },
        annotations: {
          'k8s.v1.cni.cncf.io/networks': 'other-team/their-net',
          'k8s.v1.cni.cncf.io/network-status': '[{"name":"x","device-info":{"pci":{"pci-address":"../../etc"}}}]',
          'container.apparmor.security.beta.kubernetes.io/launcher': 'unconfined',
          'example.com/note': 'kept',
        },
      },
      interfaces: [{ name: 'pod', masquerade: { ports: [{ port: 80 }] } }],
      networks: [{ name: 'pod', pod: {} }],
      readinessProbe: { httpGet: { port: 80, path: '/healthz' }, periodSeconds: 5 },
      tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }],
    });
    const { pod } = await scheduledPod('tenant');
    const full = await client.get<
      KubeObject & { spec: { nodeSelector?: Record<string, string>; securityContext?: Record<string, unknown> } }
    >('v1', 'Pod', pod.metadata.name!, ns);
    expect(full.spec.nodeSelector).toEqual({ 'kubevisor.io/kvm': 'true' });
    expect(full.spec.securityContext).toEqual({ seccompProfile: { type: 'RuntimeDefault' } });
    admitted = true;
    expect(full.metadata.labels).toEqual(expect.objectContaining({ app: 'tenant', 'kubevisor.io/run': '0' }));
    refused.push('kubevisor.io/run label through the VM');
    const annotations = full.metadata.annotations ?? {};
    expect(annotations['example.com/note']).toBe('kept');
    for (const key of [
      'k8s.v1.cni.cncf.io/networks',
      'k8s.v1.cni.cncf.io/network-status',
      'container.apparmor.security.beta.kubernetes.io/launcher',
    ]) {
      expect(annotations[key]).toBeUndefined();
      refused.push(`${key} annotation through the VM`);
    }
    // The VM reaches the launcher through the pod's own Secret, handed to the pod so that it goes with it.
    const secret = await client.get<KubeObject & { immutable?: boolean; data?: Record<string, string> }>(
      'v1',
      'Secret',
      pod.metadata.name!,
      ns,
    );
    expect(secret.immutable).toBe(true);
    expect(Object.keys(secret.data ?? {})).toEqual(['vm.json']);
    await waitFor(
      'Secret owned by the pod',
      async () => {
        const s = await client.get<KubeObject>('v1', 'Secret', pod.metadata.name!, ns);
        const refs = (s.metadata as { ownerReferences?: { kind: string; uid: string }[] }).ownerReferences ?? [];
        return refs.length === 1 && refs[0].kind === 'Pod' && refs[0].uid === pod.metadata.uid ? true : undefined;
      },
      within,
    );
    const events = await client.list('v1', 'Event', { namespace: ns, fieldSelector: 'involvedObject.name=tenant' });
    expect(events.map((e) => (e as { reason?: string }).reason)).toContain('MetadataNotCopied');
  });

  test('the API server refuses the fields a tenant could widen the pod with', async () => {
    const attacks = [
      'exec probe refused',
      'grpc probe refused',
      'httpGet probe host refused',
      'tcpSocket probe host refused',
      'named tcpSocket probe port refused',
      'masquerade probe port must be listed (no ports)',
      'toleration of every taint refused',
      'nodeSelector kubevisor.io/kvm must be true',
      'containerRootfs size at most 64Gi',
    ];
    for (const name of attacks) {
      const c = BAD_INPUT_CASES.find((x) => x.name === name)!;
      const object = {
        ...structuredClone(c.object),
        metadata: { ...c.object.metadata, namespace: ns, name: 'attack' },
      };
      const error = await client.create(object as unknown as KubeObject).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect({ name, code: error instanceof KubeApiError ? error.code : error }).toEqual({ name, code: 422 });
      refused.push(name);
    }
    // And the namespace really enforces baseline: the privileges the VM pod gave up are refused to any pod.
    const privileged = await client
      .create({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'net-admin', namespace: ns },
        spec: {
          containers: [
            { name: 'c', image: 'example.com/x:1', securityContext: { capabilities: { add: ['NET_ADMIN'] } } },
          ],
        },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(privileged instanceof KubeApiError && privileged.code).toBe(403);
    refused.push('NET_ADMIN pod in the VM namespace');
  });

  test('a pod that takes the VM pod name is reported on the VM (PodNameTaken) and never adopted or touched', async () => {
    // Manual: the VM waits for a restartRequest, so the foreign pod can take the name of its first pod before it starts.
    await createVm('squatted', { runPolicy: 'Manual' });
    const vm = await phase('squatted', 'Stopped');
    const name = vmPodName('squatted', vm.metadata.uid!, { run: 0 });
    const foreign = await client.create<Pod>({
      apiVersion: 'v1',
      kind: 'Pod',
      // The VM's label too: a label alone must not make a pod the VM's.
      metadata: { name, namespace: ns, labels: { 'kubevisor.io/vm': 'squatted', 'kubevisor.io/run': '0' } },
      spec: { containers: [{ name: 'c', image: 'example.com/squatter:1' }] },
    } as unknown as Pod);
    await requestStart('squatted');
    const reported = await waitVm('squatted', 'reporting PodNameTaken', (v) =>
      Boolean(v.status?.conditions?.some((c) => c.type === 'Ready' && c.reason === 'PodNameTaken')),
    );
    expect(reported.status?.conditions?.find((c) => c.type === 'Ready')?.message).toContain(
      `Pod ${ns}/${name} already exists and is not controlled by this VM`,
    );
    // Give the controller time to (wrongly) adopt or delete it, then check the pod is exactly as the tenant left it.
    await new Promise((r) => setTimeout(r, 2_000));
    const after = await client.get<Pod>('v1', 'Pod', name, ns);
    expect(after.metadata.uid).toBe(foreign.metadata.uid);
    expect(after.metadata.deletionTimestamp).toBeUndefined();
    expect((after.metadata as { ownerReferences?: unknown }).ownerReferences).toBeUndefined();
    expect(after.metadata.labels).toEqual(foreign.metadata.labels);
    const events = await client.list('v1', 'Event', { namespace: ns, fieldSelector: 'involvedObject.name=squatted' });
    expect(events.map((e) => (e as { reason?: string }).reason)).toContain('PodNameTaken');
    refused.push('pod of the VM pod name under another owner');
    // Once the name is free the VM starts with a pod of its own.
    await client.delete('v1', 'Pod', name, ns, { gracePeriodSeconds: 0 });
    const started = await scheduledPod('squatted');
    expect(started.pod.metadata.name).toBe(name);
    expect(started.pod.metadata.uid).not.toBe(foreign.metadata.uid);
  });

  test('a pod that names the VM as its controller but is not its pod is refused, never taken for the VM pod', async () => {
    // The tenant's own VM, running; its next pod's name (run 1) is computable.
    await createVm('forged', { runPolicy: 'Always' });
    const { vm, pod: first } = await scheduledPod('forged');
    const name = vmPodName('forged', vm.metadata.uid!, { run: 1 });
    // The pod the controller would make for run 1, as a tenant can render it, with what the node daemon would then
    // trust changed: a disk-backed hot-plug directory, a stand-in for Cloud Hypervisor, a node the tenant picked.
    const forged = renderVmPod(
      { ...vm, metadata: { ...vm.metadata, namespace: ns } } as never,
      { run: 1 },
      {
        image: 'kubevisor:e2e',
      },
    ) as unknown as {
      metadata: { ownerReferences: Record<string, unknown>[] };
      spec: Record<string, unknown> & { volumes: Record<string, unknown>[] };
    };
    // A tenant may not set blockOwnerDeletion (it needs the VM's finalizers); nothing else stops the reference.
    forged.metadata.ownerReferences = forged.metadata.ownerReferences.map(({ blockOwnerDeletion: _b, ...r }) => r);
    forged.spec.volumes = forged.spec.volumes.map((v) =>
      v.name === HOTPLUG_VOLUME ? { name: HOTPLUG_VOLUME, emptyDir: {} } : v,
    );
    const launcher = (forged.spec.containers as Record<string, unknown>[])[0];
    launcher.command = ['/bin/busybox', 'sleep', '3600'];
    forged.spec.nodeName = info.nodeNames[0];
    const created = await client.create<Pod>(forged as unknown as Pod);
    // The VM's pod fails; runPolicy Always starts run 1, whose name the forged pod holds.
    await endPod(first.metadata.name!, 'Failed', 'guest crashed');
    const reported = await waitVm('forged', 'reporting PodNameTaken', (v) =>
      Boolean(v.status?.conditions?.some((c) => c.type === 'Ready' && c.reason === 'PodNameTaken')),
    );
    expect(reported.status?.conditions?.find((c) => c.type === 'Ready')?.message).toContain(
      `Pod ${ns}/${name} already exists and is not controlled by this VM (it names this VM as its controller but is ` +
        `not the pod the VM needs: spec.containers[0].command differs)`,
    );
    // Give the controller time to (wrongly) take it, then check the VM never did: no UID, no node, not Scheduled.
    await new Promise((r) => setTimeout(r, 2_000));
    const later = await getVm('forged');
    expect(later.status).toEqual(expect.objectContaining({ phase: 'Scheduling', vmPodName: name, restarts: 1 }));
    expect(later.status?.vmPodUID).toBeUndefined();
    expect(later.status?.nodeName).toBeUndefined();
    const after = await client.get<Pod>('v1', 'Pod', name, ns);
    expect(after.metadata.uid).toBe(created.metadata.uid);
    expect(after.metadata.deletionTimestamp).toBeUndefined();
    // The VM's Secret, made for a pod that could not be made, is not left for the forged pod to mount.
    expect(await client.tryGet('v1', 'Secret', name, ns)).toBeUndefined();
    refused.push('pod of the VM pod name naming the VM as its controller');
    // Once the name is free the VM starts run 1 with a pod of its own, recorded by UID.
    await client.delete('v1', 'Pod', name, ns, { gracePeriodSeconds: 0 });
    const started = await restarted('forged');
    expect(started.status?.vmPodName).toBe(name);
    const own = await client.get<Pod>('v1', 'Pod', name, ns);
    expect(own.metadata.uid).not.toBe(created.metadata.uid);
    expect(started.status?.vmPodUID).toBe(own.metadata.uid);
  });

  test('the summary line counts only the attacks seen refused in this run', () => {
    expect(admitted).toBe(true);
    expect(refused.length).toBeGreaterThan(0);
    process.stdout.write(`security: baseline admitted, ${refused.length} tenant attacks refused\n`);
  });
});

test("the controller's own pods, as the API server returns them, pass the adoption check", async () => {
  // A namespace like a tenant's: baseline enforced, and a LimitRange that fills in container requests and limits.
  const adopt = `${ns}-adopt`;
  await client.create({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: adopt, labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } },
  });
  try {
    await client.create({
      apiVersion: 'v1',
      kind: 'LimitRange',
      metadata: { name: 'defaults', namespace: adopt },
      spec: {
        limits: [{ type: 'Container', defaultRequest: { cpu: '100m', 'ephemeral-storage': '1Gi' } }],
      },
    });
    const rendered = [
      ...Object.keys(ADOPTION_CASES).map((name) => [name, adoptionPod(name, adopt).pod] as const),
      ['attachment', adoptionAttachmentPod(adopt)] as const,
    ];
    for (const [name, pod] of rendered) {
      const returned = (await client.create(pod as unknown as KubeObject)) as unknown as Record<string, unknown>;
      expect({ name, mismatch: podMismatch(returned, pod) }).toEqual({ name, mismatch: undefined });
      const file = join(AS_RETURNED_DIR, `${name}.json`);
      const copy = stableCopy(JSON.parse(JSON.stringify(returned)) as Record<string, unknown>);
      // The committed copy the unit test checks must still be what this API server returns.
      if (process.env.UPDATE_AS_RETURNED === '1') writeFileSync(file, JSON.stringify(copy, null, 2) + '\n');
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(copy);
    }
  } finally {
    await client.delete('v1', 'Namespace', adopt, undefined, { ignoreNotFound: true });
  }
});

test('the controller serves metrics and health', async () => {
  expect((await controllerGet(controller.port, '/healthz')).status).toBe(200);
  expect((await controllerGet(controller.port, '/readyz')).status).toBe(200);
  const metrics = (await controllerGet(controller.port, '/metrics')).body;
  expect(metrics).toMatch(/kubevisor_reconcile_total\{controller="virtualmachine",result="success"\} \d+/);
  expect(metrics).toMatch(/kubevisor_workqueue_depth\{name="virtualmachine"\} \d+/);
});

function preferNode(node: string): Record<string, unknown> {
  return {
    nodeAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          preference: { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] },
        },
      ],
    },
  };
}
