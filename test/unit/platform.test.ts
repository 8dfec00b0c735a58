/**
 * The platform install (constructs/cdk8s/platform.ts, node-setup.ts) as synthesized: what each workload runs with,
 * that its RBAC is exactly operator/rbac.ts, that every prop reaches the objects, and a table of bad props, each a
 * distinct rule with its field path.
 */
import { Testing } from 'cdk8s';
import { KINDS, KUBEVISOR_VERSION } from '../../api';
import { KubevisorPlatform, NodeSetup } from '../../constructs/cdk8s';
import type { KubevisorPlatformProps, NodeSetupProps } from '../../constructs/cdk8s';
import { renderPlatform } from '../../constructs/platform/render';
import type { ManifestObject } from '../../constructs/platform/render';
import {
  CONTROLLER_NAMESPACED_RULES,
  CONTROLLER_RULES,
  DAEMON_CLUSTER_RULES,
  DAEMON_NAMESPACED_RULES,
  NODE_SETUP_RULES,
  SIGNER_CLUSTER_RULES,
  SIGNER_NAMESPACED_RULES,
} from '../../operator/rbac';
import type { PolicyRule } from '../../operator/rbac';
import packageJson from '../../package.json';

/* eslint-disable @typescript-eslint/no-explicit-any -- assertions walk raw manifests */
type Json = Record<string, any>;

const find = (objects: ManifestObject[], kind: string, name: string): Json => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};
const podSpec = (o: Json) => o.spec.template.spec;
const container = (o: Json) => podSpec(o).containers[0];
const flag = (args: string[], name: string) => args[args.indexOf(name) + 1];

/** Every (apiGroup, resource, resourceName, verb) a set of rules grants: rules compare by what they allow. */
const grants = (rules: readonly PolicyRule[]) =>
  rules
    .flatMap((r) =>
      r.apiGroups.flatMap((g) =>
        r.resources.flatMap((res) =>
          (r.resourceNames?.length ? r.resourceNames : ['*']).flatMap((n) =>
            r.verbs.map((v) => `${g}|${res}|${n}|${v}`),
          ),
        ),
      ),
    )
    .sort();

test('the version constant is package.json’s', () => {
  expect(KUBEVISOR_VERSION).toBe(packageJson.version);
});

