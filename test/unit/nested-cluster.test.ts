/**
 * The nested cluster renderer (constructs/nested-cluster*.ts) and its frontends: the Cluster API object graph (names,
 * references and labels agree), the kubevisor objects pass the CRDs, the machine templates' hashed names change with
 * their content and only then, the longest names accepted stay DNS labels, and the cdk8s construct and the Pulumi
 * component emit the same objects.
 */
import * as pulumi from '@pulumi/pulumi';
import { Chart, JsonPatch, Testing } from 'cdk8s';
import { INFRASTRUCTURE_API_VERSION, validateObject } from '../../api';
import type { KubevisorObject } from '../../api';
import { NestedCluster } from '../../constructs/cdk8s';
import type { NestedClusterObject, NestedClusterProps } from '../../constructs';
import { MAX_CLUSTER_AND_POOL_NAME, MAX_CLUSTER_NAME, derivedNames, renderNestedCluster } from '../../constructs';
import { PROVIDER_ID_KUBELET_ARG } from '../../constructs/nested-cluster-kubeadm';
import { buildApp } from '../../stacks/cdk8s/app';
import { NESTED_CLUSTER_EXAMPLE } from '../../stacks/examples';
import type * as Frontend from '../../constructs/pulumi';
import { crdValidators } from '../support/crd-schema';

/* eslint-disable @typescript-eslint/no-explicit-any -- assertions walk raw manifests */
type Json = Record<string, any>;

const images = { 'v1.34.2': { kernelImage: 'example.com/kernel:6.12', rootfsImage: 'example.com/rootfs:v1.34.2' } };
const base: NestedClusterProps = {
  kubernetesVersion: 'v1.34.2',
  images,
  workers: [{ name: 'md-0', replicas: 2 }],
  cni: { manifests: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cni\n' },
};

const find = (objects: NestedClusterObject[], kind: string, name?: string): Json => {
  const o = objects.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!o) throw new Error(`no ${kind} ${name ?? ''}`);
  return o;
};
const all = (objects: NestedClusterObject[], kind: string): Json[] => objects.filter((o) => o.kind === kind);
const templateNames = (objects: NestedClusterObject[]) =>
  objects
    .filter((o) => o.kind === 'KubevisorMachineTemplate' || o.kind === 'KubeadmConfigTemplate')
    .map((o) => o.metadata.name);

