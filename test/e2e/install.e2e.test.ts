/**
 * Installing kubevisor from code on the real control plane: the platform and node setup as the constructs synthesize
 * them (namespace of their own, so other suites' kubevisor-system is untouched) applied with server-side apply — the
 * CRDs establish, the Deployment and DaemonSets are accepted and their pods scheduled on the KWOK nodes; every object
 * `npm run synth` writes is accepted by a server-side dry run; and `kubevisor node-setup`, run as the node-setup
 * ServiceAccount with a token bound to a pod on its node, labels that node while the platform's admission policy
 * refuses it every other node and every other label.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { renderPlatform } from '../../constructs/platform/render';
import type { ManifestObject } from '../../constructs/platform/render';
import { NODE_SETUP_SERVICE_ACCOUNT } from '../../constructs/platform/names';
import { buildApp } from '../../stacks/cdk8s/app';
import { KubeApiError, type KubeClient, type KubeObject } from './harness/kube-client';
import { writeTokenKubeconfig } from './harness/kubeconfig';
import { sharedControlPlane, sharedControlPlaneInfo } from './harness/shared';
import { waitFor } from './harness/wait';

/* eslint-disable @typescript-eslint/no-explicit-any -- status fields of built-in kinds, read loosely */
type Json = Record<string, any>;

const run = promisify(execFile);
const info = sharedControlPlaneInfo();
let client: KubeClient;
const ns = `kv-install-${process.pid}`;
const IMAGE = 'registry.invalid/kubevisor/e2e:never-pulled';
let objects: ManifestObject[];
const scratch = mkdtempSync(join(tmpdir(), 'kubevisor-install-'));

const clusterScoped = (o: ManifestObject) => !o.metadata.namespace && o.kind !== 'Namespace';

beforeAll(async () => {
  client = sharedControlPlane();
  objects = renderPlatform({ namespace: ns, image: IMAGE }, { recheckSeconds: 10 });
});

afterAll(async () => {
  // Everything the install made except the CRDs, which the other suites share.
  for (const o of (objects ?? []).filter((x) => clusterScoped(x) && x.kind !== 'CustomResourceDefinition').reverse()) {
    await client.delete(o.apiVersion, o.kind, o.metadata.name, undefined, { ignoreNotFound: true });
  }
  await client.delete('v1', 'Namespace', ns, undefined, { ignoreNotFound: true });
  for (const node of info.nodeNames) {
    // What node setup wrote, except kubevisor.io/kvm, which the harness's KWOK nodes carry from the start.
    const cpu = ['kubevisor.io/cpu-vendor', 'kubevisor.io/cpu-model', 'kubevisor.io/cpu-features'];
    await client
      .patch({ apiVersion: 'v1', kind: 'Node', metadata: { name: node } }, 'merge', {
        metadata: {
          labels: Object.fromEntries(cpu.map((k) => [k, null])),
          annotations: { 'kubevisor.io/node-setup': null },
        },
      })
      .catch(() => undefined);
  }
  client.close();
  rmSync(scratch, { recursive: true, force: true });
});

