/**
 * `npm run bench:density -- --vms 1000 --nodes 100 [--order pods-then-vms|vms-then-pods]`: a real control plane with
 * N KWOK nodes, the controller as its own process, and two bursts measured on that same control plane:
 *
 * - the floor: M bare pods shaped like VM pods (rendered by the VM pod renderer for the same VM, so the same
 *   resources, labels, tolerations and nodeSelector; without the owner reference, which would need the VM), created
 *   with the same client and concurrency, each timed from its create call returning to the watch event that shows its
 *   PodScheduled condition True. They live in a namespace the controller does not watch.
 * - the VMs: M VirtualMachines, each timed from its create call returning to the watch event that shows phase
 *   Scheduled (the VM pod bound to a node).
 *
 * Both parts run on an equally loaded cluster: whichever part runs first has its pods deleted before the other starts
 * (the VM pods after the controller was stopped, so nothing recreates them). `order` in the output says which ran
 * first; alternate it across runs.
 *
 * Progress goes to stderr (with the controller's queue depth every 2 s); the last line on stdout is one JSON object:
 * {"vms","nodes","order","pods_p50_ms","pods_p95_ms","pods_p99_ms","vms_p50_ms","vms_p95_ms","vms_p99_ms",
 *  "p50_ratio","p95_ratio","p99_ratio","controller_rss_mb","controller_node_args","api_calls_per_vm",
 *  "api_calls_by_verb_resource","reconciles_per_vm"}.
 * controller_rss_mb is the controller's peak RSS during the VM part (sampled every 200 ms), with the Node flags of
 * controller_node_args (`--node-args`; by default those the operator image sets, from tools/image/kubevisor.sh).
 * api_calls_per_vm is the number of API calls the controller made during the VM part (from its own /metrics: the
 * difference between the scrapes before the first create and after the last Scheduled) divided by the number of VMs;
 * api_calls_by_verb_resource breaks it down ("patch virtualmachines/status": calls per VM), and reconciles_per_vm
 * breaks the VM reconciles down by result.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { VirtualMachineStatus } from '../api';
import type { VirtualMachineProps } from '../constructs';
import { renderVirtualMachine } from '../constructs';
import { renderVmPod } from '../constructs/vm-pod';
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
    // Creations per second; 0 creates as fast as the API server accepts (a burst that measures queueing).
    qps: { type: 'string', default: '0' },
    // Node.js flags for the controller; by default those the operator image sets (tools/image/kubevisor.sh).
    'node-args': { type: 'string' },
    // Which part runs first: the bare pods (the floor) or the VMs.
    order: { type: 'string', default: 'pods-then-vms' },
  },
});
const vms = Number(values.vms);
const nodes = Number(values.nodes);
const order = String(values.order);
if (!(vms > 0) || !(nodes > 0)) throw new Error('--vms and --nodes must be positive integers');
if (order !== 'pods-then-vms' && order !== 'vms-then-pods') {
  throw new Error(`--order must be pods-then-vms or vms-then-pods, got ${order}`);
}
const controllerNodeArgs = values['node-args'] ?? imageControllerNodeFlags();
const progress = (line: string) => process.stderr.write(`bench:density: ${line}\n`);
/** The same concurrency for both parts. */
const CONCURRENCY = 32;
const VM_NS = 'density';
const POD_NS = 'density-floor';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** The controller's Node flags as the operator image sets them (CONTROLLER_NODE_FLAGS in tools/image/kubevisor.sh). */
function imageControllerNodeFlags(): string {
  const script = readFileSync(join(__dirname, '..', 'tools', 'image', 'kubevisor.sh'), 'utf8');
  const m = /^CONTROLLER_NODE_FLAGS="([^"]*)"$/m.exec(script);
  if (!m) throw new Error('tools/image/kubevisor.sh sets no CONTROLLER_NODE_FLAGS');
  return m[1];
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** The VM of the bench: the same props for the VMs and for the bare pods rendered from it. */
function vmProps(name: string, ns: string): VirtualMachineProps {
  return {
    metadata: { name, namespace: ns },
    cpu: { sockets: 1, coresPerSocket: 1 },
    memory: { size: '256Mi' },
    disks: [{ name: 'root' }],
    volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1' } }],
  };
}

