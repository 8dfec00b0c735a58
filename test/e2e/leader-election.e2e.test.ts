/**
 * Leader election: two controllers share a Lease; only the holder reconciles. SIGKILL of the leader (no release)
 * hands over once the Lease expires — within 20 s with the defaults (15 s lease, 2 s retry).
 */
import type { VirtualMachineStatus } from '../../api';
import { renderVirtualMachine } from '../../constructs';
import type { KubeObject } from './harness/kube-client';
import { installControllerIdentity, type ControllerIdentity } from './harness/operator-identity';
import { startController, type ControllerProcess } from './harness/operator-process';
import { sharedControlPlane } from './harness/shared';
import { waitFor } from './harness/wait';
import { installCrds } from './harness/crds';

const client = sharedControlPlane();
const ns = `e2e-leader-${Date.now().toString(36)}`;
/**
 * The controllers' identity: the install's ServiceAccount and rules. As in an install, the Lease is in the namespace
 * that plays kubevisor-system, apart from the VMs' namespace.
 */
let identity: ControllerIdentity | undefined;
const leaseNamespace = `${ns}-system`;
const controllers: ControllerProcess[] = [];
/** The leader after the first test's failover. */
let survivor: ControllerProcess | undefined;

interface Lease extends KubeObject {
  spec?: { holderIdentity?: string };
}

const holder = async () =>
  (await client.tryGet<Lease>('coordination.k8s.io/v1', 'Lease', 'kubevisor-controller', leaseNamespace))?.spec
    ?.holderIdentity;
const startedWork = (c: ControllerProcess) => c.lines().some((l) => l.includes('caches synced; starting workers'));

async function vmScheduled(name: string): Promise<void> {
  await client.create(
    renderVirtualMachine(name, {
      metadata: { name, namespace: ns },
      disks: [{ name: 'root' }],
      volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1' } }],
    }) as unknown as KubeObject,
  );
  await waitFor(
    `VM ${name} Scheduled`,
    async () =>
      (
        await client.get<KubeObject & { status?: VirtualMachineStatus }>(
          'kubevisor.io/v1alpha1',
          'VirtualMachine',
          name,
          ns,
        )
      ).status?.phase === 'Scheduled'
        ? true
        : undefined,
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}

beforeAll(async () => {
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await installCrds(client);
  identity = await installControllerIdentity(client, { platformNamespace: leaseNamespace });
});
const start = () => startController(identity!.kubeconfigPath, ['--namespace', ns, '--leader-elect', ...identity!.args]);

afterAll(async () => {
  await Promise.all(controllers.map((c) => c.stop()));
  await identity?.remove();
  await client.delete('v1', 'Namespace', ns, undefined, { ignoreNotFound: true });
  client.close();
});

test('two controllers: one leads and reconciles; killing it hands over within 20 s', async () => {
  controllers.push(await start(), await start());
  const id = (c: ControllerProcess) => `-${c.pid}`;
  const first = await waitFor('a leader', async () => (await holder()) || undefined, {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  const leader = controllers.find((c) => first.endsWith(id(c)))!;
  const standby = controllers.find((c) => c !== leader)!;
  expect(leader).toBeDefined();

  await vmScheduled('before-failover');
  expect(startedWork(leader)).toBe(true);
  expect(startedWork(standby)).toBe(false);

  const killedAt = Date.now();
  leader.kill('SIGKILL');
  await leader.exited;
  await waitFor(
    'the standby to take the lease',
    async () => ((await holder())?.endsWith(id(standby)) ? true : undefined),
    {
      timeoutMs: 30_000,
      intervalMs: 100,
    },
  );
  const handoverMs = Date.now() - killedAt;
  process.stdout.write(`leader-election: handover in ${handoverMs} ms\n`);
  expect(handoverMs).toBeLessThanOrEqual(20_000);

  await vmScheduled('after-failover');
  expect(startedWork(standby)).toBe(true);
  survivor = standby;
});

test('a leader stopped gracefully releases the lease at once', async () => {
  const current = survivor!;
  expect(current).toBeDefined();
  const next = await start();
  controllers.push(next);
  await current.stop();
  await waitFor(
    'the new controller to take the released lease',
    async () => ((await holder())?.endsWith(`-${next.pid}`) ? true : undefined),
    {
      timeoutMs: 10_000,
      intervalMs: 100,
    },
  );
});