test('the platform applies with server-side apply; CRDs establish, workloads are accepted and scheduled', async () => {
  for (const o of objects) {
    await client.apply(o as unknown as KubeObject, { fieldManager: 'kubevisor-install', force: true });
  }
  for (const crd of objects.filter((o) => o.kind === 'CustomResourceDefinition')) {
    await waitFor(
      `CRD ${crd.metadata.name} Established`,
      async () => {
        const c = await client.get<KubeObject & Json>(crd.apiVersion, crd.kind, crd.metadata.name);
        return c.status?.conditions?.some((x: Json) => x.type === 'Established' && x.status === 'True') || undefined;
      },
      { timeoutMs: 30_000 },
    );
  }
  const pods = (component: string) =>
    client.list<KubeObject & Json>('v1', 'Pod', {
      namespace: ns,
      labelSelector: `app.kubernetes.io/name=kubevisor,app.kubernetes.io/component=${component}`,
    });
  const scheduled = async (component: string, count: number) =>
    waitFor(
      `${count} ${component} pods scheduled`,
      async () => {
        const list = await pods(component);
        return list.filter((p) => p.spec.nodeName).length === count ? list : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  // The controller's two replicas; the daemon on every node labelled for VMs (all KWOK nodes are), node setup on all.
  const controllers = await scheduled('controller', 2);
  const daemons = await scheduled('daemon', info.nodeNames.length);
  const setups = await scheduled('node-setup', info.nodeNames.length);
  expect(new Set(daemons.map((p) => p.spec.nodeName))).toEqual(new Set(info.nodeNames));
  expect(new Set(setups.map((p) => p.spec.nodeName))).toEqual(new Set(info.nodeNames));
  expect(controllers.every((p) => p.spec.serviceAccountName === 'kubevisor-controller')).toBe(true);
  // Admission defaulted nothing away: the daemon pods keep their host namespaces and privileges.
  expect(daemons[0].spec).toEqual(expect.objectContaining({ hostNetwork: true, hostPID: true }));
  const deployment = await client.get<KubeObject & Json>('apps/v1', 'Deployment', 'kubevisor-controller', ns);
  expect(deployment.status?.replicas).toBe(2);
  process.stdout.write(
    `install: ${objects.length} objects applied, CRDs established, ${controllers.length} controller + ` +
      `${daemons.length} daemon + ${setups.length} node-setup pods scheduled\n`,
  );
});

test('every object `npm run synth` writes is accepted by the API server (server-side dry run)', async () => {
  const out = join(scratch, 'synth');
  buildApp(out).synth();
  let docs = readdirSync(out)
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(join(out, f), 'utf8')).map((d) => d.toJS() as ManifestObject));
  // Cluster API's own kinds (the nested cluster example) need Cluster API installed: nested-cluster.e2e.test.ts dry-runs
  // those with its CRDs and webhooks. Everything else, kubevisor's infrastructure kinds included, is checked here.
  const isClusterApiKind = (d: ManifestObject) =>
    d.apiVersion.includes('cluster.x-k8s.io/') && !d.apiVersion.startsWith('infrastructure.cluster.x-k8s.io/');
  expect(docs.filter(isClusterApiKind).length).toBeGreaterThan(0);
  docs = docs.filter((d) => !isClusterApiKind(d));
  const kinds = new Set(docs.map((d) => d.kind));
  for (const kind of [
    'Deployment',
    'DaemonSet',
    'CustomResourceDefinition',
    'ClusterRole',
    'VirtualMachine',
    'KubevisorCluster',
    'KubevisorMachineTemplate',
  ]) {
    expect(kinds).toContain(kind);
  }
  // Namespaced objects need their namespace to exist even for a dry run.
  const platformNs = docs.find((d) => d.kind === 'Namespace')!.metadata.name;
  // A suite before this one may have removed it: wait until it is gone rather than write into a terminating one.
  const existing = await waitFor(
    `namespace ${platformNs} not terminating`,
    async () => {
      const n = await client.tryGet('v1', 'Namespace', platformNs);
      return n?.metadata.deletionTimestamp ? undefined : { found: Boolean(n) };
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  const existed = existing.found;
  if (!existed) await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: platformNs } });
  try {
    const refused: string[] = [];
    for (const d of docs) {
      await client
        .apply(d as unknown as KubeObject, { dryRun: true, fieldManager: 'kubevisor-synth', force: true })
        .catch((e: unknown) => refused.push(`${d.kind}/${d.metadata.name}: ${(e as Error).message}`));
    }
    expect(refused).toEqual([]);
    process.stdout.write(
      `synth: ${docs.length} objects accepted by a server-side dry run (${[...kinds].length} kinds)\n`,
    );
  } finally {
    if (!existed) await client.delete('v1', 'Namespace', platformNs, undefined, { ignoreNotFound: true });
  }
});

