/**
 * `kubevisor daemon`: the node daemon, one per node (a privileged DaemonSet). It drives Cloud Hypervisor in every VM
 * pod on its node through the pod's API socket (boot, power, migration), serves the KVM and TUN device plugins, and
 * writes what it observes to the VMs' status. /metrics, /healthz and /readyz are served on --metrics-port.
 */
import { parseArgs } from 'node:util';
import {
  KubeClient,
  OperatorMetrics,
  createLogger,
  informersSynced,
  installSignalHandlers,
  loadKubeCredentials,
  startHealthServer,
} from '../kube';
import { DEFAULT_PKI_NAMESPACE, KubeNodeCsrApi, startNodeCertificates } from '../migration-pki';
import { NodeDaemon } from './daemon';
import { MigrationAgent } from './migration';
import { DEFAULT_PLUGIN_DIR, startDevicePlugins } from './device-plugin';

export interface DaemonCliOptions {
  kubeconfig?: string;
  nodeName: string;
  kubeletRoot: string;
  podLogsDir: string;
  procRoot: string;
  devicePluginDir: string;
  devRoot: string;
  workers: number;
  metricsPort: number;
  nodeIp?: string;
  pkiNamespace: string;
}

const USAGE = `Usage: kubevisor daemon [options]
  --node-name NAME        this node (default: $NODE_NAME, set from spec.nodeName by the DaemonSet)
  --kubeconfig PATH       kubeconfig (default: in-cluster service account, or $KUBECONFIG)
  --kubelet-root DIR      the kubelet's root directory (default: /var/lib/kubelet)
  --pod-logs-dir DIR      where the kubelet keeps container logs (default: /var/log/pods)
  --proc-root DIR         the host's /proc: finds a VM pod's network namespace and CH process (default: /proc,
                          with hostPID)
  --device-plugin-dir DIR the kubelet's device plugin directory (default: ${DEFAULT_PLUGIN_DIR})
  --dev-root DIR          the host's /dev, as mounted in this container (default: /dev)
  --workers N             VM pods reconciled at once (default: 8)
  --node-ip IP            where other nodes reach this node's migration relay (default: $NODE_IP, set from
                          status.hostIP by the DaemonSet); without it this node cannot receive migrations
  --pki-namespace NS      namespace of the migration CA bundle (default: kubevisor-system)
  --metrics-port PORT     /metrics, /healthz, /readyz (default: 8081; 0 picks a free port)`;

export function parseDaemonArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): DaemonCliOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      'node-name': { type: 'string' },
      kubeconfig: { type: 'string' },
      'kubelet-root': { type: 'string', default: '/var/lib/kubelet' },
      'pod-logs-dir': { type: 'string', default: '/var/log/pods' },
      'proc-root': { type: 'string', default: '/proc' },
      'device-plugin-dir': { type: 'string', default: DEFAULT_PLUGIN_DIR },
      'dev-root': { type: 'string', default: '/dev' },
      'node-ip': { type: 'string' },
      'pki-namespace': { type: 'string', default: DEFAULT_PKI_NAMESPACE },
      workers: { type: 'string', default: '8' },
      'metrics-port': { type: 'string', default: '8081' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const nodeName = values['node-name'] ?? env.NODE_NAME;
  if (!nodeName) throw new Error(`--node-name or $NODE_NAME is required\n${USAGE}`);
  const num = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number ≥ ${min}, got ${v}`);
    return n;
  };
  return {
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    nodeName,
    kubeletRoot: values['kubelet-root'],
    podLogsDir: values['pod-logs-dir'],
    procRoot: values['proc-root'],
    devicePluginDir: values['device-plugin-dir'],
    devRoot: values['dev-root'],
    ...((values['node-ip'] ?? env.NODE_IP) ? { nodeIp: values['node-ip'] ?? env.NODE_IP } : {}),
    pkiNamespace: values['pki-namespace'],
    workers: num('workers', values.workers, 1),
    metricsPort: num('metrics-port', values['metrics-port'], 0),
  };
}

export async function runDaemon(o: DaemonCliOptions): Promise<void> {
  const logger = createLogger({ bindings: { component: 'daemon', node: o.nodeName } });
  const client = new KubeClient(loadKubeCredentials(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}));
  const metrics = new OperatorMetrics();
  metrics.watchClient(client);
  // This node's own migration certificate, from the controller's signer; the relay authenticates peers with it.
  const certificates = startNodeCertificates({
    api: new KubeNodeCsrApi(client, { namespace: o.pkiNamespace }),
    nodeName: o.nodeName,
    logger,
  });
  const migrations = new MigrationAgent({
    nodeName: o.nodeName,
    ...(o.nodeIp ? { nodeIp: o.nodeIp } : {}),
    credentials: async () => {
      const c = certificates.current() ?? (await certificates.ready(60_000));
      return { key: c.keyPem, cert: c.certPem, ca: c.caPem };
    },
    logger,
  });
  const daemon = new NodeDaemon({
    client,
    nodeName: o.nodeName,
    kubeletRoot: o.kubeletRoot,
    podLogsDir: o.podLogsDir,
    procRoot: o.procRoot,
    workers: o.workers,
    logger,
    metrics,
    migrations,
  });
  metrics.watchQueue('vm-pods', daemon.queue);
  const server = await startHealthServer({
    port: o.metricsPort,
    metrics,
    logger,
    readiness: [informersSynced(daemon.informers)],
  });
  logger.info('serving metrics and health', { port: server.port });
  // /dev/kvm and /dev/net/tun for VM pods without privileges: the kubelet hands them out as extended resources.
  const plugins = await startDevicePlugins({ pluginDir: o.devicePluginDir, devRoot: o.devRoot, logger });
  installSignalHandlers(
    {
      queues: [daemon.queue],
      informers: daemon.informers,
      server: { stop: () => stopAll(server, plugins, migrations, certificates) },
      client,
    },
    { logger },
  );
  await daemon.start();
  logger.info('caches synced; watching VM pods', { kubeletRoot: o.kubeletRoot });
}

async function stopAll(...parts: { stop(): Promise<void> }[]): Promise<void> {
  await Promise.all(parts.map((p) => p.stop()));
}

export async function main(argv: string[]): Promise<void> {
  await runDaemon(parseDaemonArgs(argv));
}
