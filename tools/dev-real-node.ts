/**
 * `tools/run dev --real-node` (needs root): the local demo on a real node. Starts the test control plane (no KWOK
 * nodes), a real kubelet node with containerd (test/e2e/harness/real-node.ts), imports the test image (the operator
 * image with the Cloud Hypervisor STAND-IN that boots each guest under QEMU TCG) and a guest kernel image, installs
 * kubevisor from code (the platform and node setup as the constructs synthesize them) and a VM like the `web`
 * example, then waits until the guest answers HTTP on its pod's IP and says how to reach it. Ctrl-C (through the
 * harness's signal handlers) or, with `--until-running`, the first answer tears everything down and leaves the host
 * as found.
 */
import { VirtualMachine } from '../constructs/cdk8s';
import { synthInMemory } from '../constructs/platform/render';
import { KubeClient, loadKubeconfig } from '../operator/kube';
import type { KubeObject } from '../operator/kube';
import { startControlPlane } from '../test/e2e/harness/control-plane';
import { startRealNode } from '../test/e2e/harness/real-node';
import type { RealNode } from '../test/e2e/harness/real-node';
import {
  importRealNodeImages,
  installOnRealNode,
  realNodePlatform,
  realNodeWebVm,
  waitForGuestHttp,
} from '../test/e2e/harness/real-node-platform';

const vmNamespace = 'kubevisor-demo';

/** The guest's answer as a terminal may show it: printable ASCII only, at most 200 characters. */
const printable = (text: string) => text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);

export async function realNodeDemo(options: { untilRunning: boolean; say: (line: string) => void }): Promise<void> {
  const { say } = options;
  if (process.getuid?.() !== 0) throw new Error('--real-node needs root (a kubelet, containerd, a bridge, cgroups)');
  const cp = await startControlPlane({ nodes: 0, log: say });
  const client = new KubeClient(loadKubeconfig(cp.kubeconfigPath));
  let node: RealNode | undefined;
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
    const namespaces = { platform: 'kubevisor-system', vms: vmNamespace };
    await installOnRealNode(client, node, realNodePlatform(cp.server, namespaces), namespaces);
    const created = Date.now();
    const vm = synthInMemory((chart) => new VirtualMachine(chart, 'web', realNodeWebVm(vmNamespace)))[0];
    await client.create(vm as unknown as KubeObject);
    say(`VM ${vmNamespace}/web created; waiting for its guest to answer HTTP`);
    const { podIp, answer } = await waitForGuestHttp(client, vmNamespace, 'web', 300_000);
    say(`web answered in ${Date.now() - created} ms: ${printable(answer.body.trim())}`);
    say(`try: curl http://${podIp}/   KUBECONFIG=${cp.kubeconfigPath} kubectl get vm -n ${vmNamespace}`);
    if (!options.untilRunning) {
      // The harness's signal handlers stop the node (restoring the host) and the control plane, then end the process.
      say('Ctrl-C stops everything and leaves the host as found');
      await new Promise<never>(() => setInterval(() => undefined, 60_000));
    }
  } finally {
    let stopped = true;
    await node?.stop().catch((e: unknown) => {
      stopped = false;
      say(`the node did not stop cleanly: ${String(e)}`);
    });
    client.close();
    await cp.stop();
    say(stopped ? 'stopped the node (host left as found) and the control plane' : 'stopped the control plane');
  }
}
