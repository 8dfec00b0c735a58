// The operator's Prometheus metrics (prom-client), on a registry of its own rather than the global
// one, so tests and several operators in one process never collide. Names follow
// controller-runtime's where one exists (reconcile total/time by controller and result,
// work-queue depth), prefixed `kubevisor_`.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { KUBE_VERBS, type RequestCounts, type RequestCountsByResource } from './request-count';
import type { ReconcileObserver, ReconcileOutcome } from './workers';

export interface MetricsOptions {
  /** Also export process and Node.js metrics (CPU, memory, event-loop lag). @default true */
  defaultMetrics?: boolean;
}

/** What the queue gauges read at scrape time (a WorkQueue). */
export interface QueueStats {
  readonly length: number;
  readonly inFlight: number;
  readonly delayedCount?: number;
}

export class OperatorMetrics implements ReconcileObserver {
  readonly registry = new Registry();
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileDuration: Histogram<'controller' | 'result'>;
  private readonly queues = new Map<string, QueueStats>();
  private readonly clients: {
    counts: () => RequestCounts;
    byResource?: () => RequestCountsByResource;
  }[] = [];
  private vmPhaseSource?: () => Record<string, number>;
  private leaderSource?: () => boolean;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.reconcileTotal = new Counter({
      name: 'kubevisor_reconcile_total',
      help: 'Reconciles by controller and result (success, requeue_after, conflict, error).',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'kubevisor_reconcile_duration_seconds',
      help: 'Time per reconcile, by controller and result.',
      labelNames: ['controller', 'result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const queues = this.queues;
    new Gauge({
      name: 'kubevisor_workqueue_depth',
      help: 'Keys waiting for a worker, by queue.',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        for (const [name, q] of queues) this.set({ name }, q.length);
      },
    });
    new Gauge({
      name: 'kubevisor_workqueue_in_flight',
      help: 'Keys being reconciled now, by queue.',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        for (const [name, q] of queues) this.set({ name }, q.inFlight);
      },
    });
    new Gauge({
      name: 'kubevisor_workqueue_delayed',
      help: 'Keys waiting for a backoff or requeue delay, by queue.',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        for (const [name, q] of queues) this.set({ name }, q.delayedCount ?? 0);
      },
    });
    const clients = this.clients;
    new Counter({
      name: 'kubevisor_kube_requests_total',
      help: 'Requests to the Kubernetes API server, by verb and resource (with its subresource; empty for discovery).',
      labelNames: ['verb', 'resource'],
      registers,
      collect() {
        this.reset();
        const totals = new Map<string, { verb: string; resource: string; count: number }>();
        const add = (verb: string, resource: string, count: number) => {
          const key = `${verb} ${resource}`;
          const entry = totals.get(key);
          if (entry) entry.count += count;
          else totals.set(key, { verb, resource, count });
        };
        for (const client of clients) {
          if (client.byResource) for (const r of client.byResource()) add(r.verb, r.resource, r.count);
          else {
            const counts = client.counts();
            for (const verb of KUBE_VERBS) if (counts[verb] > 0) add(verb, '', counts[verb]);
          }
        }
        // Discovery and other non-resource paths carry no resource label.
        for (const { verb, resource, count } of totals.values())
          this.inc(resource ? { verb, resource } : { verb }, count);
      },
    });
    const vmPhases = (): Record<string, number> => this.vmPhaseSource?.() ?? {};
    new Gauge({
      name: 'kubevisor_virtualmachines',
      help: 'VirtualMachines by status phase.',
      labelNames: ['phase'],
      registers,
      collect() {
        this.reset();
        for (const [phase, count] of Object.entries(vmPhases())) this.set({ phase }, count);
      },
    });
    const leading = (): boolean | undefined => this.leaderSource?.();
    new Gauge({
      name: 'kubevisor_leader',
      help: '1 while this process holds the leader lease, 0 otherwise.',
      registers,
      collect() {
        const value = leading();
        if (value !== undefined) this.set(value ? 1 : 0);
      },
    });
  }

  /** ReconcileObserver: pass the metrics as `observer` to runWorkers. */
  observeReconcile(controller: string, outcome: ReconcileOutcome, seconds: number): void {
    this.reconcileTotal.inc({ controller, result: outcome });
    this.reconcileDuration.observe({ controller, result: outcome }, seconds);
  }

  /** Exports the depth, in-flight and delayed counts of a work queue, read at each scrape. */
  watchQueue(name: string, queue: QueueStats): void {
    this.queues.set(name, queue);
  }

  /** Exports a client's request counts by verb and resource (summed over all watched clients). */
  watchClient(client: {
    readonly requestCount: RequestCounts;
    readonly requestCountByResource?: RequestCountsByResource;
  }): void {
    this.clients.push({
      counts: () => client.requestCount,
      ...('requestCountByResource' in client ? { byResource: () => client.requestCountByResource ?? [] } : {}),
    });
  }

  /** The controller's hook: called at each scrape, returns VM counts by phase (e.g. from its informer cache). */
  setVmPhaseSource(source: () => Record<string, number>): void {
    this.vmPhaseSource = source;
  }

  watchLeader(elector: { isLeader(): boolean }): void {
    this.leaderSource = () => elector.isLeader();
  }

  /** The exposition text, as served on /metrics. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