describe('with default props', () => {
  const objects = renderPlatform();

  test('holds the namespace, the CRDs, three identities, the workloads and the admission policy, in install order', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'Namespace/kubevisor-system',
      ...KINDS.map((k) => `CustomResourceDefinition/${k.plural}.${k.group ?? 'kubevisor.io'}`),
      'ServiceAccount/kubevisor-controller',
      'ClusterRole/kubevisor-controller',
      'ClusterRoleBinding/kubevisor-controller',
      'Role/kubevisor-controller',
      'RoleBinding/kubevisor-controller',
      'Deployment/kubevisor-controller',
      'PodDisruptionBudget/kubevisor-controller',
      'ServiceAccount/kubevisor-daemon',
      'ClusterRole/kubevisor-daemon',
      'ClusterRoleBinding/kubevisor-daemon',
      'Role/kubevisor-daemon',
      'RoleBinding/kubevisor-daemon',
      'DaemonSet/kubevisor-daemon',
      'ServiceAccount/kubevisor-node-setup',
      'ClusterRole/kubevisor-node-setup',
      'ClusterRoleBinding/kubevisor-node-setup',
      'ValidatingAdmissionPolicy/kubevisor-node-setup',
      'ValidatingAdmissionPolicyBinding/kubevisor-node-setup',
      'DaemonSet/kubevisor-node-setup',
    ]);
    expect(find(objects, 'Namespace', 'kubevisor-system').metadata.labels).toEqual(
      expect.objectContaining({ 'pod-security.kubernetes.io/enforce': 'privileged' }),
    );
  });

  test.each<[string, string, readonly PolicyRule[]]>([
    ['ClusterRole', 'kubevisor-controller', [...CONTROLLER_RULES, ...SIGNER_CLUSTER_RULES]],
    ['Role', 'kubevisor-controller', [...CONTROLLER_NAMESPACED_RULES, ...SIGNER_NAMESPACED_RULES]],
    ['ClusterRole', 'kubevisor-daemon', DAEMON_CLUSTER_RULES],
    ['Role', 'kubevisor-daemon', DAEMON_NAMESPACED_RULES],
    ['ClusterRole', 'kubevisor-node-setup', NODE_SETUP_RULES],
  ])('%s %s grants exactly operator/rbac.ts', (kind, name, rules) => {
    expect(grants(find(objects, kind, name).rules)).toEqual(grants(rules));
  });

  test('each binding gives its role to its own ServiceAccount only', () => {
    for (const name of ['kubevisor-controller', 'kubevisor-daemon', 'kubevisor-node-setup']) {
      const binding = find(objects, 'ClusterRoleBinding', name);
      expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name });
      expect(binding.subjects).toEqual([{ apiGroup: '', kind: 'ServiceAccount', name, namespace: 'kubevisor-system' }]);
    }
  });

  test('the controller: leader election, probes, restricted security context, its own token, a PDB', () => {
    const d = find(objects, 'Deployment', 'kubevisor-controller');
    expect(d.spec.replicas).toBe(2);
    const c = container(d);
    expect(c.args.slice(0, 1)).toEqual(['controller']);
    expect(c.args).toContain('--leader-elect');
    expect(flag(c.args, '--image')).toBe(`ghcr.io/kubevisor/kubevisor:${KUBEVISOR_VERSION}`);
    expect(flag(c.args, '--daemon-user')).toBe('system:serviceaccount:kubevisor-system:kubevisor-daemon');
    expect(flag(c.args, '--lease-namespace')).toBe('kubevisor-system');
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 8080, scheme: 'HTTP' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 8080, scheme: 'HTTP' });
    expect(c.securityContext).toEqual(
      expect.objectContaining({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      }),
    );
    expect(podSpec(d)).toEqual(
      expect.objectContaining({
        serviceAccountName: 'kubevisor-controller',
        automountServiceAccountToken: true,
        priorityClassName: 'system-cluster-critical',
      }),
    );
    expect(podSpec(d).securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(d.spec.template.metadata.labels).not.toHaveProperty(['cdk8s.io/metadata.addr']);
    const pdb = find(objects, 'PodDisruptionBudget', 'kubevisor-controller');
    expect(pdb.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: d.spec.selector.matchLabels } });
  });

  test('the controller runs anywhere by default, or where nodeSelector and tolerations place it', () => {
    const spec = podSpec(find(objects, 'Deployment', 'kubevisor-controller'));
    expect({ nodeSelector: spec.nodeSelector, tolerations: spec.tolerations }).toEqual({
      nodeSelector: undefined,
      tolerations: undefined,
    });
    const placed = podSpec(
      find(
        renderPlatform({
          controller: {
            nodeSelector: { 'node-role.kubernetes.io/control-plane': '' },
            tolerations: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }],
          },
        }),
        'Deployment',
        'kubevisor-controller',
      ),
    );
    expect({ nodeSelector: placed.nodeSelector, tolerations: placed.tolerations }).toEqual({
      nodeSelector: { 'node-role.kubernetes.io/control-plane': '' },
      tolerations: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule', operator: 'Exists' }],
    });
  });

  test('the node daemon: host network and PID, privileged, the kubelet directory Bidirectional, on KVM nodes', () => {
    const ds = find(objects, 'DaemonSet', 'kubevisor-daemon');
    const spec = podSpec(ds);
    expect(spec).toEqual(
      expect.objectContaining({
        hostNetwork: true,
        hostPID: true,
        dnsPolicy: 'ClusterFirstWithHostNet',
        nodeSelector: { 'kubevisor.io/kvm': 'true' },
        tolerations: [{ operator: 'Exists' }],
        priorityClassName: 'system-node-critical',
        serviceAccountName: 'kubevisor-daemon',
      }),
    );
    const c = container(ds);
    expect(c.securityContext.privileged).toBe(true);
    expect(c.env.map((e: Json) => [e.name, e.valueFrom.fieldRef.fieldPath])).toEqual([
      ['NODE_NAME', 'spec.nodeName'],
      ['NODE_IP', 'status.hostIP'],
    ]);
    expect(c.volumeMounts).toContainEqual({
      mountPath: '/var/lib/kubelet',
      mountPropagation: 'Bidirectional',
      name: 'kubelet',
    });
    expect(flag(c.args, '--device-plugin-dir')).toBe('/var/lib/kubelet/device-plugins');
  });

  test('node setup: privileged, the host modules read-only, confined by an admission policy to its own node', () => {
    const ds = find(objects, 'DaemonSet', 'kubevisor-node-setup');
    expect(container(ds).args).toEqual(['node-setup', '--load-modules', '--dev-root', '/host/dev', '--recheck', '300']);
    expect(container(ds).volumeMounts).toEqual([
      { mountPath: '/host/dev', name: 'host-dev', readOnly: true },
      { mountPath: '/lib/modules', name: 'modules', readOnly: true },
    ]);
    const policy = find(objects, 'ValidatingAdmissionPolicy', 'kubevisor-node-setup');
    expect(policy.spec.matchConditions).toEqual([
      {
        name: 'node-setup',
        expression: "request.userInfo.username == 'system:serviceaccount:kubevisor-system:kubevisor-node-setup'",
      },
    ]);
    expect(policy.spec.validations.map((v: Json) => v.message)).toEqual([
      'node setup may change only the node its pod runs on',
      'node setup may not change a node spec',
      'node setup may not change owner references',
      'node setup may not change finalizers',
      'node setup may change only labels under kubevisor.io/',
      'node setup may change only annotations under kubevisor.io/',
    ]);
    expect(find(objects, 'ValidatingAdmissionPolicyBinding', 'kubevisor-node-setup').spec).toEqual({
      policyName: 'kubevisor-node-setup',
      validationActions: ['Deny'],
    });
  });
});

