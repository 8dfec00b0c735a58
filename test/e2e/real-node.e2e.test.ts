/**
 * The real kubelet node (harness/real-node.ts): containerd and a real kubelet join the e2e control plane, run pods
 * from a locally built image (busybox, packed with umoci here; no registry) on the CNI bridge, serve their logs through
 * the API server, reach each other and the host over the bridge, clean up after deletion, and stop() leaves the host
 * exactly as a snapshot taken before the start (harness/host-state.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { startDevicePlugins } from '../../operator/daemon/device-plugin';
import { KVM_RESOURCE, TUN_RESOURCE } from '../../operator/pod-layout';
import { httpGet } from './harness/http-get';
import { buildBusyboxImage } from './harness/oci-images';
import { diffHostState, newKernelModules, snapshotHostState } from './harness/host-state';
import type { HostState } from './harness/host-state';
import type { KubeClient, KubeObject } from './harness/kube-client';
import {
  REAL_NODE_LABEL,
  REAL_NODE_TAINT,
  REAL_NODE_TOLERATION,
  reapOrphanNodes,
  startRealNode,
} from './harness/real-node';
import type { RealNode } from './harness/real-node';
import { sharedControlPlane } from './harness/shared';
import { waitFor } from './harness/wait';

const namespace = 'real-node-e2e';
const imageName = 'kubevisor.local/e2e-busybox:1';

interface Pod extends KubeObject {
  spec: {
    nodeName?: string;
    containers: {
      name: string;
      image: string;
      imagePullPolicy: string;
      command: string[];
      resources?: { limits?: Record<string, string> };
    }[];
  };
  status?: { phase?: string; podIP?: string; hostIP?: string };
}

interface NodeObject extends KubeObject {
  spec?: { taints?: { key: string; value?: string; effect: string }[] };
  status?: {
    addresses?: { type: string; address: string }[];
    allocatable?: Record<string, string>;
    nodeInfo?: { kubeletVersion?: string };
  };
}

let admin: KubeClient;
let node: RealNode | undefined;
let before: HostState;
let failed = false;
let podRunningMs = 0;

/** Runs a test body; on failure prints the node's log tails and keeps its logs for inspection. */
async function withNodeLogs(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    failed = true;
    if (node) process.stderr.write(`real-node: test failed; logs in ${node.logDir}\n${node.logTails(60)}\n`);
    throw error;
  }
}

function pod(name: string, nodeName: string, script: string, restartPolicy: 'Always' | 'Never'): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      // Through the scheduler (a selector, not nodeName), which must honour the node's taint.
      nodeSelector: { 'kubernetes.io/hostname': nodeName, [REAL_NODE_LABEL]: 'true' },
      tolerations: [REAL_NODE_TOLERATION],
      restartPolicy,
      // busybox as PID 1 ignores SIGTERM: bound the wait for SIGKILL.
      terminationGracePeriodSeconds: 1,
      containers: [{ name, image: imageName, imagePullPolicy: 'Never', command: ['/bin/busybox', 'sh', '-c', script] }],
    },
  } as Pod;
}

function inSubnet(ipAddress: string, subnet: string): boolean {
  return ipAddress.split('.').slice(0, 3).join('.') === subnet.split('.').slice(0, 3).join('.');
}

