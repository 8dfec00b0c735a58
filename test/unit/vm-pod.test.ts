/**
 * Golden tests of the VM pod, one per volume type and binding: the rendered pod must equal the committed YAML in
 * test/fixtures/vm-pod. After an intended change, rewrite them with `UPDATE_GOLDEN=1 npx jest test/unit/vm-pod`
 * and review the diff. Then the properties every VM pod must have (Pod Security baseline, bounded init containers and
 * storage, no VM data in the environment, the metadata deny-list of reserved domains, probes, node selection).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { VirtualMachineProps } from '../../constructs';
import { renderVirtualMachine } from '../../constructs';
import {
  OVERHEAD,
  overheadBytes,
  podProbe,
  renderVmPod,
  renderVmPodSecret,
  vmPodName,
  vmPodResources,
} from '../../constructs/vm-pod';
import { addQuantities } from '../../constructs/vm-pod-resources';
import { isReservedMetadataKey, podMetadataLeftOut } from '../../constructs/pod-metadata';
import { parseVm } from '../../operator/launcher/vm-env';
import type { VirtualMachineSpec, VmProbe } from '../../api';
import { EXAMPLES } from '../../stacks/examples';

const GOLDEN = join(__dirname, '..', 'fixtures', 'vm-pod');
const options = { image: 'ghcr.io/kubevisor/kubevisor:test' };

const vm = (name: string, props: VirtualMachineProps) => {
  const o = renderVirtualMachine(name, { ...props, metadata: { ...props.metadata, name, namespace: 'default' } });
  return { ...o, metadata: { ...o.metadata, uid: `uid-${name}` } };
};

const CASES: Record<string, { props: VirtualMachineProps; options?: object; migrationUid?: string }> = {
  'container-disk-masquerade': { props: EXAMPLES.web },
  'kernel-rootfs-bridge': { props: EXAMPLES['kernel-boot'] },
  'pvc-multus-bridge': { props: EXAMPLES.db },
  'block-pvc-datavolume': {
    props: {
      disks: [{ name: 'root' }, { name: 'data' }],
      volumes: [
        { name: 'root', persistentVolumeClaim: { claimName: 'root-block' } },
        { name: 'data', dataVolume: { volumeName: 'data-dv', hotpluggable: true } },
      ],
    },
    options: { blockVolumes: ['root'] },
  },
  'cloud-init-secrets-virtiofs': {
    props: {
      kernel: { image: 'example.com/kernel:1', cmdline: 'console=ttyS0' },
      disks: [{ name: 'cloudinit' }],
      fileSystems: [{ name: 'share' }],
      volumes: [
        { name: 'cloudinit', cloudInit: { userDataSecretName: 'vm-userdata', networkDataSecretName: 'vm-netdata' } },
        { name: 'share', persistentVolumeClaim: { claimName: 'shared' } },
      ],
    },
  },
  'hugepages-dedicated-vhostuser': {
    props: {
      cpu: { sockets: 2, coresPerSocket: 2, dedicatedCPUPlacement: true },
      memory: { size: '4Gi', hugepages: { pageSize: '1Gi' } },
      disks: [{ name: 'root' }],
      volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1', imagePullPolicy: 'Always' } }],
      interfaces: [{ name: 'fast', vhostUser: {} }],
      networks: [{ name: 'fast', multus: { networkName: 'dpdk/ovs-dpdk' } }],
    },
  },
  'sriov-vdpa': {
    props: {
      disks: [{ name: 'root' }],
      volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1' } }],
      interfaces: [
        { name: 'pod', masquerade: {} },
        { name: 'vf', sriov: {} },
        { name: 'vd', vdpa: { numQueues: 4 } },
      ],
      networks: [
        { name: 'pod', pod: {} },
        { name: 'vf', multus: { networkName: 'sriov-net' } },
        { name: 'vd', multus: { networkName: 'vdpa-net' } },
      ],
      tolerations: [{ key: 'sriov', operator: 'Exists', effect: 'NoSchedule' }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'sriov', operator: 'Exists' }] }],
          },
        },
      },
    },
    options: { networkResources: { vf: 'intel.com/sriov_netdevice', vd: 'nvidia.com/vdpa' } },
  },
  'migration-target': { props: EXAMPLES.db, migrationUid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0' },
};

describe.each(Object.entries(CASES))('%s', (name, c) => {
  test('matches the golden pod', () => {
    const pod = renderVmPod(
      vm(name, c.props),
      { run: 0, ...(c.migrationUid ? { migrationUid: c.migrationUid } : {}) },
      { ...options, ...c.options },
    );
    const file = join(GOLDEN, `${name}.yaml`);
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file))
      writeFileSync(file, stringify(pod, { lineWidth: 0, aliasDuplicateObjects: false }));
    expect(pod).toEqual(parse(readFileSync(file, 'utf8')));
  });
});

const spec = (props: VirtualMachineProps) => vm('x', props).spec as VirtualMachineSpec;

test('memory request = guest memory + overhead (40Mi + 4Mi per vCPU + 1/256 of guest memory)', () => {
  const s = spec({ cpu: { sockets: 2 }, memory: { size: '2Gi' } });
  expect(overheadBytes(s)).toBe(OVERHEAD.baseBytes + 2n * OVERHEAD.perVcpuBytes + (2n * 1024n ** 3n) / 256n);
  expect(vmPodResources(s).requests.memory).toBe('2104Mi'); // 2048 + 40 + 8 + 8
  expect(vmPodResources(s).limits.memory).toBeUndefined();
});

test('hugepages carry guest memory; memory carries only the overhead, at least the launcher floor', () => {
  const r = vmPodResources(spec({ memory: { size: '2Gi', hugepages: { pageSize: '2Mi' } } }));
  // 40 + 4 + 8 = 52Mi of overhead, but the launcher runs in the container first: 128Mi.
  expect(r.requests).toEqual(expect.objectContaining({ 'hugepages-2Mi': '2Gi', memory: '128Mi' }));
  expect(r.limits).toEqual(expect.objectContaining({ 'hugepages-2Mi': '2Gi' }));
});

test('dedicated CPUs give Guaranteed QoS: whole CPUs, requests = limits', () => {
  const r = vmPodResources(
    spec({ cpu: { sockets: 1, coresPerSocket: 3, dedicatedCPUPlacement: true }, memory: { size: '1Gi' } }),
  );
  expect(r.requests.cpu).toBe('3');
  expect(r.limits.cpu).toBe('3');
  expect(r.limits.memory).toBe(r.requests.memory);
});

test('user resources add to the computed ones, never lower them; limits never fall below requests', () => {
  const s = spec({ memory: { size: '2Gi' }, resources: { requests: { cpu: '500m', memory: '1Mi' } } });
  const r = vmPodResources(s);
  expect(r.requests).toEqual({
    cpu: '500m',
    memory: '2101Mi', // 2048 + 40 + 4 + 8, plus the user's 1Mi: a 1Mi request cannot shrink a 2Gi guest
    'ephemeral-storage': '80Mi', // run dir + tools
    'devices.kubevisor.io/kvm': '1',
    'devices.kubevisor.io/tun': '1',
  });
  const limited = vmPodResources(
    spec({ memory: { size: '1Gi' }, resources: { requests: { memory: '512Mi' }, limits: { memory: '1Gi', cpu: 2 } } }),
  );
  expect(limited.requests.memory).toBe('1584Mi'); // 1024 + 40 + 4 + 4 + 512
  expect(limited.limits).toEqual(expect.objectContaining({ memory: '2096Mi', cpu: '2' }));
  // A limit alone is added to the computed amount too, so it can never cut the guest's own memory.
  expect(vmPodResources(spec({ resources: { limits: { memory: '1Mi' } } })).limits.memory).toBe('1073Mi');
});

test('hugepages and dedicated CPUs are exact; with dedicated CPUs memory limit = request (Guaranteed)', () => {
  const r = vmPodResources(
    spec({
      cpu: { sockets: 1, coresPerSocket: 2, dedicatedCPUPlacement: true },
      memory: { size: '2Gi', hugepages: { pageSize: '2Mi' } },
      resources: { requests: { 'hugepages-2Mi': '2Gi', cpu: '2', memory: '16Mi' }, limits: { memory: '32Mi' } },
    }),
  );
  expect(r.requests).toEqual(expect.objectContaining({ 'hugepages-2Mi': '2Gi', cpu: '2', memory: '160Mi' }));
  expect(r.limits).toEqual(expect.objectContaining({ 'hugepages-2Mi': '2Gi', cpu: '2', memory: '160Mi' }));
});

test('ephemeral storage covers every disk-backed emptyDir; each has a size limit', () => {
  const s = spec({
    kernel: { image: 'k:1', cmdline: 'console=ttyS0' },
    disks: [{ name: 'a' }, { name: 'b' }, { name: 'c' }],
    volumes: [
      { name: 'a', containerDisk: { image: 'd:1' } },
      { name: 'b', containerDisk: { image: 'd:1', maxSize: '3Gi' } },
      { name: 'c', containerRootfs: { image: 'r:1', size: '5Gi' } },
    ],
  });
  // 64Mi run + 16Mi tools + 256Mi kernel + 10Gi (default maxSize) + 3Gi + 2 × 5Gi (unpacked tree + ext4 image)
  expect(vmPodResources(s).requests['ephemeral-storage']).toBe(`${64 + 16 + 256 + (10 + 3 + 10) * 1024}Mi`);
  const pod = renderVmPod({ ...vm('x', {}), spec: s }, { run: 0 }, options) as unknown as PodJson;
  const emptyDirs = pod.spec.volumes.filter((v) => v.emptyDir);
  expect(emptyDirs.map((v) => [v.name, v.emptyDir!.sizeLimit])).toEqual([
    ['kubevisor-run', '64Mi'],
    ['kubevisor-tools', '16Mi'],
    ['kubevisor-hotplug', '1Mi'],
    ['kubevisor-kernel', '256Mi'],
    ['vol-a', '10Gi'],
    ['vol-b', '3Gi'],
    ['vol-c', '10Gi'],
  ]);
});

test('quantities add exactly', () => {
  expect(addQuantities('cpu', '500m', '2')).toBe('2500m');
  expect(addQuantities('cpu', '1', 1)).toBe('2');
  expect(addQuantities('memory', '1Gi', '512Mi')).toBe('1536Mi');
  expect(addQuantities('memory', '1G', '1')).toBe('1000000001');
  expect(addQuantities('example.com/thing', '1', '0.5')).toBe('1500m');
});

interface PodJson {
  metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> };
  spec: {
    nodeSelector: Record<string, string>;
    securityContext: Record<string, unknown>;
    tolerations?: Record<string, unknown>[];
    initContainers: ContainerJson[];
    containers: ContainerJson[];
    volumes: {
      name: string;
      emptyDir?: { sizeLimit?: string; medium?: string };
      secret?: { secretName: string; items: { key: string; path: string }[] };
    }[];
  };
}
interface ContainerJson {
  name: string;
  env?: { name: string; value?: string }[];
  securityContext?: {
    capabilities?: { drop?: string[]; add?: string[] };
    allowPrivilegeEscalation?: boolean;
    privileged?: boolean;
    runAsNonRoot?: boolean;
  };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  readinessProbe?: unknown;
  terminationMessagePolicy?: string;
}

/** What Pod Security `baseline` allows of capabilities (pod-security-admission, level baseline). */
const BASELINE_CAPABILITIES = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);