test('every prop reaches the objects', () => {
  const props: KubevisorPlatformProps = {
    image: 'registry.example/kv:1',
    imagePullPolicy: 'Always',
    namespace: 'virt',
    controller: {
      replicas: 3,
      resources: { cpuRequestMillis: 250, cpuLimitMillis: 1000, memoryRequestMiB: 300, memoryLimitMiB: 600 },
      priorityClassName: 'platform-high',
      nodeLossGraceSeconds: 120,
      watchNamespace: 'vms',
    },
    daemon: {
      resources: { memoryRequestMiB: 200 },
      priorityClassName: 'node-high',
      tolerations: [{ key: 'dedicated', value: 'vms', effect: 'NoSchedule' }, { key: 'gpu' }],
      kubeletRootDir: '/data/kubelet',
    },
  };
  const objects = renderPlatform(props, {
    hugepages2Mi: 1024,
    hugepages1Gi: 2,
    loadModules: false,
    recheckSeconds: 60,
    nodeSelector: { pool: 'vm' },
  });
  const d = find(objects, 'Deployment', 'kubevisor-controller');
  const c = container(d);
  expect(d.metadata.namespace).toBe('virt');
  expect(d.spec.replicas).toBe(3);
  expect([c.image, c.imagePullPolicy, flag(c.args, '--image')]).toEqual([
    'registry.example/kv:1',
    'Always',
    'registry.example/kv:1',
  ]);
  expect(c.resources).toEqual({
    requests: { cpu: '250m', memory: '300Mi' },
    limits: { cpu: '1000m', memory: '600Mi' },
  });
  expect(podSpec(d).priorityClassName).toBe('platform-high');
  expect([flag(c.args, '--node-loss-grace'), flag(c.args, '--namespace'), flag(c.args, '--lease-namespace')]).toEqual([
    '120',
    'vms',
    'virt',
  ]);
  expect(flag(c.args, '--daemon-user')).toBe('system:serviceaccount:virt:kubevisor-daemon');
  const daemon = find(objects, 'DaemonSet', 'kubevisor-daemon');
  expect(container(daemon).resources.requests.memory).toBe('200Mi');
  expect(podSpec(daemon).priorityClassName).toBe('node-high');
  // The operator spelled out: Kubernetes would default it to Equal, the props say Exists when no value is given.
  expect(podSpec(daemon).tolerations).toEqual([
    { key: 'dedicated', value: 'vms', effect: 'NoSchedule', operator: 'Equal' },
    { key: 'gpu', operator: 'Exists' },
  ]);
  expect(flag(container(daemon).args, '--kubelet-root')).toBe('/data/kubelet');
  expect(podSpec(daemon).volumes[0].hostPath.path).toBe('/data/kubelet');
  expect(flag(container(daemon).args, '--pki-namespace')).toBe('virt');
  const setup = find(objects, 'DaemonSet', 'kubevisor-node-setup');
  expect(setup.metadata.namespace).toBe('virt');
  expect(container(setup).image).toBe('registry.example/kv:1');
  expect(container(setup).args).toEqual([
    'node-setup',
    '--no-load-modules',
    '--dev-root',
    '/host/dev',
    '--recheck',
    '60',
    '--hugepages-2mi',
    '1024',
    '--hugepages-1gi',
    '2',
  ]);
  expect(container(setup).volumeMounts.map((m: Json) => m.name)).toEqual(['host-dev']);
  expect(podSpec(setup).nodeSelector).toEqual({ pool: 'vm' });
  expect(
    find(objects, 'ValidatingAdmissionPolicy', 'kubevisor-node-setup').spec.matchConditions[0].expression,
  ).toContain('system:serviceaccount:virt:kubevisor-node-setup');
  for (const kind of ['ClusterRoleBinding', 'RoleBinding']) {
    for (const b of objects.filter((o) => o.kind === kind) as Json[]) expect(b.subjects[0].namespace).toBe('virt');
  }
});

