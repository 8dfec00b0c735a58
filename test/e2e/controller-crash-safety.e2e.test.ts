/**
 * Crash safety: while 100 VMs converge, the controller is SIGKILLed at random moments and restarted. Because every
 * step is idempotent (stable pod names, status written after the pod exists, level-triggered reconcile), the end
 * state must be exact: one pod per VM, the VM's current pod, owned by it — no duplicates, no orphans.
 */
import type { VirtualMachineStatus } from '../../api';
import { renderVirtualMachine } from '../../constructs';
import type { KubeObject } from './harness/kube-client';
import { installControllerIdentity, type ControllerIdentity } from './harness/operator-identity';
import { startController, type ControllerProcess } from './harness/operator-process';
import { sharedControlPlane } from './harness/shared';
import { waitFor } from './harness/wait';
import { installCrds } from './harness/crds';

const VMS = 100;
const MAX_KILLS = 8;
const client = sharedControlPlane();
const ns = `e2e-crash-${Date.now().toString(36)}`;
let controller: ControllerProcess | undefined;
/** The install's controller ServiceAccount and rules: every restarted controller runs with them, not as admin. */
let identity: ControllerIdentity | undefined;

interface Vm extends KubeObject {
  status?: VirtualMachineStatus;
}

beforeAll(async () => {
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await installCrds(client);
  identity = await installControllerIdentity(client, { platformNamespace: `${ns}-system` });
});

afterAll(async () => {
  await controller?.stop();
  await identity?.remove();
  await client.delete('v1', 'Namespace', ns, undefined, { ignoreNotFound: true });
  client.close();
});

test(`crash safety: ${VMS} VMs converge exactly while the controller is killed`, async () => {
  const start = () =>
    startController(identity!.kubeconfigPath, [...identity!.args, '--namespace', ns, '--workers', '16']);
  controller = await start();
  const names = Array.from({ length: VMS }, (_, i) => `crash-${i}`);
  for (let i = 0; i < names.length; i += 20) {
    await Promise.all(
      names.slice(i, i + 20).map((name) =>
        client.create(
          renderVirtualMachine(name, {
            metadata: { name, namespace: ns },
            runPolicy: 'Always',
            disks: [{ name: 'root' }],
            volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1' } }],
          }) as unknown as KubeObject,
        ),
      ),
    );
  }

  const scheduled = async () =>
    (await client.list<Vm>('kubevisor.io/v1alpha1', 'VirtualMachine', { namespace: ns })).filter(
      (v) => v.status?.phase === 'Scheduled',
    ).length;
  let kills = 0;
  // Kill at random moments while the VMs converge (0.2–1.2 s apart, so each controller gets a little work done).
  while (kills < MAX_KILLS && (await scheduled()) < VMS) {
    await new Promise((r) => setTimeout(r, 200 + Math.random() * 1000));
    controller.kill('SIGKILL');
    await controller.exited;
    kills++;
    controller = await start();
  }

  await waitFor(`${VMS} VMs Scheduled`, async () => ((await scheduled()) === VMS ? true : undefined), {
    timeoutMs: 180_000,
    intervalMs: 500,
  });
  // Let the controller settle (pod GC of anything left over), then count.
  await new Promise((r) => setTimeout(r, 3_000));

  const vms = await client.list<Vm>('kubevisor.io/v1alpha1', 'VirtualMachine', { namespace: ns });
  const pods = (await client.list('v1', 'Pod', { namespace: ns, labelSelector: 'kubevisor.io/vm' })).filter(
    (p) => !p.metadata.deletionTimestamp,
  );
  const byVm = new Map<string, KubeObject[]>();
  for (const p of pods)
    byVm.set(p.metadata.labels!['kubevisor.io/vm'], [...(byVm.get(p.metadata.labels!['kubevisor.io/vm']) ?? []), p]);
  const duplicates = [...byVm.values()].filter((ps) => ps.length > 1).length;
  const vmByName = new Map(vms.map((v) => [v.metadata.name, v]));
  const orphans = pods.filter((p) => {
    const vm = vmByName.get(p.metadata.labels!['kubevisor.io/vm']);
    const owner = (p.metadata.ownerReferences as { uid: string }[] | undefined)?.[0];
    return !vm || vm.status?.vmPodName !== p.metadata.name || owner?.uid !== vm.metadata.uid;
  }).length;
  process.stdout.write(`crash-safety: ${VMS} VMs, ${kills} kills, ${duplicates} duplicates, ${orphans} orphans\n`);

  expect(kills).toBeGreaterThan(0);
  expect(vms).toHaveLength(VMS);
  expect(vms.every((v) => v.status?.phase === 'Scheduled')).toBe(true);
  // A crash is not a VM failure: no VM may have been restarted because the controller was.
  expect(vms.filter((v) => (v.status?.restarts ?? 0) !== 0).map((v) => v.metadata.name)).toEqual([]);
  expect(pods).toHaveLength(VMS);
  expect(duplicates).toBe(0);
  expect(orphans).toBe(0);
});
