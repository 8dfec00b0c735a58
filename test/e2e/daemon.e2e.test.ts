/**
 * The node daemon on the real control plane: one `kubevisor daemon` process per KWOK node, each with its own kubelet
 * pod directory, and every VM pod's Cloud Hypervisor played by the spec-validating stand-in (harness/kubelet-standin.ts
 * plays the kubelet's part). The controller runs too (as the install's controller ServiceAccount, with exactly its
 * rules), so the whole VM lifecycle is exercised: boot, truthful status
 * (Running, Paused, Ready, the guest's address), power exactly once, a daemon restart that repeats nothing, how a
 * guest ends (power-off, crash, refused boot), graceful and hard stops.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RunPolicy, VirtualMachineStatus } from '../../api';
import type { VirtualMachineProps } from '../../constructs';
import { renderVirtualMachine } from '../../constructs';
import type { StandinRequestRecord } from '../standins/cloud-hypervisor-standin';
import { installCrds } from './harness/crds';
import type { KubeObject } from './harness/kube-client';
import { mountsBelow } from '../../operator/daemon/mounts';
import { startController, type OperatorProcess } from './harness/operator-process';
import { startDaemon, startVmNodes, stopVmNodes, type VmNode } from './harness/vm-nodes';
import { sharedControlPlane, sharedControlPlaneInfo } from './harness/shared';
import { waitFor } from './harness/wait';
import { installControllerIdentity, type ControllerIdentity } from './harness/operator-identity';
import { DAEMON_NAMESPACE, installDaemonIdentity, type DaemonIdentityInstall } from './harness/node-identity';

const client = sharedControlPlane();
const info = sharedControlPlaneInfo();
const ns = `e2e-daemon-${Date.now().toString(36)}`;
const within = { timeoutMs: 60_000, intervalMs: 100 };
const root = mkdtempSync(path.join(tmpdir(), 'kubevisor-e2e-nodes-'));

interface Vm extends KubeObject {
  spec: Record<string, unknown>;
  status?: VirtualMachineStatus;
}

type Node = VmNode;
let daemonIdentity: DaemonIdentityInstall;
/**
 * The controller's: the install's ServiceAccount and rules, in kubevisor-system, where its migration signer keeps the
 * CA the daemons' certificates come from.
 */
let controllerIdentity: ControllerIdentity | undefined;
const nodes: Node[] = [];
let controller: OperatorProcess;

/** Power calls that change a guest's state; what "applied once" counts. */
const POWER = ['vm.boot', 'vm.pause', 'vm.resume', 'vm.reboot', 'vm.power-button', 'vmm.shutdown'];
const powerCalls = (requests: readonly StandinRequestRecord[]) =>
  requests
    .filter((r) => r.status < 300 && POWER.some((p) => r.path.endsWith(`/${p}`)))
    .map((r) => r.path.split('/').pop());
const count = (requests: readonly StandinRequestRecord[], endpoint: string) =>
  requests.filter((r) => r.path.endsWith(`/${endpoint}`) && r.status < 300).length;

const props = (extra: VirtualMachineProps = {}): VirtualMachineProps => ({
  runPolicy: 'Once',
  disks: [{ name: 'root' }],
  volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1' } }],
  interfaces: [{ name: 'pod', masquerade: { ports: [{ port: 80 }] } }],
  networks: [{ name: 'pod', pod: {} }],
  ...extra,
});

/** A claim bound to a PersistentVolume of its own (KWOK mounts nothing; the kubelet stand-in makes its files). */
async function createClaim(name: string, accessMode = 'ReadWriteMany'): Promise<void> {
  await client.create({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `${ns}-${name}` },
    spec: {
      capacity: { storage: '1Gi' },
      accessModes: [accessMode],
      storageClassName: '',
      hostPath: { path: '/nonexistent/kubevisor-e2e' },
      persistentVolumeReclaimPolicy: 'Retain',
      claimRef: { namespace: ns, name },
    },
  });
  await client.create({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: ns },
    spec: {
      accessModes: [accessMode],
      storageClassName: '',
      volumeName: `${ns}-${name}`,
      resources: { requests: { storage: '1Gi' } },
    },
  });
}

/** A VM that can live-migrate: its disk on a shared claim, masquerade on the pod network. */
const migratable = (claim: string, extra: VirtualMachineProps = {}): VirtualMachineProps => ({
  volumes: [{ name: 'root', persistentVolumeClaim: { claimName: claim } }],
  ...extra,
});