describe.each(Object.keys(CASES))('%s: Pod Security', (name) => {
  const c = CASES[name];
  const pod = renderVmPod(
    vm(name, c.props),
    { run: 0, ...(c.migrationUid ? { migrationUid: c.migrationUid } : {}) },
    { ...options, ...c.options },
  ) as unknown as PodJson;
  const all = [...pod.spec.initContainers, ...pod.spec.containers];

  test('baseline: no sysctls, RuntimeDefault seccomp, only baseline capabilities, all of them dropped first', () => {
    expect(pod.spec.securityContext).toEqual({ seccompProfile: { type: 'RuntimeDefault' } });
    for (const container of all) {
      const sc = container.securityContext;
      expect({ name: container.name, drop: sc?.capabilities?.drop, escalation: sc?.allowPrivilegeEscalation }).toEqual({
        name: container.name,
        drop: ['ALL'],
        escalation: false,
      });
      expect(sc?.privileged).not.toBe(true);
      for (const cap of sc?.capabilities?.add ?? []) expect(BASELINE_CAPABILITIES.has(cap)).toBe(true);
    }
    const launcher = pod.spec.containers[0];
    expect(launcher.securityContext?.capabilities?.add).toEqual(['NET_BIND_SERVICE']);
    expect(launcher.terminationMessagePolicy).toBe('File');
  });

  test('init containers are bounded: CPU and memory requests and limits', () => {
    for (const container of pod.spec.initContainers) {
      expect(container.resources?.requests).toEqual(
        expect.objectContaining({ cpu: expect.any(String), memory: '256Mi' }),
      );
      expect(container.resources?.limits).toEqual({ cpu: '1', memory: '256Mi' });
    }
  });

  test("no VM data in the environment; the VM comes from the pod's own Secret, one key only", () => {
    for (const container of all) expect(container.env?.map((e) => e.name) ?? []).not.toContain('KUBEVISOR_VM');
    const own = pod.spec.volumes.find((v) => v.name === 'kubevisor-vm');
    expect(own?.secret).toEqual(
      expect.objectContaining({ secretName: pod.metadata.name, items: [{ key: 'vm.json', path: 'vm.json' }] }),
    );
    for (const v of pod.spec.volumes.filter((x) => x.secret)) expect(v.secret!.items).toHaveLength(1);
  });

  test('VM pods select the prepared nodes', () => {
    expect(pod.spec.nodeSelector['kubevisor.io/kvm']).toBe('true');
  });
});