beforeAll(async () => {
  admin = sharedControlPlane();
  // What a run killed outright left is undone first, so the snapshot is of the host as it is without any node.
  reapOrphanNodes();
  before = snapshotHostState();
  node = await startRealNode();
  await withNodeLogs(async () => {
    // In the node's dir, which every teardown removes (also after Ctrl-C or a killed run).
    const workDir = path.join((node as RealNode).dir, 'e2e-image');
    fs.mkdirSync(workDir);
    const stored = await (node as RealNode).importImage(buildBusyboxImage(workDir), imageName);
    expect(stored).toBe(imageName);
    await admin.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    await waitFor(
      `ServiceAccount default in ${namespace}`,
      async () => ((await admin.tryGet('v1', 'ServiceAccount', 'default', namespace)) ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  });
}, 240_000);

afterAll(async () => {
  await node?.stop({ keepLogs: failed }).catch((error: unknown) => process.stderr.write(`${String(error)}\n`));
  await admin.delete('v1', 'Namespace', namespace, undefined, { ignoreNotFound: true }).catch(() => undefined);
  admin.close();
});

test('the node registers Ready, tainted, labelled, with the bridge address and the control plane version', async () => {
  await withNodeLogs(async () => {
    const real = node as RealNode;
    const object = await admin.get<NodeObject>('v1', 'Node', real.nodeName);
    expect(object.spec?.taints).toContainEqual(REAL_NODE_TAINT);
    expect(object.metadata.labels?.[REAL_NODE_LABEL]).toBe('true');
    // No KWOK annotation: KWOK leaves the node to its kubelet.
    expect(Object.keys(object.metadata.annotations ?? {}).filter((k) => k.startsWith('kwok.x-k8s.io'))).toEqual([]);
    expect(object.status?.addresses).toContainEqual({ type: 'InternalIP', address: real.gateway });
    expect(object.status?.nodeInfo?.kubeletVersion).toBe('v1.35.8');
    // The device-plugin registration socket where kubevisor's daemon looks, in the node's own /var/lib/kubelet.
    expect(fs.lstatSync(path.join(real.kubeletRootDir, 'device-plugins', 'kubelet.sock')).isSocket()).toBe(true);
    expect(fs.existsSync('/var/lib/kubelet/device-plugins/kubelet.sock')).toBe(
      before.paths['/var/lib/kubelet'] !== null,
    );
  });
});

test('pods from a locally imported image run on the CNI bridge, log through the API and reach each other', async () => {
  await withNodeLogs(async () => {
    const real = node as RealNode;

    const createdAt = Date.now();
    await admin.create(
      pod(
        'web',
        real.nodeName,
        'echo "web: hello from $(hostname)"; mkdir -p /www; echo real-node-ok > /www/index.html; ' +
          'exec /bin/busybox httpd -f -p 8080 -h /www',
        'Always',
      ),
    );
    const web = await waitFor(
      'pod web Running',
      async () => {
        const p = await admin.get<Pod>('v1', 'Pod', 'web', namespace);
        return p.status?.phase === 'Running' && p.status.podIP ? p : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    podRunningMs = Date.now() - createdAt;
    const webIp = web.status?.podIP ?? '';
    expect(web.spec.nodeName).toBe(real.nodeName);
    expect({ webIp, inBridgeSubnet: inSubnet(webIp, real.subnet) }).toEqual({ webIp, inBridgeSubnet: true });
    expect(web.status?.hostIP).toBe(real.gateway);

    // The container log through the API server → kubelet (its client certificate, the node's InternalIP).
    const webLog = await waitFor(
      'web log',
      async () => {
        const text = await admin.request<string>('GET', `/api/v1/namespaces/${namespace}/pods/web/log`);
        return text.includes('web: hello from web') ? text : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    expect(webLog).toContain('web: hello from web');

    // Host → pod over the bridge.
    const fromHost = await waitFor('HTTP from the host to web', () => httpGet(`http://${webIp}:8080/`), {
      timeoutMs: 20_000,
      intervalMs: 200,
    });
    expect(fromHost).toEqual({ status: 200, body: 'real-node-ok\n' });

    // Pod → pod over the bridge.
    // nc, not wget: Debian 12's static busybox wget crashes (SIGSEGV) on any URL.
    const request = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 5 ${webIp} 8080`;
    await admin.create(pod('client', real.nodeName, request, 'Never'));
    const client = await waitFor(
      'pod client to complete',
      async () => {
        const p = await admin.get<Pod>('v1', 'Pod', 'client', namespace);
        return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    const clientLog = await admin.request<string>('GET', `/api/v1/namespaces/${namespace}/pods/client/log`);
    expect({ phase: client.status?.phase, clientLog }).toMatchObject({ phase: 'Succeeded' });
    expect(client.status?.podIP === webIp).toBe(false);
    // The container log keeps lines, not carriage returns.
    expect(clientLog).toMatch(/^HTTP\/1\.[01] 200 OK\n(.+\n)+\nreal-node-ok\n$/);

    // While pods run, the host shows only what the node cannot keep in its namespaces — its bridge and the pods'
    // veths, its cgroups and processes, the kubelet's iptables chains and sysctls — and nothing on the host's
    // kubelet, containerd or CNI paths, no host mount and no pinned network namespace (so the snapshot is no
    // vacuous comparison: it sees the node when there is one).
    const during = diffHostState(before, snapshotHostState());
    const kinds = new Set(during.map((line) => line.split(/[ :]/)[0]));
    expect(during).toEqual(
      expect.arrayContaining([
        `link: + ${real.bridge} bridge`,
        expect.stringMatching(/^link: \+ veth\w+ veth$/),
        expect.stringMatching(/^cgroup: \+ \/sys\/fs\/cgroup\/.*kubevisor-rn-/),
        'process: + kubelet',
        'process: + containerd',
        expect.stringMatching(/^iptables filter: \+ -N KUBE-FIREWALL$/),
      ]),
    );
    for (const kind of ['path', 'mount', 'netns'])
      expect({ kind, seen: kinds.has(kind) }).toEqual({ kind, seen: false });

    // Deletion: the pods go from the API, their containers stop, their IPs, veths, mounts and dirs go.
    for (const name of ['web', 'client']) await admin.delete('v1', 'Pod', name, namespace);
    await waitFor(
      'pods gone from the API',
      async () => ((await admin.list('v1', 'Pod', { namespace })).length === 0 ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    await waitFor(
      'the node to clean up after the pods',
      async () => {
        const left = await real.podLeftovers();
        return left.length === 0 ? true : Promise.reject(new Error(left.join('; ')));
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  });
});

test("kubevisor's device plugins register with the real kubelet, and a pod gets /dev/kvm and /dev/net/tun", async () => {
  await withNodeLogs(async () => {
    const real = node as RealNode;
    // As kubevisor's daemon would from its pod (hostPath /var/lib/kubelet): the node's own device-plugin dir.
    const plugins = await startDevicePlugins({ pluginDir: path.join(real.kubeletRootDir, 'device-plugins') });
    try {
      await waitFor(
        'kvm and tun in the node allocatable',
        async () => {
          const allocatable = (await admin.get<NodeObject>('v1', 'Node', real.nodeName)).status?.allocatable ?? {};
          // 1000 devices each, as the API server writes the quantity.
          return allocatable[KVM_RESOURCE] === '1k' && allocatable[TUN_RESOURCE] === '1k' ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      const devices = pod('devices', real.nodeName, '/bin/busybox ls -l /dev/kvm /dev/net/tun', 'Never');
      const container = devices.spec.containers[0];
      if (container) container.resources = { limits: { [KVM_RESOURCE]: '1', [TUN_RESOURCE]: '1' } };
      await admin.create(devices);
      const done = await waitFor(
        'pod devices to complete',
        async () => {
          const p = await admin.get<Pod>('v1', 'Pod', 'devices', namespace);
          return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      const text = await admin.request<string>('GET', `/api/v1/namespaces/${namespace}/pods/devices/log`);
      expect({ phase: done.status?.phase, text }).toMatchObject({ phase: 'Succeeded' });
      // Character devices, allowed in the container's devices cgroup (cgroup v1) by the kubelet's allocation.
      expect(text).toMatch(/^crw.* \/dev\/kvm$/m);
      expect(text).toMatch(/^crw.* \/dev\/net\/tun$/m);
      await admin.delete('v1', 'Pod', 'devices', namespace);
      await waitFor(
        'pod devices gone',
        async () => ((await admin.tryGet('v1', 'Pod', 'devices', namespace)) ? undefined : true),
        { timeoutMs: 60_000, intervalMs: 200 },
      );
    } finally {
      await plugins.stop();
    }
  });
});

test('stop() leaves the host exactly as found', async () => {
  await withNodeLogs(async () => {
    const real = node as RealNode;
    await real.stop({ keepLogs: failed });
    node = undefined;
    const after = snapshotHostState();
    expect(diffHostState(before, after)).toEqual([]);
    expect(await admin.tryGet('v1', 'Node', real.nodeName)).toBeUndefined();
    const modules = newKernelModules(before, after);
    if (modules.length > 0)
      process.stderr.write(`real-node: kernel modules loaded on first use: ${modules.join(' ')}\n`);
    process.stdout.write(
      `real-node: Ready in ${real.readyMs} ms, pod Running in ${podRunningMs} ms, host left as found\n`,
    );
  });
});