async function createVm(name: string, extra: VirtualMachineProps = {}): Promise<void> {
  const o = renderVirtualMachine(name, props({ ...extra, metadata: { name, namespace: ns } }));
  await client.create(o as unknown as KubeObject);
}
const getVm = (name: string) => client.get<Vm>('kubevisor.io/v1alpha1', 'VirtualMachine', name, ns);
async function patchSpec(name: string, spec: Record<string, unknown>): Promise<void> {
  await client.request('PATCH', `/apis/kubevisor.io/v1alpha1/namespaces/${ns}/virtualmachines/${name}`, {
    contentType: 'application/merge-patch+json',
    body: { spec },
  });
}

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
    const logs = nodes
      .map(
        (n) => `${n.name}: ${n.daemon.lines().slice(-8).join('\n')}\nkubelet stand-in: ${n.kubelet.errors.join('\n')}`,
      )
      .join('\n');
    throw new Error(
      `${(e as Error).message}\nlast status: ${JSON.stringify(last?.status)}\nevents: ${reasons.join(' | ')}\ndaemon logs:\n${logs}`,
    );
  }
}
const ready = (vm: Vm) => vm.status?.conditions?.find((c) => c.type === 'Ready');
const running = (name: string) =>
  waitVm(name, 'Running and Ready', (v) => v.status?.phase === 'Running' && ready(v)?.status === 'True');

/** The kubelet stand-in and CH stand-in of the VM's current pod. */
function vmPod(vm: Vm) {
  const podName = vm.status?.vmPodName ?? '';
  for (const n of nodes) {
    const p = n.kubelet.pod(podName);
    if (p?.standin) return { node: n, pod: p, standin: p.standin };
  }
  throw new Error(`no node runs pod ${podName} of VM ${vm.metadata.name}`);
}

/** What the summary line reports: VMs that reached Running, CH power calls made (each asserted once), repeats. */
const tally = { running: new Set<string>(), applied: 0, repeatedAfterRestart: 0 };

beforeAll(async () => {
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await installCrds(client);
  daemonIdentity = await installDaemonIdentity(client);
  controllerIdentity = await installControllerIdentity(client, { platformNamespace: DAEMON_NAMESPACE });
  controller = await startController(controllerIdentity.kubeconfigPath, [
    ...controllerIdentity.args,
    '--namespace',
    ns,
  ]);
  await startVmNodes(client, info, root, nodes);
});

afterAll(async () => {
  for (const pv of ['data', 'long', 'mig']) {
    await client.delete('v1', 'PersistentVolume', `${ns}-${pv}`, undefined, { ignoreNotFound: true });
  }
  tally.applied = nodes.reduce(
    (sum, n) =>
      sum +
      n.kubelet.history
        .filter((p) => p.pod.metadata.namespace === ns)
        .reduce((s, p) => s + powerCalls(p.standin?.requests ?? []).length, 0),
    0,
  );
  await Promise.all(nodes.map((n) => n.daemon.stop()));
  await controller?.stop();
  await stopVmNodes(nodes);
  // In the reverse order of their install: the daemon's removes kubevisor-system if it made it.
  await controllerIdentity?.remove();
  await daemonIdentity?.remove();
  await client.delete('v1', 'Namespace', ns, undefined, { ignoreNotFound: true });
  client.close();
  // Nothing the daemons mounted may outlive the test (a leftover mount would also make rmSync delete through it).
  const left = mountsBelow(root);
  if (left.length === 0) rmSync(root, { recursive: true, force: true });
  expect(left).toEqual([]);
  // Nor a pod network namespace the kubelet stand-in made.
  expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toMatch(/kv-e2e-/);
  process.stdout.write(
    `daemon: ${tally.running.size} VMs Running, ${tally.applied} power requests applied once, ${tally.repeatedAfterRestart} repeated after daemon restart\n`,
  );
});

// The longest name the CRD accepts: its pods must still get distinct names per run.
const LONG = `long-${'n'.repeat(57)}9`;

test("each daemon registers the KVM and TUN device plugins with its node's kubelet", async () => {
  for (const n of nodes) {
    for (const resource of ['devices.kubevisor.io/kvm', 'devices.kubevisor.io/tun']) {
      const r = await n.registration.waitForRegistration(resource);
      expect(r.request.version).toBe('v1beta1');
    }
  }
});