test('the objects do not depend on the chart or construct ids', () => {
  const chart = Testing.chart();
  new KubevisorPlatform(chart, 'a');
  new NodeSetup(chart, 'b');
  expect(Testing.synth(chart)).toEqual(renderPlatform());
});

const platformCases: [string, KubevisorPlatformProps, string][] = [
  ['image with a space', { image: 'a b' }, 'image: Invalid value: "a b": must be an image reference'],
  [
    'namespace not a DNS label',
    { namespace: 'Kube_Visor' },
    'namespace: Invalid value: "Kube_Visor": must be a DNS label',
  ],
  [
    'no replicas',
    { controller: { replicas: 0 } },
    'controller.replicas: Invalid value: 0: must be a whole number from 1 to 10',
  ],
  ['fractional replicas', { controller: { replicas: 1.5 } }, 'controller.replicas: Invalid value: 1.5'],
  [
    'request above limit',
    { controller: { resources: { memoryRequestMiB: 900, memoryLimitMiB: 512 } } },
    'controller.resources.memoryRequestMiB: Invalid value: 900: must not exceed memoryLimitMiB (512)',
  ],
  [
    'memory too small to run Node',
    { daemon: { resources: { memoryLimitMiB: 8 } } },
    'daemon.resources.memoryLimitMiB: Invalid value: 8: must be a whole number from 16',
  ],
  [
    'priority class not a name',
    { controller: { priorityClassName: 'High!' } },
    'controller.priorityClassName: Invalid value: "High!"',
  ],
  [
    'node-loss grace under 10 s',
    { controller: { nodeLossGraceSeconds: 5 } },
    'controller.nodeLossGraceSeconds: Invalid value: 5',
  ],
  [
    'watch namespace not a label',
    { controller: { watchNamespace: 'a/b' } },
    'controller.watchNamespace: Invalid value: "a/b"',
  ],
  [
    'controller node selector value not a label value',
    { controller: { nodeSelector: { pool: 'a b' } } },
    'controller.nodeSelector[pool]: Invalid value: "a b": must be a label value',
  ],
  [
    'controller toleration Equal without key',
    { controller: { tolerations: [{ operator: 'Equal', value: 'v' }] } },
    'controller.tolerations[0].key: Invalid value: "": is required when operator is Equal',
  ],
  [
    'controller tolerating every taint',
    { controller: { tolerations: [{ operator: 'Exists' }] } },
    'controller.tolerations[0].key: Invalid value: "": is required: the controller must not tolerate every taint',
  ],
  [
    'toleration Exists with a value',
    { daemon: { tolerations: [{ key: 'k', operator: 'Exists', value: 'v' }] } },
    'daemon.tolerations[0].value: Invalid value: "v": must be empty when operator is Exists',
  ],
  [
    'toleration Equal without key',
    { daemon: { tolerations: [{ operator: 'Equal', value: 'v' }] } },
    'daemon.tolerations[0].key: Invalid value: "": is required when operator is Equal',
  ],
  [
    'toleration key not a label key',
    { daemon: { tolerations: [{ key: 'bad key' }] } },
    'daemon.tolerations[0].key: Invalid value: "bad key": must be a label key',
  ],
  [
    'kubelet dir relative',
    { daemon: { kubeletRootDir: 'var/lib/kubelet' } },
    'daemon.kubeletRootDir: Invalid value: "var/lib/kubelet": must be an absolute path',
  ],
  [
    'kubelet dir escaping',
    { daemon: { kubeletRootDir: '/var/lib/../../etc' } },
    'daemon.kubeletRootDir: Invalid value: "/var/lib/../../etc"',
  ],
  ['kubelet dir is /', { daemon: { kubeletRootDir: '/' } }, 'daemon.kubeletRootDir: Invalid value: "/"'],
];
test.each(platformCases)('KubevisorPlatform refuses %s', (_name, props, message) => {
  const chart = Testing.chart();
  expect(() => new KubevisorPlatform(chart, 'p', props)).toThrow(`[test/p] ${message}`);
});