test('the pod Secret holds the VM as the launcher reads it, inline user-data included; it starts owned by the VM', () => {
  const web = vm('web', EXAMPLES.web);
  const secret = renderVmPodSecret(web, { run: 2 }) as {
    metadata: { name: string; ownerReferences: { kind: string; uid: string; controller: boolean }[] };
    immutable: boolean;
    data: Record<string, string>;
  };
  expect(secret.metadata.name).toBe(vmPodName('web', 'uid-web', { run: 2 }));
  expect(secret.immutable).toBe(true);
  expect(secret.metadata.ownerReferences).toEqual([
    expect.objectContaining({ kind: 'VirtualMachine', uid: 'uid-web', controller: true }),
  ]);
  const launched = parseVm(Buffer.from(secret.data['vm.json'], 'base64').toString('utf8'), 'secret');
  expect(launched.metadata).toEqual({ name: 'web', namespace: 'default', uid: 'uid-web' });
  expect(launched.spec.volumes?.find((v) => v.cloudInit)?.cloudInit?.userData).toContain('#cloud-config');
  // A migration's receiving pod may carry a name fixed earlier; its Secret follows it.
  const role = { run: 0, migrationUid: 'm-1', podName: 'vm-web-fixed' };
  expect((renderVmPodSecret(web, role).metadata as { name: string }).name).toBe('vm-web-fixed');
  const pod = renderVmPod(web, role, options) as unknown as PodJson;
  expect(pod.metadata.name).toBe('vm-web-fixed');
  expect(pod.spec.volumes.find((v) => v.name === 'kubevisor-vm')?.secret?.secretName).toBe('vm-web-fixed');
});