describe('boot', () => {
  test.each(['boot-a', LONG])(
    '%s: created and booted once, Running and Ready, with the guest address',
    async (name) => {
      // The longest name must also restart and migrate: its disk is on a claim, so it can.
      if (name === LONG) await createClaim('long');
      await createVm(name, name === LONG ? migratable('long', { runPolicy: 'Always' }) : {});
      const vm = await running(name);
      expect(vm.status?.guest).toEqual(expect.objectContaining({ podName: vm.status?.vmPodName, reboots: 0 }));
      // Masquerade: the guest holds the second address of the private network, as its DHCP lease says.
      await waitVm(name, 'reports the guest IP', (v) => v.status?.interfaces?.[0]?.ipAddresses?.[0] === '10.0.2.2');
      const { standin } = vmPod(vm);
      expect(count(standin.requests, 'vm.create')).toBe(1);
      expect(count(standin.requests, 'vm.boot')).toBe(1);
      expect(standin.state().vm).toBe('Running');
      tally.running.add(name);
    },
  );
});

test("the daemon prepares a VM pod's network from outside, in the namespace it finds by the pod's cgroup", async () => {
  for (const n of nodes) n.kubelet.guest('netns-vm', { realNetwork: true });
  await createVm('netns-vm');
  const vm = await running('netns-vm');
  const { pod, standin } = vmPod(vm);
  const netns = pod.netns ?? '';
  const inPod = (...argv: string[]) => execFileSync('ip', ['netns', 'exec', netns, ...argv], { encoding: 'utf8' });
  // What the pod could not do itself (it holds no NET_ADMIN): bridge and TAP, forwarding, the guest's rules.
  expect(inPod('ip', '-o', 'link', 'show', 'tap-eth0')).toContain('master br-eth0');
  expect(inPod('sysctl', '-n', 'net.ipv4.ip_forward').trim()).toBe('1');
  expect(inPod('nft', 'list', 'tables')).toMatch(
    /table bridge kubevisor[\s\S]*table ip kubevisor|table ip kubevisor[\s\S]*table bridge kubevisor/,
  );
  // The launcher built the VmConfig from the daemon's answer: CH opens the daemon's TAP.
  expect(standin.state().config?.net?.[0]).toEqual(expect.objectContaining({ tap: 'tap-eth0' }));
  tally.running.add('netns-vm');
});

describe('power', () => {
  test('pause and resume follow spec.power.paused, each applied once', async () => {
    await patchSpec('boot-a', { power: { paused: true } });
    let vm = await waitVm('boot-a', 'Paused', (v) => v.status?.phase === 'Paused');
    expect(ready(vm)).toEqual(expect.objectContaining({ status: 'False', reason: 'Paused' }));
    const { standin } = vmPod(vm);
    expect(standin.state().vm).toBe('Paused');
    await patchSpec('boot-a', { power: { paused: false } });
    vm = await running('boot-a');
    expect(count(standin.requests, 'vm.pause')).toBe(1);
    expect(count(standin.requests, 'vm.resume')).toBe(1);
  });

  test('a restartRequest reboots the running guest once', async () => {
    await patchSpec('boot-a', { power: { restartRequest: 'r1' } });
    const vm = await waitVm(
      'boot-a',
      'rebooted for r1',
      (v) => v.status?.observedRestartRequest === 'r1' && v.status.guest?.reboots === 1,
    );
    const { standin } = vmPod(vm);
    expect(count(standin.requests, 'vm.reboot')).toBe(1);
    // The same pod: a reboot is not a restart of the VM.
    expect(vm.status?.restarts ?? 0).toBe(0);
  });

  test('a restarted daemon repeats nothing, and acts on what comes next', async () => {
    // This test's pods only: pods of namespaces that earlier test files are deleting may still be stopping.
    const ours = (n: Node) => n.kubelet.pods().filter((p) => p.pod.metadata.namespace === ns);
    const before = nodes.flatMap((n) =>
      ours(n).map((p) => [p.pod.metadata.name, powerCalls(p.standin?.requests ?? [])]),
    );

    for (const n of nodes) {
      n.daemon.kill('SIGKILL');
      await n.daemon.exited;
      n.daemon = await startDaemon(n);
    }
    // A change after the restart is acted on: so the new daemons have looked at every pod by then.
    await patchSpec(LONG, { power: { paused: true } });
    await waitVm(LONG, 'Paused', (v) => v.status?.phase === 'Paused');
    const after = new Map(
      nodes.flatMap((n) => ours(n).map((p) => [p.pod.metadata.name, powerCalls(p.standin?.requests ?? [])])),
    );
    const long = (await getVm(LONG)).status?.vmPodName ?? '';
    for (const [pod, calls] of before as [string, string[]][]) {
      const now = after.get(pod) ?? [];
      const expected = pod === long ? [...calls, 'vm.pause'] : calls;
      tally.repeatedAfterRestart += Math.max(0, now.length - expected.length);
      expect(now).toEqual(expected);
    }
    await patchSpec(LONG, { power: { paused: false } });
    await running(LONG);
  });
});

