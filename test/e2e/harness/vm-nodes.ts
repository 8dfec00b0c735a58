/**
 * KWOK nodes that run VM pods: on each, the kubelet stand-in (harness/kubelet-standin.ts: pod directories, the CH
 * stand-in, DHCP leases), the kubelet's device-plugin registration stand-in, and a real `kubevisor daemon` process
 * with its own identity (a token bound to a daemon pod on that node, under the daemon's RBAC only).
 */
import path from 'node:path';
import { KubeletRegistrationStandin } from '../../support/kubelet-registration-standin';
import type { KubeClient } from './kube-client';
import { writeTokenKubeconfig } from './kubeconfig';
import { KubeletStandin } from './kubelet-standin';
import { nodeIdentity, type NodeIdentity } from './node-identity';
import { startOperatorProcess, type OperatorProcess } from './operator-process';
import type { SharedControlPlaneInfo } from './shared';

export interface VmNode {
  name: string;
  kubelet: KubeletStandin;
  registration: KubeletRegistrationStandin;
  identity: NodeIdentity;
  kubeconfig: string;
  daemon: OperatorProcess;
}

/** Starts (or restarts) the node daemon of a node, as its DaemonSet pod would run it. */
export function startDaemon(n: Omit<VmNode, 'daemon'>): Promise<OperatorProcess> {
  return startOperatorProcess('daemon', [
    '--device-plugin-dir',
    path.dirname(n.registration.socketPath),
    '--node-ip',
    '127.0.0.1',
    '--node-name',
    n.name,
    '--kubeconfig',
    n.kubeconfig,
    '--kubelet-root',
    n.kubelet.kubeletRoot,
    '--pod-logs-dir',
    n.kubelet.podLogsDir,
    '--metrics-port',
    '0',
  ]);
}

/**
 * Starts the stand-ins and a daemon on each node, in `root/<node>`. The daemon identity must be installed first
 * (node-identity.ts installDaemonIdentity). Nodes started before a failure are pushed to `into`, so the caller's
 * afterAll stops them too.
 */
export async function startVmNodes(
  client: KubeClient,
  info: SharedControlPlaneInfo,
  root: string,
  into: VmNode[] = [],
): Promise<VmNode[]> {
  for (const name of info.nodeNames) {
    const kubelet = new KubeletStandin({ client, nodeName: name, root: path.join(root, name) });
    await kubelet.start();
    const registration = await KubeletRegistrationStandin.start({ pluginDir: path.join(root, name, 'device-plugins') });
    const identity = await nodeIdentity(client, name);
    const kubeconfig = path.join(root, name, 'daemon.kubeconfig');
    writeTokenKubeconfig(kubeconfig, { server: info.server, caPem: info.caPem, token: identity.token });
    const node = { name, kubelet, registration, identity, kubeconfig };
    into.push({ ...node, daemon: await startDaemon(node) });
  }
  return into;
}

/** Stops daemons, then stand-ins, then removes the node identities (each step for every node, failures reported). */
export async function stopVmNodes(nodes: readonly VmNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.daemon.stop()));
  await Promise.all(nodes.map((n) => n.kubelet.stop()));
  await Promise.all(nodes.map((n) => n.registration.stop()));
  await Promise.all(nodes.map((n) => n.identity.remove()));
}