test('a VM spec far above the 128 KiB environment limit reaches the launcher whole', () => {
  const big = 'x'.repeat(65536);
  const o = vm('big', {
    disks: [{ name: 'root' }, { name: 'ci' }],
    volumes: [
      { name: 'root', containerDisk: { image: 'd:1' } },
      { name: 'ci', cloudInit: { userData: big, networkData: big } },
    ],
  });
  // Multi-byte characters: 64 Ki characters of user-data can be 256 KiB.
  (o.spec as VirtualMachineSpec).volumes![1].cloudInit!.userData = '€'.repeat(65536);
  const secret = renderVmPodSecret(o, { run: 0 }) as { data: Record<string, string> };
  const json = Buffer.from(secret.data['vm.json'], 'base64').toString('utf8');
  expect(Buffer.byteLength(json)).toBeGreaterThan(128 * 1024);
  expect(Buffer.byteLength(json)).toBeLessThan(1024 * 1024); // a Secret's limit
  expect(parseVm(json, 'secret').spec.volumes![1].cloudInit!.userData).toBe('€'.repeat(65536));
});

test('labels and annotations in reserved domains stay behind (a deny-list of domains)', () => {
  const pod = renderVmPod(
    vm('meta', {
      metadata: {
        labels: {
          app: 'web',
          'app.kubernetes.io/name': 'web',
          'team.example.com/owner': 'a',
          'kubevisor.io/vm': 'someone-else',
          'node-role.kubernetes.io/control-plane': '',
          'pod-security.kubernetes.io/enforce': 'privileged',
          'sidecar.istio.io/inject': 'true',
        },
        annotations: {
          'prometheus.io/scrape': 'true',
          'k8s.v1.cni.cncf.io/networks': 'other-ns/their-net',
          'k8s.v1.cni.cncf.io/network-status': '[{"device-info":{"pci":{"pci-address":"../../x"}}}]',
          'v1.multus-cni.io/default-network': 'other-ns/net',
          'container.apparmor.security.beta.kubernetes.io/launcher': 'unconfined',
          'seccomp.security.alpha.kubernetes.io/pod': 'unconfined',
          'kubevisor.io/volumes': 'forged',
          'cni.projectcalico.org/ipAddrs': '["10.0.0.5"]',
          'k8s.ovn.org/pod-networks': '{}',
          'example.k8s.io/x': 'y',
        },
      },
      disks: [{ name: 'root' }],
      volumes: [{ name: 'root', containerDisk: { image: 'd:1' } }],
    }),
    { run: 0 },
    options,
  ) as unknown as PodJson;
  expect(pod.metadata.labels).toEqual({
    app: 'web',
    'app.kubernetes.io/name': 'web',
    'team.example.com/owner': 'a',
    'kubevisor.io/vm': 'meta',
    'kubevisor.io/run': '0',
    'app.kubernetes.io/managed-by': 'kubevisor',
  });
  expect(pod.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'kubevisor.io/volumes': 'root' });
  expect(isReservedMetadataKey('example.com/k8s.io')).toBe(false);
  expect(isReservedMetadataKey('notkubernetes.io/x')).toBe(false);
  expect(isReservedMetadataKey('Kubernetes.IO/x')).toBe(true);
  // Sidecar injectors and container runtimes: prefixed, or unprefixed dotted names forwards or reversed.
  for (const key of [
    'sidecar.istio.io/inject',
    'linkerd.io/inject',
    'config.linkerd.io/skip-outbound-ports',
    'vault.hashicorp.com/agent-inject',
    'consul.hashicorp.com/connect-inject',
    'dapr.io/enabled',
    'sidecar.opentelemetry.io/inject',
    'io.katacontainers.config.hypervisor.path',
    'io.kubernetes.cri-o.Devices',
    'cpu-quota.crio.io',
    'io.containerd.runc.v2.options',
  ]) {
    expect({ key, reserved: isReservedMetadataKey(key) }).toEqual({ key, reserved: true });
  }
  for (const key of ['app', 'tier', 'version.major', 'example.com/io.katacontainers', 'app.kubernetes.io/name']) {
    expect({ key, reserved: isReservedMetadataKey(key) }).toEqual({ key, reserved: false });
  }
  expect(
    podMetadataLeftOut({ labels: { 'kubevisor.io/x': '1', a: 'b' }, annotations: { 'kubevisor.io/x': '2' } }),
  ).toEqual(['kubevisor.io/x']);
});