describe('how a guest ends', () => {
  test('a guest that powers itself off ends Succeeded', async () => {
    await createVm('poweroff');
    const vm = await running('poweroff');
    vmPod(vm).standin.guest.powerOff();
    const done = await waitVm('poweroff', 'Succeeded', (v) => v.status?.phase === 'Succeeded');
    expect(done.status?.guest).toEqual(expect.objectContaining({ exitReason: 'PoweredOff' }));
    expect(ready(done)).toEqual(expect.objectContaining({ reason: 'GuestPoweredOff' }));
    tally.running.add('poweroff');
  });

  test("a crashed guest ends Failed with Cloud Hypervisor's words, though CH exits 0", async () => {
    await createVm('crash');
    const vm = await running('crash');
    vmPod(vm).standin.guest.crash();
    const done = await waitVm('crash', 'Failed', (v) => v.status?.phase === 'Failed');
    expect(done.status?.guest).toEqual(expect.objectContaining({ exitReason: 'Crashed' }));
    expect(ready(done)?.message).toMatch(/VCPU generated error/);
    tally.running.add('crash');
  });

  test('a boot Cloud Hypervisor refuses ends Failed (BootFailed) with its answer', async () => {
    for (const n of nodes) n.kubelet.guest('noboot', { missingDisk: '/mnt/root/disk.raw' });
    await createVm('noboot');
    const done = await waitVm('noboot', 'Failed', (v) => v.status?.phase === 'Failed');
    expect(done.status?.guest).toEqual(expect.objectContaining({ exitReason: 'BootFailed' }));
    expect(done.status?.guest?.exitMessage).toMatch(/vm\.boot → 500/);
  });
});

describe('hot-plug', () => {
  test('a hotpluggable volume added to a running VM is attached, removed again detached, and no mount is left', async () => {
    await createClaim('data', 'ReadWriteOnce');
    await createVm('hp');
    const vm = await running('hp');
    const { standin, node } = vmPod(vm);
    const base = props();
    await patchSpec('hp', {
      instance: { disks: [...base.disks!, { name: 'data' }] },
      volumes: [...base.volumes!, { name: 'data', persistentVolumeClaim: { claimName: 'data', hotpluggable: true } }],
    });
    await waitVm(
      'hp',
      'data Attached',
      (v) => v.status?.hotplugVolumes?.some((x) => x.name === 'data' && x.phase === 'Attached') ?? false,
    );
    const disk = standin.state().config?.disks?.find((d) => d.id === 'hotplug-data');
    expect(disk).toEqual(
      expect.objectContaining({ path: '/var/run/kubevisor-hotplug/data/disk.img', image_type: 'Raw' }),
    );
    const podDir = path.join(node.kubelet.kubeletRoot, 'pods', vm.status?.vmPodUID ?? '');
    expect(mountsBelow(podDir)).toHaveLength(1);

    await patchSpec('hp', { instance: { disks: base.disks }, volumes: base.volumes });
    await waitVm('hp', 'data detached', (v) => !(v.status?.hotplugVolumes ?? []).some((x) => x.name === 'data'));
    expect(standin.state().config?.disks?.some((d) => d.id === 'hotplug-data')).toBe(false);
    expect(count(standin.requests, 'vm.add-disk')).toBe(1);
    expect(count(standin.requests, 'vm.remove-device')).toBe(1);
    expect(mountsBelow(podDir)).toEqual([]);
    await waitFor(
      'the attachment pod to go',
      async () =>
        (await client.list('v1', 'Pod', { namespace: ns, labelSelector: 'kubevisor.io/hotplug-vm=hp' })).length === 0
          ? true
          : undefined,
      within,
    );
    tally.running.add('hp');
  });

  test('a VM stopped with a volume still attached leaves no mount behind', async () => {
    const base = props();
    await patchSpec('hp', {
      instance: { disks: [...base.disks!, { name: 'data' }] },
      volumes: [...base.volumes!, { name: 'data', persistentVolumeClaim: { claimName: 'data', hotpluggable: true } }],
    });
    const vm = await waitVm(
      'hp',
      'data Attached again',
      (v) => v.status?.hotplugVolumes?.some((x) => x.name === 'data' && x.phase === 'Attached') ?? false,
    );
    const { node, pod } = vmPod(vm);
    const podDir = path.join(node.kubelet.kubeletRoot, 'pods', vm.status?.vmPodUID ?? '');
    expect(mountsBelow(podDir)).toHaveLength(1);
    await patchSpec('hp', { runPolicy: 'Halted' });
    await waitVm('hp', 'Stopped', (v) => v.status?.phase === 'Stopped');
    await waitFor(`${pod.pod.metadata.name}'s CH to exit`, async () => (pod.exit ? true : undefined), within);
    await waitFor(
      'the hot-plug mount to be released',
      async () => (mountsBelow(podDir).length === 0 ? true : undefined),
      within,
    );
  });
});