/** A VM pod as the controller would render it, less what only the operator can provide (the VM that owns it). */
function barePod(name: string): KubeObject {
  const vm = renderVirtualMachine(name, vmProps(name, POD_NS));
  const uid = randomUUID();
  const pod = renderVmPod({ ...vm, metadata: { ...vm.metadata, uid } }, { run: 0 }, { image: 'kubevisor:e2e' }) as {
    metadata: { ownerReferences?: unknown };
  };
  delete pod.metadata.ownerReferences;
  return pod as unknown as KubeObject;
}

/** Creates `count` objects with CONCURRENCY callers (paced at `qps` when > 0); calls `created(name)` as each returns. */
async function createAll(
  count: number,
  make: (i: number) => KubeObject,
  client: KubeClient,
  qps: number,
  created: (name: string) => void,
) {
  const start = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const i = next++;
        if (qps > 0) {
          const due = start + (i * 1000) / qps;
          if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
        }
        const object = await client.create(make(i));
        created(object.metadata.name ?? '');
      }
    }),
  );
  return Date.now() - start;
}

/**
 * Records latencies (now − t0) by name, once each; `done` resolves when `count` are recorded and rejects after the
 * timeout, with `detail()` appended to the message.
 */
function latencyRecorder(what: string, count: number, timeoutMs: number, detail: () => Promise<string>) {
  const latencies = new Map<string, number>();
  let finish: () => void = () => undefined;
  let fail: (e: unknown) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => ((finish = resolve), (fail = reject)));
  const timer = setTimeout(
    () =>
      void detail().then(
        (d) => fail(new Error(`only ${latencies.size}/${count} ${what} after ${timeoutMs} ms${d}`)),
        fail,
      ),
    timeoutMs,
  );
  timer.unref();
  return {
    latencies,
    done,
    observe(name: string, t0: number | undefined): void {
      if (t0 === undefined || latencies.has(name)) return;
      latencies.set(name, Date.now() - t0);
      if (latencies.size % 100 === 0) progress(`${latencies.size}/${count} ${what}`);
      if (latencies.size === count) {
        clearTimeout(timer);
        finish();
      }
    },
  };
}

/** Requests by `verb resource` from the controller's kubevisor_kube_requests_total. */
function requestCounts(metrics: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of metrics.matchAll(/^kubevisor_kube_requests_total\{([^}]*)\} (\d+)/gm)) {
    const verb = /verb="([^"]*)"/.exec(m[1])?.[1] ?? '';
    const resource = /resource="([^"]*)"/.exec(m[1])?.[1] ?? '';
    const key = resource ? `${verb} ${resource}` : verb;
    out.set(key, (out.get(key) ?? 0) + Number(m[2]));
  }
  return out;
}

/** VM reconciles by result, from kubevisor_reconcile_total. */
function reconcileCounts(metrics: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of metrics.matchAll(/^kubevisor_reconcile_total\{([^}]*)\} (\d+)/gm)) {
    if (!m[1].includes('controller="virtualmachine"')) continue;
    out.set(/result="([^"]*)"/.exec(m[1])?.[1] ?? '', Number(m[2]));
  }
  return out;
}

/** (after − before) / n, per key, rounded to two decimals, keys with no difference left out. */
function perVm(before: Map<string, number>, after: Map<string, number>, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of [...after].sort(([a], [b]) => a.localeCompare(b))) {
    const d = value - (before.get(key) ?? 0);
    const v = Math.round((d / n) * 100) / 100;
    if (v > 0) out[key] = v;
  }
  return out;
}

interface Distribution {
  p50: number;
  p95: number;
  p99: number;
}

function distribution(latencies: Map<string, number>): Distribution {
  const sorted = [...latencies.values()].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
}

/** Deletes every pod of `ns` (matching `labelSelector`) at once and waits until none is left. */
async function deletePods(client: KubeClient, ns: string, timeoutMs: number): Promise<void> {
  await client.request('DELETE', `/api/v1/namespaces/${ns}/pods`, { query: { gracePeriodSeconds: 0 } });
  await waitFor(
    `the pods of ${ns} to be gone`,
    async () => ((await client.list('v1', 'Pod', { namespace: ns, limit: 500 })).length === 0 ? true : undefined),
    { timeoutMs, intervalMs: 500 },
  );
}

/**
 * Where the API server's time went, both parts together: its own apiserver_request_duration_seconds by write verb and
 * resource, to stderr (total server time first: under a burst the mean is mostly waiting for the server's CPU).
 */