describe('the object graph', () => {
  const objects = renderNestedCluster('tenant-a', {
    ...base,
    metadata: { namespace: 'tenants', labels: { team: 'a' } },
  });

  test('holds the cluster, its control plane, one pool, the health checks and the CNI, in apply order', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name.replace(/-[0-9a-f]{8}$/, '-<hash>')}`)).toEqual([
      'Cluster/tenant-a',
      'KubevisorCluster/tenant-a',
      'KubevisorMachineTemplate/tenant-a-control-plane-<hash>',
      'KubeadmControlPlane/tenant-a-control-plane',
      'MachineHealthCheck/tenant-a-control-plane',
      'KubevisorMachineTemplate/tenant-a-md-0-<hash>',
      'KubeadmConfigTemplate/tenant-a-md-0-<hash>',
      'MachineDeployment/tenant-a-md-0',
      'MachineHealthCheck/tenant-a-md-0',
      'ConfigMap/tenant-a-cni',
      'ClusterResourceSet/tenant-a-cni',
    ]);
    expect(new Set(objects.map((o) => o.apiVersion))).toEqual(
      new Set([
        'cluster.x-k8s.io/v1beta2',
        'controlplane.cluster.x-k8s.io/v1beta2',
        'bootstrap.cluster.x-k8s.io/v1beta2',
        'addons.cluster.x-k8s.io/v1beta2',
        INFRASTRUCTURE_API_VERSION,
        'v1',
      ]),
    );
  });

  test('every object is in the namespace and carries the cluster labels and the user labels', () => {
    for (const o of objects) {
      expect(o.metadata.namespace).toBe('tenants');
      expect(o.metadata.labels).toEqual({
        team: 'a',
        'cluster.x-k8s.io/cluster-name': 'tenant-a',
        'kubevisor.io/nested-cluster': 'tenant-a',
      });
    }
  });

  test('references name existing objects by apiGroup and kind (v1beta2), never by apiVersion', () => {
    const byRef = (ref: Json) => {
      expect(Object.keys(ref).sort()).toEqual(['apiGroup', 'kind', 'name']);
      const o = objects.find((x) => x.kind === ref.kind && x.metadata.name === ref.name);
      expect(o && o.apiVersion.split('/')[0]).toBe(ref.apiGroup);
      return o;
    };
    const cluster = find(objects, 'Cluster');
    expect(byRef(cluster.spec.infrastructureRef)?.kind).toBe('KubevisorCluster');
    const kcp = byRef(cluster.spec.controlPlaneRef) as Json;
    expect(kcp.kind).toBe('KubeadmControlPlane');
    expect(byRef(kcp.spec.machineTemplate.spec.infrastructureRef)?.metadata.name).toMatch(
      /^tenant-a-control-plane-[0-9a-f]{8}$/,
    );
    const md = find(objects, 'MachineDeployment');
    expect(byRef(md.spec.template.spec.bootstrap.configRef)?.kind).toBe('KubeadmConfigTemplate');
    expect(byRef(md.spec.template.spec.infrastructureRef)?.kind).toBe('KubevisorMachineTemplate');
    expect(md.spec.clusterName).toBe('tenant-a');
    expect(md.spec.template.spec.clusterName).toBe('tenant-a');
    expect(md.spec.template.spec.version).toBe('v1.34.2');
    expect(kcp.spec.version).toBe('v1.34.2');
    // The selector matches the machines' labels (Cluster API's webhook refuses it otherwise).
    expect(md.spec.template.metadata.labels).toEqual(md.spec.selector.matchLabels);
    expect(md.spec.selector.matchLabels).toEqual({
      'cluster.x-k8s.io/cluster-name': 'tenant-a',
      'cluster.x-k8s.io/deployment-name': 'tenant-a-md-0',
    });
    // The CNI's ClusterResourceSet selects this Cluster by its labels and applies the ConfigMap.
    const crs = find(objects, 'ClusterResourceSet');
    for (const [k, v] of Object.entries(crs.spec.clusterSelector.matchLabels))
      expect(cluster.metadata.labels[k]).toBe(v);
    expect(crs.spec.resources).toEqual([{ kind: 'ConfigMap', name: 'tenant-a-cni' }]);
    expect(find(objects, 'ConfigMap').data['cni.yaml']).toBe(base.cni!.manifests);
  });

  test('the network is the default, and the endpoint is left to the provider', () => {
    expect(find(objects, 'Cluster').spec.clusterNetwork).toEqual({
      pods: { cidrBlocks: ['10.243.0.0/16'] },
      services: { cidrBlocks: ['10.95.0.0/16'] },
      serviceDomain: 'cluster.local',
    });
    expect(find(objects, 'Cluster').spec.controlPlaneEndpoint).toBeUndefined();
    expect(find(objects, 'KubevisorCluster').spec).toEqual({ controlPlaneService: { type: 'ClusterIP' } });
  });

  test('every node registers with the kubevisor provider ID (cloud-init fills in the VM UID)', () => {
    const kcp = find(objects, 'KubeadmControlPlane');
    const arg = { name: 'provider-id', value: 'kubevisor://{{ ds.meta_data.instance_id }}' };
    expect(PROVIDER_ID_KUBELET_ARG).toEqual(arg);
    expect(kcp.spec.kubeadmConfigSpec.initConfiguration.nodeRegistration.kubeletExtraArgs).toEqual([arg]);
    expect(kcp.spec.kubeadmConfigSpec.joinConfiguration.nodeRegistration.kubeletExtraArgs).toEqual([arg]);
    const kct = find(objects, 'KubeadmConfigTemplate');
    expect(kct.spec.template.spec.joinConfiguration.nodeRegistration.kubeletExtraArgs).toEqual([arg]);
    // Stacked etcd: kubeadm's own, nothing configured.
    expect(kcp.spec.kubeadmConfigSpec.clusterConfiguration).toBeUndefined();
    expect(kcp.spec.replicas).toBe(1);
  });

  test('the machines: kernel-booted rootfs, bridged to the pod network, runPolicy Once, spread over nodes', () => {
    const [cp, worker] = all(objects, 'KubevisorMachineTemplate').map((t) => t.spec.template.spec.virtualMachine);
    for (const vm of [cp, worker]) {
      expect(vm.metadata).toEqual({ labels: { team: 'a' } });
      expect(vm.spec.runPolicy).toBe('Once');
      expect(vm.spec.instance.cpu).toMatchObject({ sockets: 1, coresPerSocket: 2 });
      expect(vm.spec.instance.memory).toEqual({ size: '4Gi' });
      expect(vm.spec.instance.kernel).toMatchObject({
        image: 'example.com/kernel:6.12',
        cmdline: 'console=ttyS0 root=/dev/vda rw',
      });
      expect(vm.spec.volumes).toEqual([
        {
          name: 'rootfs',
          containerRootfs: expect.objectContaining({ image: 'example.com/rootfs:v1.34.2', size: '4Gi' }),
        },
      ]);
      // Bridge binding and no MAC: every VM of the template derives its own from its name.
      expect(vm.spec.instance.interfaces).toEqual([{ name: 'pod', bridge: {} }]);
      expect(vm.spec.networks).toEqual([{ name: 'pod', pod: {} }]);
      // No cloud-init volume: the provider adds the bootstrap data's.
      expect(vm.spec.volumes.some((v: Json) => v.cloudInit)).toBe(false);
    }
    expect(cp.spec.readinessProbe).toMatchObject({ httpGet: { port: 6443, path: '/readyz', scheme: 'HTTPS' } });
    expect(worker.spec.readinessProbe).toBeUndefined();
    const spreadOver = (vm: Json) =>
      vm.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    expect(spreadOver(cp)).toEqual({
      labelSelector: {
        matchLabels: { 'cluster.x-k8s.io/cluster-name': 'tenant-a', 'cluster.x-k8s.io/control-plane': '' },
      },
      topologyKey: 'kubernetes.io/hostname',
    });
    expect(spreadOver(worker).labelSelector.matchLabels).toEqual(
      find(objects, 'MachineDeployment').spec.selector.matchLabels,
    );
  });

  test('health checks: Node Ready Unknown or False for 300 s, for the control plane and each pool', () => {
    const [cp, pool] = all(objects, 'MachineHealthCheck');
    expect(cp.spec.selector.matchLabels).toEqual({
      'cluster.x-k8s.io/cluster-name': 'tenant-a',
      'cluster.x-k8s.io/control-plane': '',
    });
    expect(pool.spec.selector).toEqual(find(objects, 'MachineDeployment').spec.selector);
    for (const mhc of [cp, pool]) {
      expect(mhc.spec.clusterName).toBe('tenant-a');
      expect(mhc.spec.checks).toEqual({
        unhealthyNodeConditions: [
          { type: 'Ready', status: 'Unknown', timeoutSeconds: 300 },
          { type: 'Ready', status: 'False', timeoutSeconds: 300 },
        ],
      });
    }
  });

  test('the kubevisor objects pass the API server’s rules and the committed CRDs', () => {
    const validators = crdValidators();
    const kubevisor = objects.filter(
      (o) => o.apiVersion === INFRASTRUCTURE_API_VERSION,
    ) as unknown as KubevisorObject[];
    expect(kubevisor).toHaveLength(3);
    for (const o of kubevisor) {
      expect(validateObject(o)).toEqual([]);
      const validate = validators.get(o.kind)!;
      expect({ valid: validate(o), errors: validate.errors ?? null }).toEqual({ valid: true, errors: null });
    }
  });
});

describe('props reach the objects', () => {
  test('external etcd, an even control plane, a fixed endpoint, tuned health checks, named CNI sources', () => {
    const objects = renderNestedCluster('t', {
      ...base,
      controlPlane: { replicas: 2, size: { cpuCores: 4, memory: '8Gi', rootfsSize: '10Gi' } },
      etcd: {
        external: { endpoints: ['https://etcd-0.etcd:2379', 'https://etcd-1.etcd:2379'], caFile: '/etc/etcd/ca.pem' },
      },
      endpoint: { service: 'LoadBalancer', loadBalancerClass: 'example.com/lb', host: 'api.t.example.com' },
      network: { podCidr: 'fd00:10::/56', serviceCidr: 'fd00:20::/112', serviceDomain: 't.local' },
      healthChecks: { unhealthySeconds: 120, nodeStartupSeconds: 900 },
      cni: { configMaps: ['calico'], secrets: ['calico-secret'], strategy: 'Reconcile' },
    });
    const kcp = find(objects, 'KubeadmControlPlane');
    expect(kcp.spec.replicas).toBe(2);
    expect(kcp.spec.kubeadmConfigSpec.clusterConfiguration).toEqual({
      etcd: {
        external: {
          endpoints: ['https://etcd-0.etcd:2379', 'https://etcd-1.etcd:2379'],
          caFile: '/etc/etcd/ca.pem',
          certFile: '/etc/kubernetes/pki/apiserver-etcd-client.crt',
          keyFile: '/etc/kubernetes/pki/apiserver-etcd-client.key',
        },
      },
    });
    const cpVm = find(objects, 'KubevisorMachineTemplate').spec.template.spec.virtualMachine.spec;
    expect(cpVm.instance.cpu.coresPerSocket).toBe(4);
    expect(cpVm.instance.memory.size).toBe('8Gi');
    expect(cpVm.volumes[0].containerRootfs.size).toBe('10Gi');
    expect(find(objects, 'KubevisorCluster').spec).toEqual({
      controlPlaneService: { type: 'LoadBalancer', loadBalancerClass: 'example.com/lb' },
      controlPlaneEndpoint: { host: 'api.t.example.com', port: 6443 },
    });
    // The Cluster's endpoint stays Cluster API's to copy from the KubevisorCluster.
    expect(find(objects, 'Cluster').spec.controlPlaneEndpoint).toBeUndefined();
    expect(find(objects, 'Cluster').spec.clusterNetwork).toEqual({
      pods: { cidrBlocks: ['fd00:10::/56'] },
      services: { cidrBlocks: ['fd00:20::/112'] },
      serviceDomain: 't.local',
    });
    for (const mhc of all(objects, 'MachineHealthCheck')) {
      expect(mhc.spec.checks.nodeStartupTimeoutSeconds).toBe(900);
      expect(mhc.spec.checks.unhealthyNodeConditions.map((c: Json) => c.timeoutSeconds)).toEqual([120, 120]);
    }
    expect(all(objects, 'ConfigMap')).toEqual([]);
    expect(find(objects, 'ClusterResourceSet').spec).toMatchObject({
      resources: [
        { kind: 'ConfigMap', name: 'calico' },
        { kind: 'Secret', name: 'calico-secret' },
      ],
      strategy: 'Reconcile',
    });
  });

  test('health checks can be turned off, and without a CNI there is no ClusterResourceSet', () => {
    const { cni: _cni, ...noCni } = base;
    const objects = renderNestedCluster('t', { ...noCni, healthChecks: false });
    expect(objects.map((o) => o.kind)).not.toContain('MachineHealthCheck');
    expect(objects.map((o) => o.kind)).not.toContain('ClusterResourceSet');
  });

  test('images may come from a function of the version; metadata.name names the cluster', () => {
    const objects = renderNestedCluster('ignored', {
      ...base,
      metadata: { name: 'fn' },
      images: (v) => ({ kernelImage: 'k:1', rootfsImage: `r:${v}` }),
    });
    expect(find(objects, 'Cluster').metadata.name).toBe('fn');
    const vm = find(objects, 'KubevisorMachineTemplate').spec.template.spec.virtualMachine.spec;
    expect(vm.volumes[0].containerRootfs.image).toBe('r:v1.34.2');
  });
});

describe('template names hash their content', () => {
  const names = (p: NestedClusterProps) => templateNames(renderNestedCluster('tenant-a', p));
  const before = names(base);
  const twoVersions = {
    ...images,
    'v1.34.3': { kernelImage: 'example.com/kernel:6.12', rootfsImage: 'example.com/rootfs:v1.34.3' },
  };

  test('a size change renames the changed group’s machine template, and only it', () => {
    const after = names({ ...base, workers: [{ name: 'md-0', replicas: 2, size: { memory: '8Gi' } }] });
    expect(after.filter((n) => !before.includes(n))).toEqual([expect.stringMatching(/^tenant-a-md-0-[0-9a-f]{8}$/)]);
    const cpAfter = names({ ...base, controlPlane: { size: { cpuCores: 4 } } });
    expect(cpAfter.filter((n) => !before.includes(n))).toEqual([
      expect.stringMatching(/^tenant-a-control-plane-[0-9a-f]{8}$/),
    ]);
    const rootfs = names({ ...base, controlPlane: { size: { rootfsSize: '6Gi' } } });
    expect(rootfs).not.toEqual(before);
  });

  test('a version change renames every template (so every machine rolls)', () => {
    const at = (v: string) => names({ ...base, images: twoVersions, kubernetesVersion: v });
    const v2 = at('v1.34.2');
    expect(v2).toEqual(before);
    const v3 = at('v1.34.3');
    expect(v3).toHaveLength(before.length);
    expect(v3.filter((n) => before.includes(n))).toEqual([]);
    // Even with the same images for both versions.
    const same = names({ ...base, images: () => images['v1.34.2'], kubernetesVersion: 'v1.34.3' });
    expect(same.filter((n) => before.includes(n))).toEqual([]);
  });

  test('replicas, namespace, health checks and the CNI leave them as they are', () => {
    expect(names({ ...base, workers: [{ name: 'md-0', replicas: 5 }], controlPlane: { replicas: 3 } })).toEqual(before);
    expect(
      names({ ...base, metadata: { namespace: 'elsewhere' }, healthChecks: false, cni: { configMaps: ['x'] } }),
    ).toEqual(before);
    // Key order of the props does not matter either.
    const reordered = { workers: base.workers, images, kubernetesVersion: 'v1.34.2' };
    expect(names(reordered)).toEqual(before);
  });
});

test('the longest accepted names give names of at most 63 characters, machines included', () => {
  const cluster = `a${'b'.repeat(MAX_CLUSTER_NAME - 1)}`;
  const pool = `p${'q'.repeat(MAX_CLUSTER_AND_POOL_NAME - cluster.length - 1)}`;
  const objects = renderNestedCluster(cluster, { ...base, workers: [{ name: pool }] });
  const names = [...objects.map((o) => o.metadata.name), ...derivedNames(cluster, [pool])];
  expect(Math.max(...names.map((n) => n.length))).toBe(63);
  for (const n of names) expect(n).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
  // One character more, and it is refused.
  expect(() => renderNestedCluster(`${cluster}c`, base)).toThrow(
    /name: Invalid value: .*must be at most 40 characters/,
  );
  expect(() => renderNestedCluster(cluster, { ...base, workers: [{ name: `${pool}r` }] })).toThrow(
    /workers\[0\]\.name: Invalid value: .*must have at most \d+ characters with this cluster name/,
  );
});

test('npm run synth: the example cluster in its own chart, after the platform', () => {
  const app = buildApp(Testing.app().outdir);
  const chart = app.charts.find((c) => c.node.id === 'nested-cluster')!;
  expect(chart.node.dependencies.map((d) => d.node.id)).toEqual(['platform']);
  const synthesized = chart.toJson() as NestedClusterObject[];
  expect(synthesized).toEqual(renderNestedCluster('tenant-a', NESTED_CLUSTER_EXAMPLE));
  expect(synthesized.map((o) => o.kind)).toEqual([
    'Cluster',
    'KubevisorCluster',
    'KubevisorMachineTemplate',
    'KubeadmControlPlane',
    'MachineHealthCheck',
    'KubevisorMachineTemplate',
    'KubeadmConfigTemplate',
    'MachineDeployment',
    'MachineHealthCheck',
    'ClusterResourceSet',
  ]);
  expect(find(synthesized, 'KubeadmControlPlane').spec.replicas).toBe(1);
  expect(find(synthesized, 'MachineDeployment').spec.replicas).toBe(2);
});

describe('frontends', () => {
  interface Registered {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
  }
  const registered: Registered[] = [];
  beforeAll(() => {
    pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          registered.push({ type: args.type, name: args.name, inputs: args.inputs });
          return { id: `${args.name}-id`, state: args.inputs };
        },
        call: (args) => args.inputs,
      },
      'kubevisor-nested',
      'test',
      true,
    );
  });
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after setMocks, as Pulumi requires
  const frontend = () => require('../../constructs/pulumi') as typeof Frontend;

  test('the cdk8s construct and the Pulumi component emit the same objects', async () => {
    const props: NestedClusterProps = { ...NESTED_CLUSTER_EXAMPLE, cni: { manifests: 'kind: List\n' } };
    const chart = Testing.chart();
    const construct = new NestedCluster(chart, 'tenant-a', props);
    const expected = Testing.synth(chart) as NestedClusterObject[];
    expect(construct.clusterName).toBe('tenant-a');
    expect(construct.kubeconfigSecretName).toBe('tenant-a-kubeconfig');
    expect(construct.apiObjects).toHaveLength(expected.length);

    const component = new (frontend().NestedCluster)('tenant-a', props);
    expect(component.kubeconfigSecretName).toBe('tenant-a-kubeconfig');
    const children = () => registered.filter((r) => r.name.startsWith('tenant-a-'));
    for (let i = 0; i < 40 && children().length < expected.length; i++) await new Promise((r) => setTimeout(r, 50));
    const key = (o: { kind?: unknown; metadata?: unknown }) => `${o.kind}/${(o.metadata as { name: string }).name}`;
    const actual = children().map((r) => ({ kind: r.type.split(':').pop(), ...r.inputs }) as Json);
    expect(actual.map(key).sort()).toEqual(expected.map(key).sort());
    for (const o of expected) {
      const r = actual.find((a) => key(a) === key(o))!;
      expect({ ...r, kind: o.kind }).toEqual(o);
    }
    const types = new Set(children().map((r) => r.type));
    expect(types).toEqual(
      new Set([
        'kubernetes:cluster.x-k8s.io/v1beta2:Cluster',
        'kubernetes:infrastructure.cluster.x-k8s.io/v1alpha1:KubevisorCluster',
        'kubernetes:infrastructure.cluster.x-k8s.io/v1alpha1:KubevisorMachineTemplate',
        'kubernetes:controlplane.cluster.x-k8s.io/v1beta2:KubeadmControlPlane',
        'kubernetes:bootstrap.cluster.x-k8s.io/v1beta2:KubeadmConfigTemplate',
        'kubernetes:cluster.x-k8s.io/v1beta2:MachineDeployment',
        'kubernetes:cluster.x-k8s.io/v1beta2:MachineHealthCheck',
        'kubernetes:addons.cluster.x-k8s.io/v1beta2:ClusterResourceSet',
        'kubernetes:core/v1:ConfigMap',
      ]),
    );
    expect(registered.find((r) => r.name === 'tenant-a' && r.type === 'kubevisor:index:NestedCluster')).toBeDefined();
  });

  test('invalid props throw every problem, naming the construct path or resource, before anything is created', () => {
    const before = registered.length;
    const bad: NestedClusterProps = { ...base, kubernetesVersion: '1.34', controlPlane: { replicas: 2 } };
    expect(() => new (frontend().NestedCluster)('bad', bad)).toThrow(
      /2 validation error\(s\):\n {2}\[bad\] kubernetesVersion: Invalid value: "1\.34".*\n {2}\[bad\] controlPlane\.replicas: Invalid value: 2/,
    );
    expect(registered.length).toBe(before);
    const chart = Testing.chart();
    expect(() => new NestedCluster(chart, 'Bad_Name', base)).toThrow(
      /\[test\/Bad_Name\] name: Invalid value: "Bad_Name"/,
    );
  });

  test('a JSON patch that breaks a kubevisor object fails the cdk8s synth with the object and field path', () => {
    const app = Testing.app();
    const chart = new Chart(app, 'c');
    const construct = new NestedCluster(chart, 'tenant-a', base);
    const kvc = construct.apiObjects.find((o) => o.kind === 'KubevisorCluster')!;
    kvc.addJsonPatch(JsonPatch.replace('/spec/controlPlaneService/type', 'NodePort'));
    expect(() => app.synth()).toThrow(/KubevisorCluster\/tenant-a: spec\.controlPlaneService\.type: Unsupported value/);
  });
});