describe('live migration', () => {
  /** The CH stand-ins (of this test) whose guest runs now, with the node they run on. */
  const runningGuests = (vm: string) =>
    nodes.flatMap((n) =>
      n.kubelet.history
        .filter((p) => p.pod.metadata.namespace === ns && p.pod.metadata.labels?.['kubevisor.io/vm'] === vm)
        .filter((p) => !p.exit && ['Running', 'Paused'].includes(p.standin?.state().vm ?? ''))
        .map((p) => ({ node: n.name, pod: p.pod.metadata.name })),
    );
  const migrate = async (name: string, vm: string) => {
    await client.create({
      apiVersion: 'kubevisor.io/v1alpha1',
      kind: 'VirtualMachineMigration',
      metadata: { name, namespace: ns },
      spec: { vmName: vm, timeoutSeconds: 120 },
    });
  };
  const getMigration = (name: string) =>
    client.get<KubeObject & { status?: { phase?: string; conditions?: { message?: string }[] } }>(
      'kubevisor.io/v1alpha1',
      'VirtualMachineMigration',
      name,
      ns,
    );
  const migrationPhase = async (name: string, phase: string) => {
    try {
      await waitFor(
        `migration ${name} ${phase}`,
        async () => ((await getMigration(name)).status?.phase === phase ? true : undefined),
        within,
      );
    } catch (e) {
      const m = await getMigration(name);
      const logs = nodes.map((n) => `${n.name}: ${n.daemon.lines().slice(-6).join('\n')}`).join('\n');
      throw new Error(`${(e as Error).message}\nmigration status: ${JSON.stringify(m.status)}\n${logs}`);
    }
  };

  test(`the ${LONG.length}-character VM restarts with a new pod name, then migrates to the other node`, async () => {
    const before = await running(LONG);
    vmPod(before).standin.guest.powerOff();
    // runPolicy Always: a new run, in a pod of its own name.
    const after = await waitVm(LONG, 'restarted', (v) => v.status?.restarts === 1 && v.status.phase === 'Running');
    const start = Date.now();
    await migrate('long-move', LONG);
    await migrationPhase('long-move', 'Succeeded');
    const took = Date.now() - start;
    const moved = await running(LONG);
    const names = [before.status?.vmPodName, after.status?.vmPodName, moved.status?.vmPodName];
    expect(new Set(names).size).toBe(3);
    for (const n of names) expect(n!.length).toBeLessThanOrEqual(63);
    expect(moved.status?.nodeName).not.toBe(after.status?.nodeName);
    expect(runningGuests(LONG)).toEqual([{ node: moved.status?.nodeName, pod: moved.status?.vmPodName }]);
    await waitFor(
      'the source pod to go',
      async () => ((await client.tryGet('v1', 'Pod', after.status!.vmPodName!, ns)) ? undefined : true),
      within,
    );
    process.stdout.write(
      `migration: Succeeded in ${took} ms, ${runningGuests(LONG).length} running VM, source pod gone\n`,
    );
  });

  test('a source daemon killed mid-transfer fails the migration, and exactly one guest runs — on the source', async () => {
    await createClaim('mig');
    // 64 MiB/s: the 1 GiB guest takes 16 s to move, time enough to kill the daemon in the middle.
    for (const n of nodes) n.kubelet.guest('mig', { migrationBytesPerSecond: 64 * 1024 * 1024 });
    await createVm('mig', migratable('mig'));
    const vm = await running('mig');
    const source = nodes.find((n) => n.name === vm.status?.nodeName)!;
    await migrate('mig-kill', 'mig');
    await migrationPhase('mig-kill', 'Running');
    source.daemon.kill('SIGKILL');
    await source.daemon.exited;
    source.daemon = await startDaemon(source);
    await migrationPhase('mig-kill', 'Failed');
    const failed = await getMigration('mig-kill');
    expect(failed.status?.conditions?.[0]?.message).toMatch(/restarted|stream|Cloud Hypervisor/);
    const vmAfter = await running('mig');
    expect(vmAfter.status?.vmPodName).toBe(vm.status?.vmPodName);
    expect(vmAfter.status?.nodeName).toBe(source.name);
    await waitFor(
      'the receiving pod to go',
      async () => {
        const pods = await client.list('v1', 'Pod', { namespace: ns, labelSelector: 'kubevisor.io/vm=mig' });
        return pods.length === 1 ? true : undefined;
      },
      within,
    );
    expect(runningGuests('mig')).toEqual([{ node: source.name, pod: vm.status?.vmPodName }]);
    // The VM is whole: a new migration goes through.
    await migrate('mig-again', 'mig');
    await migrationPhase('mig-again', 'Succeeded');
    expect(runningGuests('mig')).toHaveLength(1);
    tally.running.add('mig');
  });

  test.each<[string, (name: string) => Promise<void>, number]>([
    [
      'deleting it (cancel)',
      async (name) => client.delete('kubevisor.io/v1alpha1', 'VirtualMachineMigration', name, ns),
      120,
    ],
    ['its timeoutSeconds', async () => undefined, 3],
  ])(
    'a migration ended by %s mid-transfer leaves the guest running on its source only',
    async (_how, end, timeoutSeconds) => {
      const vm = await running('mig');
      const name = `mig-end-${timeoutSeconds}`;
      await client.create({
        apiVersion: 'kubevisor.io/v1alpha1',
        kind: 'VirtualMachineMigration',
        metadata: { name, namespace: ns },
        spec: { vmName: 'mig', timeoutSeconds },
      });
      await migrationPhase(name, 'Running');
      await end(name);
      await waitFor(
        `migration ${name} to end`,
        async () => {
          const m = await client.tryGet<KubeObject & { status?: { phase?: string } }>(
            'kubevisor.io/v1alpha1',
            'VirtualMachineMigration',
            name,
            ns,
          );
          return !m || m.status?.phase === 'Failed' ? true : undefined;
        },
        within,
      );
      await waitFor(
        'the receiving pod to go',
        async () => {
          const pods = await client.list('v1', 'Pod', { namespace: ns, labelSelector: 'kubevisor.io/vm=mig' });
          return pods.length === 1 ? true : undefined;
        },
        within,
      );
      const after = await running('mig');
      expect(after.status?.vmPodName).toBe(vm.status?.vmPodName);
      expect(after.status?.migration).toBeUndefined();
      // The source's CH saw its stream break and went on running the guest.
      await waitFor(
        'the source to report the broken transfer',
        async () => (vmPod(after).standin.events.some((e) => e.event === 'migration-failed') ? true : undefined),
        within,
      );
      expect(runningGuests('mig')).toEqual([{ node: after.status?.nodeName, pod: after.status?.vmPodName }]);
    },
  );
});