async function reportApiServerTime(client: KubeClient): Promise<void> {
  const text = await client.request<string>('GET', '/metrics').catch(() => '');
  const byKey = new Map<string, { sum: number; count: number }>();
  for (const m of text.matchAll(/^apiserver_request_duration_seconds_(sum|count)\{([^}]*)\} (\S+)/gm)) {
    const label = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(m[2])?.[1];
    const verb = label('verb');
    const resource = label('resource');
    if (!verb || !resource || ['GET', 'LIST', 'WATCH'].includes(verb)) continue;
    const sub = label('subresource');
    const key = `${verb} ${resource}${sub ? `/${sub}` : ''}`;
    const entry = byKey.get(key) ?? { sum: 0, count: 0 };
    if (m[1] === 'sum') entry.sum += Number(m[3]);
    else entry.count += Number(m[3]);
    byKey.set(key, entry);
  }
  for (const [key, e] of [...byKey].sort((a, b) => b[1].sum - a[1].sum).slice(0, 12)) {
    progress(
      `API server ${key}: ${e.count} requests, mean ${Math.round((e.sum / Math.max(1, e.count)) * 1000)} ms, ` +
        `${e.sum.toFixed(1)} s in all`,
    );
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const timeoutMs = Number(values['timeout-s']) * 1000;
  const qps = Number(values.qps);
  progress(`starting a control plane with ${nodes} KWOK nodes`);
  const cp = await startControlPlane({ nodes, schedulerQps: 500, log: progress });
  const client = new KubeClient(loadKubeconfig(cp.kubeconfigPath));
  let controller: Awaited<ReturnType<typeof startController>> | undefined;
  let sampler: NodeJS.Timeout | undefined;
  let queueSampler: NodeJS.Timeout | undefined;
  const informers: Informer<KubeObject>[] = [];
  try {
    for (const ns of [VM_NS, POD_NS])
      await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await installCrds(client);
    // Right after a CRD is established its storage may still answer 429 "(re)initializing" for a moment.
    await waitFor(
      'VirtualMachine storage to serve lists',
      () =>
        client
          .request<{ metadata: { resourceVersion: string } }>(
            'GET',
            `/apis/kubevisor.io/v1alpha1/namespaces/${VM_NS}/virtualmachines`,
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
      { cwd: join(__dirname, '..'), stdio: 'inherit' },
    );
    controller = await startController(cp.kubeconfigPath, ['--namespace', VM_NS, '--workers', String(values.workers)], {
      compiled: true,
      nodeArgs: controllerNodeArgs.split(' ').filter(Boolean),
    });
    const ctl = controller;
    const scrape = async () => (await controllerGet(ctl.port, '/metrics')).body;

    // The floor: bare pods, create → PodScheduled.
    const runPods = async (): Promise<Distribution> => {
      type Pod = KubeObject & { status?: { conditions?: { type: string; status: string }[] } };
      const createdAt = new Map<string, number>();
      const watch = latencyRecorder('pods PodScheduled', vms, timeoutMs, async () => '');
      const observe = (p: Pod) => {
        const name = p.metadata?.name ?? '';
        if (p.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'True')) {
          watch.observe(name, createdAt.get(name));
        }
      };
      // An informer, not a bare watch: under a burst the API server closes watchers that fall behind, and the
      // informer re-watches (or relists) where a bare watch would silently stop seeing events.
      const informer = new Informer<Pod>({ client, path: `/api/v1/namespaces/${POD_NS}/pods`, resyncMs: 0 });
      informers.push(informer as unknown as Informer<KubeObject>);
      informer.onAdd(observe);
      informer.onUpdate((_old, p) => observe(p));
      informer.start();
      await informer.waitForSync(30_000);
      progress(`creating ${vms} bare pods${qps > 0 ? ` at ${qps}/s` : ' as fast as the API server takes them'}`);
      const tookMs = await createAll(
        vms,
        (i) => barePod(`vm-${i}`),
        client,
        qps,
        (name) => {
          createdAt.set(name, Date.now());
          // The watch may have shown it scheduled before the create call returned.
          const cached = informer.get(POD_NS, name);
          if (cached) observe(cached);
        },
      );
      progress(`created ${vms} bare pods in ${tookMs} ms; waiting for PodScheduled`);
      await watch.done;
      await informer.stop();
      return distribution(watch.latencies);
    };

    // The VMs: create → phase Scheduled.
    let peakRss = 0;
    let apiCalls: Record<string, number> = {};
    let apiCallsPerVm = 0;
    let reconciles: Record<string, number> = {};
    const runVms = async (): Promise<Distribution> => {
      type Vm = KubeObject & { status?: VirtualMachineStatus };
      const createdAt = new Map<string, number>();
      const watch = latencyRecorder('VMs Scheduled', vms, timeoutMs, async () => {
        const m = await scrape();
        return (
          '; controller metrics:\n' +
          m
            .split('\n')
            .filter((l) => /^kubevisor_(workqueue|kube_requests|reconcile_total|virtualmachines)/.test(l))
            .join('\n')
        );
      });
      const observe = (v: Vm) => {
        const name = v.metadata?.name ?? '';
        if (v.status?.phase === 'Scheduled') watch.observe(name, createdAt.get(name));
      };
      const informer = new Informer<Vm>({
        client,
        path: `/apis/kubevisor.io/v1alpha1/namespaces/${VM_NS}/virtualmachines`,
        resyncMs: 0,
      });
      informers.push(informer as unknown as Informer<KubeObject>);
      informer.onAdd(observe);
      informer.onUpdate((_old, v) => observe(v));
      informer.start();
      await informer.waitForSync(30_000);
      const before = await scrape();
      peakRss = rssMb(ctl.pid);
      sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(ctl.pid))), 200);
      queueSampler = setInterval(
        () =>
          void scrape().then(
            (m) => {
              const q = (what: string) =>
                new RegExp(`^kubevisor_workqueue_${what}\\{name="virtualmachine"\\} (\\d+)`, 'm').exec(m)?.[1];
              progress(
                `${watch.latencies.size}/${vms} Scheduled; VM queue depth ${q('depth')}, in flight ${q('in_flight')}, delayed ${q('delayed')}`,
              );
            },
            () => undefined,
          ),
        2000,
      );
      progress(`creating ${vms} VMs${qps > 0 ? ` at ${qps}/s` : ' as fast as the API server takes them'}`);
      const tookMs = await createAll(
        vms,
        (i) => renderVirtualMachine(`vm-${i}`, vmProps(`vm-${i}`, VM_NS)) as unknown as KubeObject,
        client,
        qps,
        (name) => createdAt.set(name, Date.now()),
      );
      progress(`created ${vms} VMs in ${tookMs} ms; waiting for Scheduled`);
      await watch.done;
      clearInterval(sampler);
      clearInterval(queueSampler);
      const after = await scrape();
      const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
      apiCalls = perVm(requestCounts(before), requestCounts(after), vms);
      apiCallsPerVm = Math.round(((total(requestCounts(after)) - total(requestCounts(before))) / vms) * 100) / 100;
      reconciles = perVm(reconcileCounts(before), reconcileCounts(after), vms);
      if (process.env.KUBEVISOR_BENCH_DEBUG) process.stderr.write(after);
      await informer.stop();
      return distribution(watch.latencies);
    };

    let pods: Distribution;
    let vmsDist: Distribution;
    if (order === 'pods-then-vms') {
      pods = await runPods();
      progress('deleting the bare pods');
      await deletePods(client, POD_NS, 120_000);
      vmsDist = await runVms();
    } else {
      vmsDist = await runVms();
      // Stopped first, so nothing makes the VM pods again.
      progress('stopping the controller and deleting the VM pods');
      await ctl.stop();
      await deletePods(client, VM_NS, 120_000);
      pods = await runPods();
    }
    await reportApiServerTime(client);
    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    console.log(
      JSON.stringify({
        vms,
        nodes,
        order,
        ...(qps > 0 ? { create_qps: qps } : {}),
        pods_p50_ms: pods.p50,
        pods_p95_ms: pods.p95,
        pods_p99_ms: pods.p99,
        vms_p50_ms: vmsDist.p50,
        vms_p95_ms: vmsDist.p95,
        vms_p99_ms: vmsDist.p99,
        p50_ratio: ratio(vmsDist.p50, pods.p50),
        p95_ratio: ratio(vmsDist.p95, pods.p95),
        p99_ratio: ratio(vmsDist.p99, pods.p99),
        controller_rss_mb: Math.round(peakRss),
        controller_node_args: controllerNodeArgs,
        api_calls_per_vm: apiCallsPerVm,
        api_calls_by_verb_resource: apiCalls,
        reconciles_per_vm: reconciles,
      }),
    );
  } finally {
    if (sampler) clearInterval(sampler);
    if (queueSampler) clearInterval(queueSampler);
    for (const i of informers) await i.stop();
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