test('probes carry only httpGet/tcpSocket and the timing fields, whatever else the object holds', () => {
  const forged = {
    httpGet: {
      port: 8080,
      path: '/ok',
      scheme: 'HTTPS',
      host: '169.254.169.254',
      httpHeaders: [{ name: 'X', value: 'y' }],
    },
    exec: { command: ['sh'] },
    periodSeconds: 5,
    terminationGracePeriodSeconds: 1,
  } as unknown as VmProbe;
  expect(podProbe(forged)).toEqual({
    httpGet: { port: 8080, path: '/ok', scheme: 'HTTPS', httpHeaders: [{ name: 'X', value: 'y' }] },
    periodSeconds: 5,
  });
  expect(podProbe({ tcpSocket: { port: 22, host: 'x' } as { port: number } })).toEqual({ tcpSocket: { port: 22 } });
});

test('a stored probe the pod cannot run is left off: exec or grpc only, a named port, two handlers', () => {
  for (const stored of [
    { exec: { command: ['sh'] }, periodSeconds: 5 },
    { grpc: { port: 9090 } },
    { httpGet: { port: 'http' } },
    { httpGet: { port: 80 }, tcpSocket: { port: 80 } },
  ]) {
    expect(podProbe(stored as unknown as VmProbe)).toBeUndefined();
  }
});

test('tolerations without a taint key stay behind', () => {
  const pod = renderVmPod(
    vm('tol', {
      disks: [{ name: 'root' }],
      volumes: [{ name: 'root', containerDisk: { image: 'd:1' } }],
    }),
    { run: 0 },
    options,
  ) as unknown as PodJson;
  expect(pod.spec.tolerations).toBeUndefined();
  const stored = vm('tol', { disks: [{ name: 'root' }], volumes: [{ name: 'root', containerDisk: { image: 'd:1' } }] });
  (stored.spec as VirtualMachineSpec).tolerations = [
    { operator: 'Exists' },
    { key: '', operator: 'Exists', effect: 'NoExecute' },
    { key: 'gpu', operator: 'Equal', value: 'a100', effect: 'NoSchedule' },
  ];
  const tolerated = renderVmPod(stored, { run: 0 }, options) as unknown as PodJson;
  expect(tolerated.spec.tolerations).toEqual([{ key: 'gpu', operator: 'Equal', value: 'a100', effect: 'NoSchedule' }]);
});

