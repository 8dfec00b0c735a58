/**
 * `kubevisor controller`: the cluster-wide reconcile loop for VirtualMachines and VirtualMachineMigrations, and with
 * `--cluster-api` the Cluster API infrastructure provider (KubevisorClusters, KubevisorMachines), and with
 * `--cluster-api-load-balancers` also LoadBalancer control-plane Services.
 *
 * Informers fill the caches; every change enqueues the affected keys; workers reconcile them level-triggered.
 * With leader election on, only the Lease holder runs informers and workers; losing the Lease exits the process
 * (a fresh start is the only safe way to drop half-done work). /metrics, /healthz and /readyz are served always.
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import type { Informer, KubeObject, Logger } from '../kube';
import {
  KubeClient,
  LeaderElector,
  OperatorMetrics,
  WorkQueue,
  createLogger,
  informersSynced,
  installSignalHandlers,
  leaderElectionReady,
  leaderInformersSynced,
  loadKubeCredentials,
  runWorkers,
  splitObjectKey,
  startHealthServer,
} from '../kube';
import type { Workers } from '../kube';
import { DEFAULT_DAEMON_USERNAME, DEFAULT_PKI_NAMESPACE, startMigrationSigner } from '../migration-pki';
import type { MigrationSigner } from '../migration-pki';
import { DEFAULT_LEASE_NAME } from '../rbac';
import { KubeClusterApi } from './cluster-api-cluster';
import { KubeCluster } from './kube-cluster';
import { reconcileKubevisorClusterKey } from './kubevisor-cluster-reconciler';
import { reconcileKubevisorMachineKey } from './kubevisor-machine-reconciler';
import { reconcileMigrationKey } from './migration-reconciler';
import { DEFAULT_LIFECYCLE } from './vm-lifecycle';
import { HeldStartStatus, reconcileVmKey } from './vm-reconciler';

export interface ControllerOptions {
  kubeconfig?: string;
  /** The operator image VM pods run. */
  image: string;
  namespace?: string;
  workers: number;
  metricsPort: number;
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  nodeLossGraceMs: number;
  guestExitReportMs: number;
  /** Where the migration CA lives, and which user the node daemons are (the migration signer's policy). */
  pkiNamespace: string;
  daemonUsername: string;
  /** Run the Cluster API infrastructure provider too (needs Cluster API's CRDs, v1beta2). */
  clusterApi?: boolean;
  /**
   * Let KubevisorClusters ask for LoadBalancer control-plane Services (with --cluster-api): whoever may create a
   * KubevisorCluster then gets load balancers through the controller's rights.
   */
  clusterApiLoadBalancers?: boolean;
  logger?: Logger;
}

const USAGE = `Usage: kubevisor controller [options]
  --kubeconfig PATH          kubeconfig (default: in-cluster service account, or $KUBECONFIG)
  --image IMAGE              operator image for VM pods (default: $KUBEVISOR_IMAGE)
  --namespace NS             watch one namespace only (default: all)
  --workers N                concurrent VM reconciles (default: 16)
  --metrics-port PORT        /metrics, /healthz, /readyz (default: 8080; 0 picks a free port)
  --leader-elect             hold a Lease before reconciling (run several replicas)
  --lease-namespace NS       (default: kubevisor-system)
  --lease-name NAME          (default: ${DEFAULT_LEASE_NAME})
  --node-loss-grace SECONDS  NotReady time before a VM is recovered elsewhere (default: 60)
  --guest-exit-report SECONDS
                             how long an ended VM pod waits for the node daemon to say whether its guest powered
                             off or crashed, before it counts as a power-off (default: 30)
  --pki-namespace NS         namespace of the migration CA Secret and ConfigMap (default: kubevisor-system)
  --daemon-user NAME         the node daemons' ServiceAccount user, the only requester whose migration
                             certificates are signed (default: system:serviceaccount:kubevisor-system:kubevisor-daemon)
  --cluster-api              also reconcile KubevisorClusters and KubevisorMachines (the Cluster API infrastructure
                             provider; needs Cluster API's CRDs, cluster.x-k8s.io/v1beta2)
  --cluster-api-load-balancers
                             with --cluster-api: let KubevisorClusters have LoadBalancer control-plane Services
                             (default: refused, Ready False LoadBalancerNotAllowed)`;