const nodeSetupCases: [string, NodeSetupProps, string][] = [
  [
    'negative hugepages',
    { hugepages2Mi: -1 },
    'hugepages2Mi: Invalid value: -1: must be a whole number from 0 to 1048576',
  ],
  [
    'more 1Gi pages than any node has',
    { hugepages1Gi: 5000 },
    'hugepages1Gi: Invalid value: 5000: must be a whole number from 0 to 4096',
  ],
  [
    'recheck too often',
    { recheckSeconds: 1 },
    'recheckSeconds: Invalid value: 1: must be a whole number from 10 to 86400',
  ],
  [
    'node selector value not a label value',
    { nodeSelector: { pool: 'a b' } },
    'nodeSelector[pool]: Invalid value: "a b": must be a label value',
  ],
  [
    'node selector key not a label key',
    { nodeSelector: { '-x': 'y' } },
    'nodeSelector[-x]: Invalid value: "-x": must be a label key',
  ],
  ['namespace not a DNS label', { namespace: 'NS' }, 'namespace: Invalid value: "NS": must be a DNS label'],
];
test.each(nodeSetupCases)('NodeSetup refuses %s', (_name, props, message) => {
  const chart = Testing.chart();
  expect(() => new NodeSetup(chart, 'n', props)).toThrow(`[test/n] ${message}`);
});

test('every problem is reported at once', () => {
  const chart = Testing.chart();
  expect(() => new KubevisorPlatform(chart, 'p', { image: '', controller: { replicas: 0 } })).toThrow(
    /2 validation error/,
  );
});
