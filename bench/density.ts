/**
 * `npm run bench:density -- --vms 1000 --nodes 100`: a real control plane with N KWOK nodes, the controller as its
 * own process, and M VMs created as fast as the API server takes them. For each VM it measures the time from its
 * create call returning to the watch event that shows phase Scheduled (the VM pod bound to a node). Progress goes
 * to stderr; the last line on stdout is one JSON object:
 * {"vms","nodes","create_to_scheduled_p50_ms","…p95_ms","…p99_ms","controller_rss_mb","api_requests"}.
 * controller_rss_mb is the controller's peak RSS (sampled every 200 ms); api_requests is the number of API calls
 * the controller made, from its own /metrics.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { VirtualMachineStatus } from '../api';
import { renderVirtualMachine } from '../constructs';
import { Informer, KubeApiError, KubeClient, loadKubeconfig } from '../operator/kube';
import { waitFor } from '../test/e2e/harness/wait';
import type { KubeObject } from '../operator/kube';
import { startControlPlane } from '../test/e2e/harness/control-plane';
import { controllerGet, startController } from '../test/e2e/harness/operator-process';
import { installCrds } from '../test/e2e/harness/crds';

const { values } = parseArgs({
  options: {
    vms: { type: 'string', default: '1000' },
    nodes: { type: 'string', default: '100' },
    workers: { type: 'string', default: '32' },
    'timeout-s': { type: 'string', default: '600' },
    // VM creations per second; 0 creates as fast as the API server accepts (a burst that measures queueing).
    qps: { type: 'string', default: '0' },
    // Node.js flags for the controller, as the operator image sets them.
    'node-args': { type: 'string', default: '' },
  },
});
const vms = Number(values.vms);
const nodes = Number(values.nodes);
if (!(vms > 0) || !(nodes > 0)) throw new Error('--vms and --nodes must be positive integers');
const progress = (line: string) => process.stderr.write(`bench:density: ${line}\n`);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  progress(`starting a control plane with ${nodes} KWOK nodes`);
  const cp = await startControlPlane({ nodes, schedulerQps: 500, log: progress });
  const client = new KubeClient(loadKubeconfig(cp.kubeconfigPath));
  let controller: Awaited<ReturnType<typeof startController>> | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    const ns = 'density';
    await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await installCrds(client);
    // Right after a CRD is established its storage may still answer 429 "(re)initializing" for a moment.
    await waitFor(
      'VirtualMachine storage to serve lists',
      () =>
        client
          .request<{ metadata: { resourceVersion: string } }>(
            'GET',
            `/apis/kubevisor.io/v1alpha1/namespaces/${ns}/virtualmachines`,
          )
          .catch((e: unknown) => {
            if (e instanceof KubeApiError && e.code === 429) return undefined;
            throw e;
          }),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    // The controller runs compiled, as in the operator image (TypeScript loaders would add to its memory).
    progress('building lib/ (npm run build)');
    execFileSync(
      process.execPath,
      [join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: join(__dirname, '..'),
        stdio: 'inherit',
      },
    );
    controller = await startController(cp.kubeconfigPath, ['--namespace', ns, '--workers', String(values.workers)], {
      compiled: true,
      nodeArgs: String(values['node-args']).split(' ').filter(Boolean),
    });
    let peakRss = 0;
    sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(controller!.pid))), 200);

    const createdAt = new Map<string, number>();
    const latencies = new Map<string, number>();
    let resolveDone: () => void = () => undefined;
    const done = new Promise<void>((r) => (resolveDone = r));
    // An informer, not a bare watch: under a burst the API server closes watchers that fall behind, and the informer
    // re-watches (or relists) where a bare watch would silently stop seeing events.
    type Vm = KubeObject & { status?: VirtualMachineStatus };
    const observe = (v: Vm) => {
      const name = v.metadata?.name;
      if (!name || v.status?.phase !== 'Scheduled' || latencies.has(name)) return;
      const t0 = createdAt.get(name);
      if (t0 === undefined) return;
      latencies.set(name, Date.now() - t0);
      if (latencies.size % 100 === 0) progress(`${latencies.size}/${vms} Scheduled`);
      if (latencies.size === vms) resolveDone();
    };
    const informer = new Informer<Vm>({ client, path: `/apis/kubevisor.io/v1alpha1/namespaces/${ns}/virtualmachines` });
    informer.onAdd(observe);
    informer.onUpdate((_old, v) => observe(v));
    informer.start();
    await informer.waitForSync(30_000);

    const qps = Number(values.qps);
    progress(`creating ${vms} VMs${qps > 0 ? ` at ${qps}/s` : ' as fast as the API server takes them'}`);
    const createStart = Date.now();
    const names = Array.from({ length: vms }, (_, i) => `vm-${i}`);
    const concurrency = 32;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < names.length) {
          const i = next++;
          const name = names[i];
          if (qps > 0) {
            const due = createStart + (i * 1000) / qps;
            if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
          }
          const vm = renderVirtualMachine(name, {
            metadata: { name, namespace: ns },
            cpu: { sockets: 1, coresPerSocket: 1 },
            memory: { size: '256Mi' },
            disks: [{ name: 'root' }],
            volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1' } }],
          });
          await client.create(vm as unknown as KubeObject);
          createdAt.set(name, Date.now());
        }
      }),
    );
    progress(`created ${vms} VMs in ${Date.now() - started} ms since start; waiting for Scheduled`);
    const timeoutMs = Number(values['timeout-s']) * 1000;
    await Promise.race([
      done,
      new Promise((_, reject) =>
        setTimeout(
          () =>
            void controllerGet(controller!.port, '/metrics').then(
              (m) =>
                reject(
                  new Error(
                    `only ${latencies.size}/${vms} Scheduled after ${timeoutMs} ms; controller metrics:\n` +
                      m.body
                        .split('\n')
                        .filter((l) => /^kubevisor_(workqueue|kube_requests|reconcile_total|virtualmachines)/.test(l))
                        .join('\n'),
                  ),
                ),
              reject,
            ),
          timeoutMs,
        ).unref(),
      ),
    ]);
    if (process.env.KUBEVISOR_BENCH_DEBUG) {
      for (const name of ['vm-0', `vm-${vms - 1}`]) {
        const pods = await client.list('v1', 'Pod', { namespace: ns, labelSelector: `kubevisor.io/vm=${name}` });
        const vm = await client.get('kubevisor.io/v1alpha1', 'VirtualMachine', name, ns);
        progress(
          `${name}: vm created ${vm.metadata.creationTimestamp}, pod created ${pods[0]?.metadata.creationTimestamp}, pod conditions ${JSON.stringify((pods[0] as { status?: { conditions?: unknown } }).status?.conditions)}, vm status ${JSON.stringify((vm as { status?: unknown }).status)}`,
        );
      }
    }
    const metrics = (await controllerGet(controller.port, '/metrics')).body;
    const apiRequests = [...metrics.matchAll(/^kubevisor_kube_requests_total\{[^}]*\} (\d+)/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
    const sorted = [...latencies.values()].sort((a, b) => a - b);
    await informer.stop();
    console.log(
      JSON.stringify({
        vms,
        nodes,
        create_qps: qps > 0 ? qps : 'max',
        create_to_scheduled_p50_ms: percentile(sorted, 50),
        create_to_scheduled_p95_ms: percentile(sorted, 95),
        create_to_scheduled_p99_ms: percentile(sorted, 99),
        controller_rss_mb: Math.round(peakRss),
        api_requests: apiRequests,
      }),
    );
  } finally {
    if (sampler) clearInterval(sampler);
    await controller?.stop();
    client.close();
    await cp.stop();
    progress(`done in ${Math.round((Date.now() - started) / 1000)} s`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
});