describe('node setup on a node', () => {
  let identity: { token: string; client: KubeClient };
  const node = () => info.nodeNames[0];
  const other = () => info.nodeNames[1];

  beforeAll(async () => {
    // The identity of the DaemonSet's own pod on the node (KWOK marks it Running; nothing runs): a token bound to it
    // carries the node, as the kubelet would mount it.
    const pod = await waitFor(
      `node-setup pod Running on ${node()}`,
      async () =>
        (
          await client.list<KubeObject & Json>('v1', 'Pod', {
            namespace: ns,
            labelSelector: 'app.kubernetes.io/component=node-setup',
            fieldSelector: `spec.nodeName=${node()}`,
          })
        ).find((p) => p.status?.phase === 'Running'),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const request = await client.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${ns}/serviceaccounts/${NODE_SETUP_SERVICE_ACCOUNT}/token`,
      {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: {
            expirationSeconds: 3600,
            boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
          },
        },
      },
    );
    identity = { token: request.status.token, client: client.withToken(request.status.token) };
  });
  afterAll(() => identity?.client.close());

  /** Host roots as the privileged pod would see them: /dev with both devices, /sys with a 2 MiB pool, /proc/cpuinfo. */
  function hostRoots(): string[] {
    const root = join(scratch, 'host');
    mkdirSync(join(root, 'dev', 'net'), { recursive: true });
    symlinkSync('/dev/null', join(root, 'dev', 'kvm'));
    symlinkSync('/dev/null', join(root, 'dev', 'net', 'tun'));
    mkdirSync(join(root, 'sys/kernel/mm/hugepages/hugepages-2048kB'), { recursive: true });
    writeFileSync(join(root, 'sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages'), '0\n');
    mkdirSync(join(root, 'proc'));
    writeFileSync(join(root, 'proc', 'meminfo'), 'MemTotal:        8388608 kB\n');
    writeFileSync(
      join(root, 'proc', 'cpuinfo'),
      'processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7R13 Processor\nflags\t\t: fpu svm avx2\n',
    );
    return ['--dev-root', join(root, 'dev'), '--sys-root', join(root, 'sys'), '--proc-root', join(root, 'proc')];
  }

  test.each<[string, () => [string, unknown], string]>([
    [
      'another node',
      () => [other(), { metadata: { labels: { 'kubevisor.io/kvm': 'true' } } }],
      'node setup may change only the node its pod runs on',
    ],
    [
      'a label outside kubevisor.io/',
      () => [node(), { metadata: { labels: { 'node-role.kubernetes.io/control-plane': '' } } }],
      'node setup may change only labels under kubevisor.io/',
    ],
    [
      'an annotation outside kubevisor.io/',
      () => [node(), { metadata: { annotations: { 'example.com/x': 'y' } } }],
      'node setup may change only annotations under kubevisor.io/',
    ],
    ['the node spec', () => [node(), { spec: { unschedulable: true } }], 'node setup may not change a node spec'],
    [
      'removing a label outside kubevisor.io/',
      () => [node(), { metadata: { labels: { 'kubernetes.io/os': null } } }],
      'node setup may change only labels under kubevisor.io/',
    ],
    [
      'an owner reference (the garbage collector would delete the node)',
      () => [
        node(),
        {
          metadata: {
            ownerReferences: [
              { apiVersion: 'v1', kind: 'ConfigMap', name: 'gone', uid: '00000000-0000-0000-0000-000000000000' },
            ],
          },
        },
      ],
      'node setup may not change owner references',
    ],
    [
      'a finalizer',
      () => [node(), { metadata: { finalizers: ['example.com/hold'] } }],
      'node setup may not change finalizers',
    ],
  ])('the admission policy refuses it %s', async (_what, request, message) => {
    const [name, patch] = request();
    // The policy takes effect once the API server has loaded it: retry until it refuses (bounded).
    const error = await waitFor(
      'the admission policy to refuse',
      async () => {
        try {
          await identity.client.patch({ apiVersion: 'v1', kind: 'Node', metadata: { name } }, 'merge', patch, {
            dryRun: true,
          });
          return undefined;
        } catch (e) {
          return e;
        }
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as KubeApiError).code).toBe(422); // a ValidatingAdmissionPolicy denial is Invalid
    expect((error as Error).message).toContain(message);
  });

  test('labels its own node through the real API server, as its ServiceAccount, with the policy in force', async () => {
    const kubeconfig = join(scratch, 'node-setup.kubeconfig');
    writeTokenKubeconfig(kubeconfig, { server: info.server, caPem: info.caPem, token: identity.token });
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'operator/cli.ts', 'node-setup', '--once', '--no-load-modules', '--hugepages-2mi', '64',
        '--node-name', node(), '--kubeconfig', kubeconfig, ...hostRoots()], // prettier-ignore
      { cwd: join(__dirname, '..', '..'), timeout: 60_000 },
    );
    expect(stdout).toContain('node ready for VMs');
    const labelled = await client.get<KubeObject & Json>('v1', 'Node', node());
    expect(labelled.metadata.labels).toEqual(
      expect.objectContaining({
        'kubevisor.io/kvm': 'true',
        'kubevisor.io/cpu-vendor': 'AuthenticAMD',
        'kubevisor.io/cpu-model': 'AMD-EPYC-7R13-Processor',
        'kubevisor.io/cpu-features': expect.stringMatching(/^[0-9a-f]{16}$/),
      }),
    );
    expect(JSON.parse(labelled.metadata.annotations?.['kubevisor.io/node-setup'] ?? '{}')).toEqual({
      ready: true,
      problems: [],
      modulesFailed: [],
      hugepages: { '2Mi': 64 },
    });
  });
});
