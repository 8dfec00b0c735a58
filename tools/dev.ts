/**
 * `npm run dev`: the local demo. Starts the test control plane (real kube-apiserver, scheduler, controller-manager
 * and KWOK fake nodes), installs the CRDs and the example VMs, runs the controller and one node daemon per node (with
 * the e2e suite's kubelet stand-in and Cloud Hypervisor stand-in, since KWOK runs no containers), and shows the VMs'
 * phases and guest addresses live until Ctrl-C, which tears everything down. `--until-running` exits once every
 * example is Running (for scripts). `--real-node` (root) runs a real kubelet node instead and a VM whose guest answers
 * HTTP (tools/dev-real-node.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { VirtualMachineStatus } from '../api';
import { renderVirtualMachine } from '../constructs';
import { realNodeDemo } from './dev-real-node';
import { Informer, KubeClient, loadKubeconfig } from '../operator/kube';
import type { KubeObject } from '../operator/kube';
import { EXAMPLES, EXAMPLE_NAMESPACE } from '../stacks/examples';
import { startControlPlane } from '../test/e2e/harness/control-plane';
import { startController, startOperatorProcess, type OperatorProcess } from '../test/e2e/harness/operator-process';
import { installCrds } from '../test/e2e/harness/crds';
import { KubeletStandin } from '../test/e2e/harness/kubelet-standin';
import { writeTokenKubeconfig } from '../test/e2e/harness/kubeconfig';
import { installDaemonIdentity, nodeIdentity } from '../test/e2e/harness/node-identity';

type Vm = KubeObject & { status?: VirtualMachineStatus };

const { values } = parseArgs({
  options: {
    'until-running': { type: 'boolean', default: false },
    nodes: { type: 'string', default: '3' },
    'real-node': { type: 'boolean', default: false },
  },
});
const say = (line: string) => process.stderr.write(`dev: ${line}\n`);

function table(vms: Vm[]): string {
  const rows = [['NAMESPACE', 'NAME', 'PHASE', 'READY', 'NODE', 'GUEST IP', 'POD', 'RESTARTS']];
  for (const v of vms.sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!))) {
    const s = v.status ?? {};
    rows.push([
      v.metadata.namespace ?? '',
      v.metadata.name ?? '',
      s.phase ?? '-',
      s.conditions?.find((c) => c.type === 'Ready')?.status ?? '-',
      s.nodeName ?? '-',
      s.interfaces?.[0]?.ipAddresses?.[0] ?? '-',
      s.vmPodName ?? '-',
      String(s.restarts ?? 0),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ')).join('\n');
}

/**
 * What the examples expect of a cluster that KWOK cannot fake by itself: the `db` example boots from PVC `db-root`
 * and selects nodes labelled kubevisor.io/storage=local. (Its Multus network is not checked by the fake nodes.)
 */
async function demoPrerequisites(client: KubeClient, node: string): Promise<void> {
  await client.apply({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: 'demo-db-root' },
    spec: {
      capacity: { storage: '10Gi' },
      accessModes: ['ReadWriteMany'],
      storageClassName: '',
      nfs: { server: '192.0.2.1', path: '/db-root' },
      claimRef: { namespace: EXAMPLE_NAMESPACE, name: 'db-root' },
    },
  });
  await client.apply({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'db-root', namespace: EXAMPLE_NAMESPACE },
    spec: {
      accessModes: ['ReadWriteMany'],
      storageClassName: '',
      volumeName: 'demo-db-root',
      resources: { requests: { storage: '10Gi' } },
    },
  });
  await client.patch({ apiVersion: 'v1', kind: 'Node', metadata: { name: node } }, 'merge', {
    metadata: { labels: { 'kubevisor.io/storage': 'local' } },
  });
}

async function main(): Promise<void> {
  const cp = await startControlPlane({ nodes: Number(values.nodes), log: say });
  const client = new KubeClient(loadKubeconfig(cp.kubeconfigPath));
  const abort = new AbortController();
  const root = mkdtempSync(join(tmpdir(), 'kubevisor-dev-'));
  const processes: OperatorProcess[] = [];
  const kubelets: KubeletStandin[] = [];
  let stopping: Promise<void> | undefined;
  const teardown = () =>
    (stopping ??= (async () => {
      abort.abort();
      await Promise.all(processes.map((p) => p.stop()));
      await Promise.all(kubelets.map((k) => k.stop()));
      client.close();
      await cp.stop();
      rmSync(root, { recursive: true, force: true });
      say('stopped the controller, the node daemons and the control plane');
    })());
  process.once('SIGINT', () => void teardown().then(() => process.exit(0)));
  process.once('SIGTERM', () => void teardown().then(() => process.exit(0)));
  try {
    await installCrds(client);
    await demoPrerequisites(client, cp.nodeNames[0]);
    for (const [name, props] of Object.entries(EXAMPLES))
      await client.apply(renderVirtualMachine(name, props) as unknown as KubeObject);
    const controller = await startController(cp.kubeconfigPath);
    processes.push(controller);
    // One node daemon per KWOK node, as the DaemonSet would run it: its own token, bound to a pod on its node.
    await installDaemonIdentity(client);
    for (const node of cp.nodeNames) {
      const kubelet = new KubeletStandin({ client, nodeName: node, root: join(root, node) });
      await kubelet.start();
      kubelets.push(kubelet);
      const identity = await nodeIdentity(client, node);
      const kubeconfig = join(root, node, 'daemon.kubeconfig');
      writeTokenKubeconfig(kubeconfig, { server: cp.server, caPem: cp.caPem, token: identity.token });
      processes.push(
        await startOperatorProcess('daemon', [
          ...['--node-name', node, '--node-ip', '127.0.0.1', '--kubeconfig', kubeconfig, '--metrics-port', '0'],
          ...['--kubelet-root', kubelet.kubeletRoot, '--pod-logs-dir', kubelet.podLogsDir],
          ...['--device-plugin-dir', join(root, node, 'device-plugins')],
        ]),
      );
    }
    say(`control plane up; try: KUBECONFIG=${cp.kubeconfigPath} kubectl get vm -A`);
    say(
      `controller log: ${controller.logFile}; daemon logs: ${processes
        .slice(1)
        .map((p) => p.logFile)
        .join(' ')}`,
    );
    say('Ctrl-C stops everything');

    let last = '';
    const informer = new Informer<Vm>({ client, path: '/apis/kubevisor.io/v1alpha1/virtualmachines' });
    const show = () => {
      const vms = informer.list();
      const text = table(vms);
      if (text !== last) {
        last = text;
        process.stdout.write(`\n${new Date().toISOString()}\n${text}\n`);
      }
      return vms;
    };
    await new Promise<void>((resolve) => {
      const changed = () => {
        const vms = show();
        if (values['until-running'] && vms.length > 0 && vms.every((v) => v.status?.phase === 'Running')) resolve();
      };
      informer.onAdd(changed);
      informer.onUpdate(changed);
      informer.onDelete(changed);
      abort.signal.addEventListener('abort', () => resolve());
      if (values['until-running']) {
        setTimeout(() => {
          const waiting = informer.list().filter((v) => v.status?.phase !== 'Running');
          say(`not all VMs Running after 120 s: ${waiting.map((v) => v.metadata.name).join(', ')}`);
          process.exitCode = 1;
          resolve();
        }, 120_000).unref();
      }
      informer.start();
    });
    await informer.stop();
  } finally {
    await teardown();
  }
}

(values['real-node'] ? realNodeDemo({ untilRunning: values['until-running'], say }) : main()).catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