describe('stopping', () => {
  test.each<[string, 'poweroff' | 'ignore', string[]]>([
    ['halt-acpi', 'poweroff', ['vm.power-button']],
    ['halt-hard', 'ignore', ['vm.power-button', 'vmm.shutdown']],
  ])(
    '%s: runPolicy Halted presses the power button once, a deaf guest is stopped after the grace period',
    async (name, button, calls) => {
      for (const n of nodes) n.kubelet.guest(name, { powerButton: button });
      await createVm(name, { power: { shutdownGracePeriodSeconds: 2 } });
      const vm = await running(name);
      const { standin, pod } = vmPod(vm);
      const haltedAt = Date.now();
      await patchSpec(name, { runPolicy: 'Halted' satisfies RunPolicy });
      await waitVm(name, 'Stopped', (v) => v.status?.phase === 'Stopped');
      await waitFor(`${name}'s CH to exit`, async () => (pod.exit ? true : undefined), within);
      const stops = powerCalls(standin.requests).filter((c) => c !== 'vm.boot');
      expect(stops).toEqual(calls);
      if (button === 'ignore') {
        const hard = standin.requests.find((r) => r.path.endsWith('/vmm.shutdown'));
        expect(hard).toBeDefined();
        expect(Date.now() - haltedAt).toBeGreaterThanOrEqual(2_000);
      }
      tally.running.add(name);
    },
  );
});
