/**
 * kubevisor on a real node (harness/real-node.ts), as the e2e suite and `npm run dev -- --real-node` install it: the
 * test image (the operator image with the Cloud Hypervisor STAND-IN that boots each guest under QEMU TCG) and a kernel
 * image of the launch suite's guest imported into the node's containerd, the platform and node setup as the
 * constructs synthesize them, and a VM like the `web` example that boots that guest.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { KUBEVISOR_VERSION } from '../../../api';
import { Bindings, NetworkSources } from '../../../constructs';
import type { VirtualMachineProps } from '../../../constructs';
import { renderPlatform } from '../../../constructs/platform/render';
import type { ManifestObject } from '../../../constructs/platform/render';
import { httpGet } from './http-get';
import type { HttpAnswer } from './http-get';
import type { KubeClient, KubeObject } from './kube-client';
import { buildKernelImage } from './oci-images';
import { REAL_NODE_LABEL, REAL_NODE_TOLERATION } from './real-node';
import type { RealNode } from './real-node';
import { waitFor } from './wait';

/* eslint-disable @typescript-eslint/no-explicit-any -- status fields of built-in kinds, read loosely */
type Json = Record<string, any>;

const root = path.resolve(__dirname, '../../..');
/** The test image's name in the node's containerd: what the platform's `image` prop names. */
export const TEST_IMAGE = `ghcr.io/kubevisor/kubevisor:${KUBEVISOR_VERSION}-test`;
/** The guest kernel image (/vmlinux and /initrd: the launch suite's guest fixture). */
export const GUEST_KERNEL_IMAGE = 'kubevisor.local/e2e-guest-kernel:1';

const build = (args: string[]) =>
  execFileSync('bash', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 1_200_000 });

/**
 * Builds (cached: seconds when nothing changed) the test image and the guest fixture, and imports them into the
 * node's containerd as {@link TEST_IMAGE} and {@link GUEST_KERNEL_IMAGE}.
 */
export async function importRealNodeImages(node: RealNode): Promise<void> {
  build(['tools/image/build.sh', '--test-standin']);
  const guestDir = build(['tools/guest/build.sh']).trim().split('\n').pop() ?? '';
  const work = path.join(node.dir, 'kubevisor-images');
  fs.mkdirSync(work, { recursive: true });
  await node.importImage(path.join(root, `dist/image/kubevisor-${KUBEVISOR_VERSION}-test.oci.tar`), TEST_IMAGE);
  const kernel = buildKernelImage(work, path.join(guestDir, 'vmlinuz'), path.join(guestDir, 'initramfs.cpio.gz'));
  await node.importImage(kernel, GUEST_KERNEL_IMAGE);
}

/**
 * The platform and node setup for the real node, as the constructs synthesize them, with one adaptation to the test
 * cluster: it runs no kube-proxy (no Service IPs) and its API server listens on the host's loopback only, so the
 * operator's pods use the host network and are told the API server's address, as the in-cluster config reads it. A
 * real cluster needs neither.
 */
export function realNodePlatform(server: string, namespaces: { platform: string; vms: string }): ManifestObject[] {
  const objects = renderPlatform(
    {
      namespace: namespaces.platform,
      image: TEST_IMAGE,
      imagePullPolicy: 'Never',
      controller: {
        replicas: 1,
        watchNamespace: namespaces.vms,
        nodeSelector: { [REAL_NODE_LABEL]: 'true' },
        tolerations: [REAL_NODE_TOLERATION],
      },
    },
    // These machines have no /lib/modules (their kernel's modules are built in or already loaded).
    { nodeSelector: { [REAL_NODE_LABEL]: 'true' }, loadModules: false },
  );
  const api = new URL(server);
  return objects.map((o) => {
    if (o.kind !== 'Deployment' && o.kind !== 'DaemonSet') return o;
    const copy = structuredClone(o) as Json;
    const spec = copy.spec.template.spec;
    spec.hostNetwork = true;
    spec.dnsPolicy = 'ClusterFirstWithHostNet';
    for (const c of spec.containers as Json[]) {
      c.env = [
        ...(c.env ?? []),
        { name: 'KUBERNETES_SERVICE_HOST', value: api.hostname },
        { name: 'KUBERNETES_SERVICE_PORT', value: api.port },
      ];
    }
    return copy as ManifestObject;
  });
}

/**
 * Applies `objects` ({@link realNodePlatform}), creates the VM namespace (Pod Security `baseline`) and waits until the
 * controller, the daemon and node setup are Ready on the node and its KVM and TUN devices allocatable. Returns the
 * operator's pods on the node.
 */