test('cloud-init Secrets are optional volumes of one key: without them the launcher, not the kubelet, says so', () => {
  const pod = renderVmPod(vm('ci', CASES['cloud-init-secrets-virtiofs'].props), { run: 0 }, options) as unknown as {
    spec: { volumes: { name: string; secret?: Record<string, unknown> }[] };
  };
  const secrets = pod.spec.volumes.filter((v) => v.secret);
  expect(secrets.map((v) => [v.name, v.secret!.optional])).toEqual([
    ['kubevisor-vm', undefined],
    ['cloudinit-userdata', true],
    ['cloudinit-networkdata', true],
  ]);
});

test('a kernel with initrd: the init container copies /vmlinux and /initrd, links as links', () => {
  const pod = renderVmPod(
    vm('k', { kernel: { image: 'example.com/kernel:1', cmdline: 'console=ttyS0', initrd: true } }),
    { run: 0 },
    options,
  ) as unknown as PodJson;
  const init = (pod.spec as unknown as { initContainers: { name: string; command: string[] }[] }).initContainers;
  expect(init.find((c) => c.name === 'kernel')?.command).toEqual([
    '/var/run/kubevisor-tools/busybox',
    'cp',
    '-P',
    '/vmlinux',
    '/initrd',
    '/mnt/kernel/',
  ]);
});

test("the user's nodeSelector is kept, with the prepared-node label added", () => {
  const pod = renderVmPod(
    vm('sel', {
      nodeSelector: { zone: 'a', 'kubevisor.io/kvm': 'true' },
      disks: [{ name: 'root' }],
      volumes: [{ name: 'root', containerDisk: { image: 'd:1' } }],
    }),
    { run: 0 },
    options,
  ) as unknown as PodJson;
  expect(pod.spec.nodeSelector).toEqual({ zone: 'a', 'kubevisor.io/kvm': 'true' });
});

test("a migration's receiving pod also selects the source node's CPU features; the VM's own selector still holds", () => {
  const pod = renderVmPod(
    vm('sel', {
      nodeSelector: { zone: 'a' },
      disks: [{ name: 'root' }],
      volumes: [{ name: 'root', containerDisk: { image: 'd:1' } }],
    }),
    { run: 0, migrationUid: 'm-1' },
    { ...options, requiredNodeLabels: { 'kubevisor.io/cpu-features': '0123456789abcdef' } },
  ) as unknown as PodJson;
  expect(pod.spec.nodeSelector).toEqual({
    zone: 'a',
    'kubevisor.io/cpu-features': '0123456789abcdef',
    'kubevisor.io/kvm': 'true',
  });
});

test('pod names are stable per run and differ between runs', () => {
  expect(vmPodName('web', 'u1', { run: 0 })).toBe(vmPodName('web', 'u1', { run: 0 }));
  expect(vmPodName('web', 'u1', { run: 0 })).not.toBe(vmPodName('web', 'u1', { run: 1 }));
});

// Every VM name the CRD accepts is a DNS label of 1–63 characters. Before the fix, names of 59+ characters lost the
// run hash to truncation (and ended in '-'), so run N, run N+1 and the migration target all got the same pod name.
test.each([1, 40, 52, 53, 58, 59, 62, 63])('a %i-character VM name gives distinct, valid pod names', (length) => {
  const vmName = 'v'.repeat(length - 1) + '9';
  const uid = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
  const names = [
    ...[0, 1, 2, 9, 10, 123456].map((run) => vmPodName(vmName, uid, { run })),
    vmPodName(vmName, uid, { run: 0, migrationUid: '11111111-2222-3333-4444-555555555555' }),
    vmPodName(vmName, uid, { run: 0, migrationUid: '66666666-2222-3333-4444-555555555555' }),
    vmPodName(vmName, uid, { run: 1, migrationUid: '11111111-2222-3333-4444-555555555555' }),
  ];
  expect(new Set(names).size).toBe(names.length);
  for (const n of names) {
    expect(n.length).toBeLessThanOrEqual(63);
    expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  }
  // Another VM whose name shares the shortened prefix still gets its own pods.
  expect(vmPodName(vmName, 'another-uid', { run: 0 })).not.toBe(names[0]);
});
