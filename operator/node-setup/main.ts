/**
 * `kubevisor node-setup`: prepares this node to host VMs and says so on its Node (labels VM pods and the node daemon
 * select; an annotation with what was found), then checks again every --recheck seconds until SIGTERM. One per node
 * (the NodeSetup DaemonSet, privileged for modprobe and /sys).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { KubeClient, createLogger, loadKubeCredentials } from '../kube';
import { NODE_SETUP_LIMITS } from '../../constructs/platform/limits';
import { nodePatch, setupPass } from './setup';

const USAGE = `Usage: kubevisor node-setup [options]
  --node-name NAME        this node (default: $NODE_NAME, set from spec.nodeName by the DaemonSet)
  --kubeconfig PATH       kubeconfig (default: in-cluster service account, or $KUBECONFIG)
  --load-modules          load kvm, kvm_intel/kvm_amd, tun, vhost_net when their devices are missing (default)
  --no-load-modules       never load modules
  --hugepages-2mi N       reserve N 2 MiB hugepages (default: leave as is)
  --hugepages-1gi N       reserve N 1 GiB hugepages (default: leave as is)
  --recheck SECONDS       check again this often (default: 300)
  --once                  one pass, then exit (0 when the node can host VMs, 1 otherwise)
  --dev-root DIR, --sys-root DIR, --proc-root DIR
                          the host's /dev, /sys, /proc (default: /dev, /sys, /proc)`;

export interface NodeSetupCliOptions {
  kubeconfig?: string;
  nodeName: string;
  loadModules: boolean;
  hugepages2Mi?: number;
  hugepages1Gi?: number;
  recheckSeconds: number;
  once: boolean;
  devRoot: string;
  sysRoot: string;
  procRoot: string;
}

export function parseNodeSetupArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): NodeSetupCliOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      'node-name': { type: 'string' },
      kubeconfig: { type: 'string' },
      'load-modules': { type: 'boolean', default: true },
      'no-load-modules': { type: 'boolean', default: false },
      'hugepages-2mi': { type: 'string' },
      'hugepages-1gi': { type: 'string' },
      recheck: { type: 'string', default: '300' },
      once: { type: 'boolean', default: false },
      'dev-root': { type: 'string', default: '/dev' },
      'sys-root': { type: 'string', default: '/sys' },
      'proc-root': { type: 'string', default: '/proc' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const nodeName = values['node-name'] ?? env.NODE_NAME;
  if (!nodeName) throw new Error(`--node-name or $NODE_NAME is required\n${USAGE}`);
  const num = (name: string, v: string | undefined, min: number, max: number) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max)
      throw new Error(`--${name} must be a whole number from ${min} to ${max}, got ${v}`);
    return n;
  };
  const l = NODE_SETUP_LIMITS;
  const hugepages2Mi = num('hugepages-2mi', values['hugepages-2mi'], l.hugepages2Mi.min, l.hugepages2Mi.max);
  const hugepages1Gi = num('hugepages-1gi', values['hugepages-1gi'], l.hugepages1Gi.min, l.hugepages1Gi.max);
  return {
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    nodeName,
    loadModules: values['load-modules'] && !values['no-load-modules'],
    ...(hugepages2Mi !== undefined ? { hugepages2Mi } : {}),
    ...(hugepages1Gi !== undefined ? { hugepages1Gi } : {}),
    recheckSeconds: num('recheck', values.recheck, l.recheckSeconds.min, l.recheckSeconds.max)!,
    once: values.once,
    devRoot: values['dev-root'],
    sysRoot: values['sys-root'],
    procRoot: values['proc-root'],
  };
}

export async function main(argv: string[]): Promise<void> {
  const o = parseNodeSetupArgs(argv);
  const logger = createLogger({ bindings: { component: 'node-setup', node: o.nodeName } });
  const client = new KubeClient(loadKubeCredentials(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}));
  const stop = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop.abort());
  try {
    for (;;) {
      try {
        const report = await setupPass(o);
        await client.patch(
          { apiVersion: 'v1', kind: 'Node', metadata: { name: o.nodeName } },
          'merge',
          nodePatch(report),
        );
        logger.info(report.ready ? 'node ready for VMs' : 'node cannot host VMs', { ...report });
        if (o.once) {
          process.exitCode = report.ready ? 0 : 1;
          return;
        }
      } catch (error) {
        // The next pass tries again; the node keeps its last labels meanwhile.
        logger.error('node setup pass failed', { error });
        if (o.once) throw error;
      }
      await sleep(o.recheckSeconds * 1000, undefined, { signal: stop.signal }).catch(() => undefined);
      if (stop.signal.aborted) return;
    }
  } finally {
    client.close();
  }
}