export async function installOnRealNode(
  client: KubeClient,
  node: RealNode,
  objects: readonly ManifestObject[],
  namespaces: { platform: string; vms: string },
): Promise<Json[]> {
  for (const o of objects)
    await client.apply(o as unknown as KubeObject, { fieldManager: 'kubevisor-e2e', force: true });
  await client.apply({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: namespaces.vms, labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } },
  });
  // Node setup labels the node for VMs; the daemon then runs there and registers its device plugins.
  const pods = await waitFor(
    'controller, daemon and node setup Ready on the real node, /dev/kvm and /dev/net/tun allocatable',
    async () => {
      const onNode = (await client.list<KubeObject & Json>('v1', 'Pod', { namespace: namespaces.platform })).filter(
        (p) => p.spec.nodeName === node.nodeName,
      );
      const ready = onNode
        .filter((p) => p.status?.conditions?.some((c: Json) => c.type === 'Ready' && c.status === 'True'))
        .map((p) => p.metadata.labels?.['app.kubernetes.io/component'] as string);
      const allocatable = (await client.get<KubeObject & Json>('v1', 'Node', node.nodeName)).status?.allocatable ?? {};
      const state = {
        ready: ready.sort(),
        kvm: allocatable['devices.kubevisor.io/kvm'],
        tun: allocatable['devices.kubevisor.io/tun'],
      };
      // Quantities as the API server writes them ("1k"): any that is not zero.
      const some = (q: string | undefined) => q !== undefined && /^[1-9]/.test(q);
      return state.ready.join(',') === 'controller,daemon,node-setup' && some(state.kvm) && some(state.tun)
        ? onNode
        : Promise.reject(new Error(JSON.stringify(state)));
    },
    { timeoutMs: 180_000, intervalMs: 500 },
  );
  return pods;
}

/** The VM: the `web` example's shape (masquerade 80 and 22, cloud-init, readiness probe), booting the guest fixture. */
export function realNodeWebVm(namespace: string): VirtualMachineProps {
  return {
    metadata: { name: 'web', namespace, labels: { app: 'web' } },
    runPolicy: 'Always',
    cpu: { sockets: 1, coresPerSocket: 1 },
    memory: { size: '256Mi' },
    kernel: {
      image: GUEST_KERNEL_IMAGE,
      imagePullPolicy: 'Never',
      initrd: true,
      // kv.then=stay: the guest serves HTTP until it is powered off, reset or stopped.
      // kv.http=8080: the guest also answers on 8080, which masquerade does not forward, so a refusal there is the
      // pod's (for an hour: kv.hold).
      cmdline: 'console=ttyS0 tsc_early_khz=2000000 tsc=reliable panic=-1 quiet kv.then=stay kv.http=8080 kv.hold=3600',
    },
    disks: [{ name: 'cloudinit' }],
    volumes: [{ name: 'cloudinit', cloudInit: { userData: '#cloud-config\nhostname: web\n' } }],
    interfaces: [{ name: 'pod', ...Bindings.masquerade({ ports: [{ port: 80 }, { port: 22 }] }) }],
    networks: [{ name: 'pod', ...NetworkSources.pod() }],
    readinessProbe: { httpGet: { port: 80, path: '/' }, periodSeconds: 2 },
    nodeSelector: { [REAL_NODE_LABEL]: 'true' },
    tolerations: [REAL_NODE_TOLERATION],
    // The stand-in's own cost, which a real Cloud Hypervisor does not have: Node.js (~115 MiB) running the stand-in
    // and QEMU TCG (~250 MiB) emulating the guest. Added to what kubevisor computes for the guest and the VMM.
    resources: { requests: { memory: '384Mi' } },
  };
}

/**
 * Waits until VM `name`'s guest answers HTTP 200 on its pod's IP, port 80 (the pod as the VM's status names it) with
 * the page it serves once its cloud-init meta-data named it (before that, it answers `hostname=(none) instance-id=`).
 * Returns the pod, its IP and the answer.
 */
export async function waitForGuestHttp(
  client: KubeClient,
  namespace: string,
  name: string,
  timeoutMs: number,
): Promise<{ pod: Json; podIp: string; answer: HttpAnswer }> {
  return waitFor(
    `VM ${namespace}/${name}'s guest to answer HTTP on its pod IP, port 80`,
    async () => {
      const vm = await client.get<KubeObject & Json>('kubevisor.io/v1alpha1', 'VirtualMachine', name, namespace);
      const podName = vm.status?.vmPodName as string | undefined;
      const pod = podName ? await client.tryGet<KubeObject & Json>('v1', 'Pod', podName, namespace) : undefined;
      const podIp = pod?.status?.podIP as string | undefined;
      if (!pod || !podIp) throw new Error(`VM ${String(vm.status?.phase)}, pod ${String(podName)}`);
      const answer = await httpGet(`http://${podIp}/`, 2_000);
      return answer.status === 200 && /instance-id=\S/.test(answer.body)
        ? { pod, podIp, answer }
        : Promise.reject(new Error(`HTTP ${answer.status}: ${answer.body.slice(0, 200)}`));
    },
    { timeoutMs, intervalMs: 100 },
  );
}