export function parseControllerArgs(argv: string[]): ControllerOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string' },
      image: { type: 'string' },
      namespace: { type: 'string' },
      workers: { type: 'string', default: '16' },
      'metrics-port': { type: 'string', default: '8080' },
      'leader-elect': { type: 'boolean', default: false },
      'lease-namespace': { type: 'string', default: 'kubevisor-system' },
      'lease-name': { type: 'string', default: DEFAULT_LEASE_NAME },
      'node-loss-grace': { type: 'string', default: String(DEFAULT_LIFECYCLE.nodeLossGraceMs / 1000) },
      'guest-exit-report': { type: 'string', default: String(DEFAULT_LIFECYCLE.guestExitReportMs / 1000) },
      'pki-namespace': { type: 'string', default: DEFAULT_PKI_NAMESPACE },
      'daemon-user': { type: 'string', default: DEFAULT_DAEMON_USERNAME },
      'cluster-api': { type: 'boolean', default: false },
      'cluster-api-load-balancers': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const image = values.image ?? process.env.KUBEVISOR_IMAGE;
  if (!image) throw new Error(`--image or $KUBEVISOR_IMAGE is required\n${USAGE}`);
  const num = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got ${v}`);
    return n;
  };
  return {
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    image,
    ...(values.namespace ? { namespace: values.namespace } : {}),
    workers: num('workers', values.workers, 1),
    metricsPort: num('metrics-port', values['metrics-port'], 0),
    leaderElect: values['leader-elect'],
    leaseNamespace: values['lease-namespace'],
    leaseName: values['lease-name'],
    nodeLossGraceMs: num('node-loss-grace', values['node-loss-grace'], 0) * 1000,
    guestExitReportMs: num('guest-exit-report', values['guest-exit-report'], 0) * 1000,
    pkiNamespace: values['pki-namespace'],
    daemonUsername: values['daemon-user'],
    ...(values['cluster-api'] ? { clusterApi: true } : {}),
    ...(values['cluster-api-load-balancers'] ? { clusterApiLoadBalancers: true } : {}),
  };
}

export async function runController(o: ControllerOptions): Promise<void> {
  const logger = o.logger ?? createLogger({ bindings: { component: 'controller' } });
  const client = new KubeClient(loadKubeCredentials(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}));
  const cluster = new KubeCluster(client, { logger, ...(o.namespace ? { namespace: o.namespace } : {}) });
  const metrics = new OperatorMetrics();
  const vmQueue = new WorkQueue({ name: 'virtualmachine' });
  const migrationQueue = new WorkQueue({ name: 'virtualmachinemigration' });
  metrics.watchQueue('virtualmachine', vmQueue);
  metrics.watchQueue('virtualmachinemigration', migrationQueue);
  metrics.watchClient(client);
  metrics.setVmPhaseSource(() => {
    const counts: Record<string, number> = {};
    for (const vm of cluster.vms.list())
      counts[vm.status?.phase ?? 'None'] = (counts[vm.status?.phase ?? 'None'] ?? 0) + 1;
    return counts;
  });
  cluster.route({ vm: (k, urgent) => vmQueue.add(k, { urgent }), migration: (k) => migrationQueue.add(k) });
  // The Cluster API provider: its own caches (the VM cache is shared) and queues.
  const capi = o.clusterApi
    ? new KubeClusterApi(client, cluster.vms as unknown as Informer<KubeObject>, {
        logger,
        ...(o.namespace ? { namespace: o.namespace } : {}),
      })
    : undefined;
  const kcQueue = new WorkQueue({ name: 'kubevisorcluster' });
  const kmQueue = new WorkQueue({ name: 'kubevisormachine' });
  if (capi) {
    metrics.watchQueue('kubevisorcluster', kcQueue);
    metrics.watchQueue('kubevisormachine', kmQueue);
    capi.route({ cluster: (k) => kcQueue.add(k), machine: (k) => kmQueue.add(k) });
  }
  const informers = [...cluster.informers, ...(capi?.informers ?? [])];
  const stoppingProvider = () => kmQueue.isShuttingDown;

  const pod = { image: o.image };
  const lifecycle = {
    ...DEFAULT_LIFECYCLE,
    nodeLossGraceMs: o.nodeLossGraceMs,
    guestExitReportMs: o.guestExitReportMs,
  };
  const workers: Workers[] = [];
  const server = await startHealthServer({
    port: o.metricsPort,
    metrics,
    // With leader election the checks come with the elector (a standby has no informers running). Only the VM
    // controller's caches: a controller waiting for Cluster API to be installed still serves VMs, and an unready leader
    // would hold up rollouts and drains (the provider's wait is logged instead).
    readiness: o.leaderElect ? [] : [informersSynced(cluster.informers)],
    logger,
  });
  logger.info('serving metrics and health', { port: server.port });

  const start = async () => {
    logger.info('starting informers', { workers: o.workers });
    for (const i of informers) i.start();
    // Workers wait for every cache: a VM reconciled before its pods are listed would look as if its pod vanished.
    await Promise.all(cluster.informers.map((i) => i.waitForSync(120_000)));
    logger.info('caches synced; starting workers');
    const reconcile =
      (fn: typeof reconcileVmKey | typeof reconcileMigrationKey, extra: object) => async (key: string) => {
        const { namespace, name } = splitObjectKey(key);
        const r = await fn(cluster, namespace ?? '', name, { pod, ...extra });
        return r.requeueAfterMs !== undefined ? { requeueAfter: r.requeueAfterMs } : undefined;
      };
    workers.push(
      runWorkers(vmQueue, o.workers, reconcile(reconcileVmKey, { lifecycle, heldStarts: new HeldStartStatus() }), {
        controller: 'virtualmachine',
        logger,
        observer: metrics,
      }),
    );
    workers.push(
      runWorkers(migrationQueue, Math.max(1, Math.floor(o.workers / 4)), reconcile(reconcileMigrationKey, {}), {
        controller: 'virtualmachinemigration',
        logger,
        observer: metrics,
      }),
    );
    void startSigner();
    if (capi) void startClusterApi(capi);
  };

  // The provider's workers start once its caches are synced. Cluster API may be installed after kubevisor (its lists
  // answer 404 until then): the VM controller runs meanwhile, and the wait says what is missing.
  const startClusterApi = async (store: KubeClusterApi): Promise<void> => {
    // The queues shut down first on a signal; a stopped informer's wait rejects at once, so check before each wait.
    while (!stoppingProvider()) {
      try {
        await Promise.all(store.informers.map((i) => i.waitForSync(60_000)));
        break;
      } catch {
        if (stoppingProvider()) return;
        const waiting = store.informers.filter((i) => !i.hasSynced()).map((i) => i.name);
        logger.warn('Cluster API caches not synced yet; are Cluster API (v1beta2) and the kubevisor CRDs installed?', {
          waiting,
        });
      }
    }
    if (stoppingProvider()) return;
    logger.info('Cluster API caches synced; starting the infrastructure provider');
    const count = Math.max(1, Math.floor(o.workers / 4));
    const now = () => new Date();
    const allowLoadBalancers = o.clusterApiLoadBalancers ?? false;
    const keyed =
      (fn: typeof reconcileKubevisorClusterKey | typeof reconcileKubevisorMachineKey) => async (key: string) => {
        const { namespace, name } = splitObjectKey(key);
        const r = await fn(store, namespace ?? '', name, { now, allowLoadBalancers });
        return r.requeueAfterMs !== undefined ? { requeueAfter: r.requeueAfterMs } : undefined;
      };
    workers.push(
      runWorkers(kcQueue, count, keyed(reconcileKubevisorClusterKey), {
        controller: 'kubevisorcluster',
        logger,
        observer: metrics,
      }),
      runWorkers(kmQueue, count, keyed(reconcileKubevisorMachineKey), {
        controller: 'kubevisormachine',
        logger,
        observer: metrics,
      }),
    );
  };

  // The migration signer issues each node daemon its own certificate. Until its namespace exists (an install in
  // progress) it retries in the background: VMs run meanwhile, only migrations wait for certificates.
  let signer: MigrationSigner | undefined;
  let stopping = false;
  const startSigner = async (): Promise<void> => {
    for (let attempt = 0; !stopping; attempt++) {
      try {
        signer = await startMigrationSigner({
          client,
          namespace: o.pkiNamespace,
          policy: { requesterUsername: o.daemonUsername },
          logger,
        });
        logger.info('migration signer started', { namespace: o.pkiNamespace });
        return;
      } catch (error) {
        const delay = Math.min(60_000, 1_000 * 2 ** Math.min(attempt, 6));
        logger.warn('migration signer not started; retrying', { error: String(error), retryInMs: delay });
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
  };

  const fatal = (error: unknown) => {
    logger.error('cannot start', { error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  };
  let leader: LeaderElector | undefined;
  if (o.leaderElect) {
    leader = new LeaderElector({
      client,
      namespace: o.leaseNamespace,
      name: o.leaseName,
      identity: `${hostname()}-${process.pid}`,
      logger,
      onStartedLeading: () => void start().catch(fatal),
      onStoppedLeading: () => {
        logger.error('lost the leader lease; exiting so a fresh process starts clean');
        process.exit(1);
      },
      onNewLeader: (id) => logger.info('leader', { identity: id }),
    });
    metrics.watchLeader(leader);
    server.addReadinessCheck(leaderElectionReady(leader));
    server.addReadinessCheck(leaderInformersSynced(leader, cluster.informers));
    leader.start();
  } else {
    await start().catch(fatal);
  }

  installSignalHandlers(
    {
      queues: [vmQueue, migrationQueue, kcQueue, kmQueue],
      workers,
      informers,
      ...(leader ? { leader } : {}),
      server: {
        stop: async () => {
          stopping = true;
          await Promise.all([signer?.stop(), server.stop()]);
        },
      },
      client,
    },
    { logger },
  );
}

export async function main(argv: string[]): Promise<void> {
  await runController(parseControllerArgs(argv));
}
