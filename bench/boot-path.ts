/**
 * `npm run bench:boot-path -- --vms 50 --nodes 4`: how fast the node daemon answers a VM pod that starts running.
 * A real control plane with KWOK nodes, the controller and one node daemon per node as their own processes (compiled,
 * as in the operator image), and per node the kubelet stand-in of the e2e suite, whose CH stand-in notes when vm.boot
 * arrives. All VMs are created at once. For each VM pod it measures from the moment this process's watch first sees
 * the pod Running (KWOK marks it so as soon as it is bound; a real kubelet once its containers started) to the
 * moment its CH receives vm.boot — which spans the launcher's marker, CH's socket, the daemon's reaction, vm.create
 * and vm.boot. Virtink polls every 15 s. Progress goes to stderr; the last line on stdout is one JSON object:
 * {"vms","nodes","pod_running_to_boot_p50_ms","pod_running_to_boot_p95_ms","pod_running_to_boot_p99_ms",
 *  "pod_running_to_boot_max_ms","vm_create_to_running_p50_ms","vm_create_to_running_p95_ms"}.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { VirtualMachineStatus } from '../api';
import { renderVirtualMachine } from '../constructs';
import type { KubeObject } from '../operator/kube';
import { Informer, KubeClient, loadKubeconfig } from '../operator/kube';
import { VM_LABEL } from '../operator/pod-layout';
import { startControlPlane } from '../test/e2e/harness/control-plane';
import { installCrds } from '../test/e2e/harness/crds';
import { KubeletStandin } from '../test/e2e/harness/kubelet-standin';
import { startController, startOperatorProcess, type OperatorProcess } from '../test/e2e/harness/operator-process';
import { waitFor } from '../test/e2e/harness/wait';

const { values } = parseArgs({
  options: {
    vms: { type: 'string', default: '50' },
    nodes: { type: 'string', default: '4' },
    'timeout-s': { type: 'string', default: '300' },
  },
});
const vms = Number(values.vms);
const nodeCount = Number(values.nodes);
if (!(vms > 0) || !(nodeCount > 0)) throw new Error('--vms and --nodes must be positive integers');
const progress = (line: string) => process.stderr.write(`bench:boot-path: ${line}\n`);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main(): Promise<void> {
  const started = Date.now();
  const root = mkdtempSync(join(tmpdir(), 'kubevisor-bench-boot-'));
  progress(`starting a control plane with ${nodeCount} KWOK nodes`);
  const cp = await startControlPlane({ nodes: nodeCount, log: progress });
  const client = new KubeClient(loadKubeconfig(cp.kubeconfigPath));
  const processes: OperatorProcess[] = [];
  const kubelets: KubeletStandin[] = [];
  try {
    const ns = 'boot-path';
    await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await installCrds(client);
    progress('building lib/ (npm run build)');
    execFileSync(
      process.execPath,
      [join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: join(__dirname, '..'),
        stdio: 'inherit',
      },
    );
    processes.push(await startController(cp.kubeconfigPath, ['--namespace', ns], { compiled: true }));
    for (const node of cp.nodeNames) {
      const kubelet = new KubeletStandin({ client, nodeName: node, root: join(root, node) });
      await kubelet.start();
      kubelets.push(kubelet);
      processes.push(
        await startOperatorProcess(
          'daemon',
          [
            ...['--node-name', node, '--kubeconfig', cp.kubeconfigPath, '--metrics-port', '0'],
            ...['--kubelet-root', kubelet.kubeletRoot, '--pod-logs-dir', kubelet.podLogsDir],
            ...['--device-plugin-dir', join(root, node, 'device-plugins')],
          ],
          { compiled: true },
        ),
      );
    }

    // When this process first sees each VM pod Running.
    const podRunningAt = new Map<string, number>();
    type Pod = KubeObject & { status?: { phase?: string } };
    const pods = new Informer<Pod>({ client, path: `/api/v1/namespaces/${ns}/pods`, labelSelector: VM_LABEL });
    const seen = (p: Pod) => {
      const name = p.metadata.name ?? '';
      if (p.status?.phase === 'Running' && !podRunningAt.has(name)) podRunningAt.set(name, Date.now());
    };
    pods.onAdd(seen);
    pods.onUpdate((_o, p) => seen(p));
    type Vm = KubeObject & { status?: VirtualMachineStatus };
    const vmRunningAt = new Map<string, number>();
    const vmsInformer = new Informer<Vm>({
      client,
      path: `/apis/kubevisor.io/v1alpha1/namespaces/${ns}/virtualmachines`,
    });
    const vmSeen = (v: Vm) => {
      const name = v.metadata.name ?? '';
      if (v.status?.phase === 'Running' && !vmRunningAt.has(name)) vmRunningAt.set(name, Date.now());
    };
    vmsInformer.onAdd(vmSeen);
    vmsInformer.onUpdate((_o, v) => vmSeen(v));
    for (const i of [pods, vmsInformer]) i.start();
    await Promise.all([pods.waitForSync(30_000), vmsInformer.waitForSync(30_000)]);

    progress(`creating ${vms} VMs at once`);
    const createdAt = new Map<string, number>();
    await Promise.all(
      Array.from({ length: vms }, async (_, i) => {
        const name = `vm-${i}`;
        const vm = renderVirtualMachine(name, {
          metadata: { name, namespace: ns },
          memory: { size: '256Mi' },
          disks: [{ name: 'root' }],
          volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1' } }],
          interfaces: [{ name: 'pod', masquerade: { ports: [{ port: 22 }] } }],
          networks: [{ name: 'pod', pod: {} }],
        });
        await client.create(vm as unknown as KubeObject);
        createdAt.set(name, Date.now());
      }),
    );
    await waitFor(`${vms} VMs Running`, async () => (vmRunningAt.size >= vms ? true : undefined), {
      timeoutMs: Number(values['timeout-s']) * 1000,
      intervalMs: 200,
    });
    const bootAt = new Map(
      kubelets.flatMap((k) => k.pods().map((p) => [p.pod.metadata.name, p.bootRequestedAt] as const)),
    );
    const runningToBoot = [...podRunningAt]
      .map(([pod, t]) => (bootAt.get(pod) ?? NaN) - t)
      .filter((d) => !Number.isNaN(d))
      .sort((a, b) => a - b);
    const createToRunning = [...vmRunningAt].map(([vm, t]) => t - (createdAt.get(vm) ?? t)).sort((a, b) => a - b);
    await Promise.all([pods.stop(), vmsInformer.stop()]);
    console.log(
      JSON.stringify({
        vms,
        nodes: nodeCount,
        pod_running_to_boot_p50_ms: percentile(runningToBoot, 50),
        pod_running_to_boot_p95_ms: percentile(runningToBoot, 95),
        pod_running_to_boot_p99_ms: percentile(runningToBoot, 99),
        pod_running_to_boot_max_ms: runningToBoot[runningToBoot.length - 1],
        vm_create_to_running_p50_ms: percentile(createToRunning, 50),
        vm_create_to_running_p95_ms: percentile(createToRunning, 95),
      }),
    );
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    await Promise.all(kubelets.map((k) => k.stop()));
    client.close();
    await cp.stop();
    rmSync(root, { recursive: true, force: true });
    progress(`done in ${Math.round((Date.now() - started) / 1000)} s`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
});
