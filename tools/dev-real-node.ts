/**
 * `npm run dev -- --real-node` (needs root): the local demo on a real node. Starts the test control plane (no KWOK
 * nodes), a real kubelet node with containerd (test/e2e/harness/real-node.ts), imports the test image (the operator
 * image with the Cloud Hypervisor STAND-IN that boots each guest under QEMU TCG) and a guest kernel image, installs
 * kubevisor from code (the platform and node setup as the constructs synthesize them) and a VM like the `web`
 * example, then waits until the guest answers HTTP on its pod's IP and says how to reach it. Ctrl-C (or, with
 * `--until-running`, the first answer) tears everything down and leaves the host as found.
 */
import { VirtualMachine } from '../constructs/cdk8s';
import { synthInMemory } from '../constructs/platform/render';
import { KubeClient, loadKubeconfig } from '../operator/kube';
import type { KubeObject } from '../operator/kube';
import { startControlPlane } from '../test/e2e/harness/control-plane';
import { startRealNode } from '../test/e2e/harness/real-node';
import type { RealNode } from '../test/e2e/harness/real-node';
import {
  httpGet,
  importRealNodeImages,
  installOnRealNode,
  realNodeWebVm,
} from '../test/e2e/harness/real-node-platform';
import { waitFor } from '../test/e2e/harness/wait';

/* eslint-disable @typescript-eslint/no-explicit-any -- status fields read loosely */
type Json = Record<string, any>;

const vmNamespace = 'kubevisor-demo';

export async function realNodeDemo(options: { untilRunning: boolean; say: (line: string) => void }): Promise<void> {
  const { say } = options;
  if (process.getuid?.() !== 0) throw new Error('--real-node needs root (a kubelet, containerd, a bridge, cgroups)');
  const cp = await startControlPlane({ nodes: 0, log: say });
  const client = new KubeClient(loadKubeconfig(cp.kubeconfigPath));
  let node: RealNode | undefined;
  let stopping: Promise<void> | undefined;
  const teardown = () =>
    (stopping ??= (async () => {
      await node?.stop().catch((e: unknown) => say(`node stop: ${String(e)}`));
      client.close();
      await cp.stop();
      say('stopped the node (host left as found) and the control plane');
    })());
  let interrupted: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (interrupted = resolve));
  process.once('SIGINT', () => interrupted());
  process.once('SIGTERM', () => interrupted());
  try {
    node = await startRealNode({
      controlPlane: {
        server: cp.server,
        caPem: cp.caPem,
        caCertPath: cp.caCertPath,
        caKeyPath: cp.caKeyPath,
        client: () => new KubeClient(loadKubeconfig(cp.kubeconfigPath)),
      },
      log: say,
    });
    say('building and importing the test image and the guest kernel image');
    await importRealNodeImages(node);
    say('installing kubevisor from code (platform and node setup)');
    await installOnRealNode(client, node, cp.server, { platform: 'kubevisor-system', vms: vmNamespace });
    const created = Date.now();
    const vm = synthInMemory((chart) => new VirtualMachine(chart, 'web', realNodeWebVm(vmNamespace)))[0];
    await client.create(vm as unknown as KubeObject);
    say(`VM ${vmNamespace}/web created; waiting for its guest to answer HTTP`);
    const { ip, body } = await waitFor(
      'the guest to answer HTTP on its pod IP',
      async () => {
        const v = await client.get<KubeObject & Json>('kubevisor.io/v1alpha1', 'VirtualMachine', 'web', vmNamespace);
        const podName = v.status?.vmPodName as string | undefined;
        const pod = podName ? await client.tryGet<KubeObject & Json>('v1', 'Pod', podName, vmNamespace) : undefined;
        const podIp = pod?.status?.podIP as string | undefined;
        if (!podIp) throw new Error(`VM ${String(v.status?.phase)}`);
        const answer = await httpGet(`http://${podIp}/`, 2_000);
        return { ip: podIp, body: answer.body.trim() };
      },
      { timeoutMs: 300_000, intervalMs: 250 },
    );
    say(`web answered in ${Date.now() - created} ms: ${body}`);
    say(`try: curl http://${ip}/   KUBECONFIG=${cp.kubeconfigPath} kubectl get vm -n ${vmNamespace}`);
    if (!options.untilRunning) {
      say('Ctrl-C stops everything');
      await stopped;
    }
  } finally {
    await teardown();
  }
}
