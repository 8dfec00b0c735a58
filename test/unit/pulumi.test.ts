/**
 * The Pulumi frontend under the official mocks (pulumi.runtime.setMocks, no engine): the example program registers
 * exactly the objects the cdk8s app synthesizes, as children of kubevisor:index:* components.
 */
import * as pulumi from '@pulumi/pulumi';
import { Testing } from 'cdk8s';
import type { KubevisorObject } from '../../api';
import * as cdk8sFrontend from '../../constructs/cdk8s';
import { buildApp } from '../../stacks/cdk8s/app';
import type * as Frontend from '../../constructs/pulumi';
import type * as Inputs from '../../constructs/pulumi/inputs';
import type * as Renderers from '../../constructs';
import type * as K8s from '@pulumi/kubernetes';
import type * as Program from '../../stacks/pulumi';

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  custom?: boolean;
}
const registered: Registered[] = [];

beforeAll(() => {
  pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered.push({ type: args.type, name: args.name, inputs: args.inputs, custom: args.custom });
        // As the Kubernetes provider auto-names an object without metadata.name: the resource name and a suffix.
        const metadata = args.inputs.metadata as Record<string, unknown> | undefined;
        const autoNamed = args.type.startsWith('kubernetes:core/v1:') && !metadata?.name;
        const state = autoNamed
          ? { ...args.inputs, metadata: { ...metadata, name: `${args.name}-1a2b3c4d` } }
          : args.inputs;
        return { id: `${args.name}-id`, state };
      },
      call: (args) => args.inputs,
    },
    'kubevisor-examples',
    'test',
    true,
  );
});

// eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after setMocks, as Pulumi requires
const frontend = () => require('../../constructs/pulumi') as typeof Frontend;
const resolved = <T>(o: pulumi.Output<T>) => new Promise<T>((r) => o.apply(r));

test('each example: the cdk8s object equals the input the Pulumi program registers', async () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- setMocks must run before the program loads
  const program = require('../../stacks/pulumi') as typeof Program;
  await Promise.all(program.vms.map(resolved));
  const cdk8s = (buildApp(Testing.app().outdir).charts.flatMap((c) => c.toJson()) as KubevisorObject[]).filter(
    (o) => o.kind === 'VirtualMachine',
  );
  const pulumiObjects = registered.filter((r) => r.type === 'kubernetes:kubevisor.io/v1alpha1:VirtualMachine');
  // Registration under mocks is asynchronous, so compare as sets.
  expect(pulumiObjects.map((r) => r.name).sort()).toEqual(cdk8s.map((o) => o.metadata.name).sort());
  for (const o of cdk8s) {
    const r = pulumiObjects.find((x) => x.name === o.metadata.name)!;
    expect(r.inputs).toEqual(o);
  }
  // The Service in front of web: the selector the Pulumi program derives from the VM's vmName Output.
  const isService = (r: Registered) => r.type === 'kubernetes:core/v1:Service' && r.name === 'web';
  for (let i = 0; i < 40 && !registered.some(isService); i++) await new Promise((r) => setTimeout(r, 50));
  const service = registered.find(isService)!;
  const cdk8sService = (
    buildApp(Testing.app().outdir).charts.flatMap((c) => c.toJson()) as { kind: string; spec: { selector: unknown } }[]
  ).find((o) => o.kind === 'Service')!;
  expect((service.inputs.spec as { selector: unknown }).selector).toEqual(cdk8sService.spec.selector);
  const components = registered.filter((r) => r.type === 'kubevisor:index:VirtualMachine');
  expect(components.map((c) => c.name).sort()).toEqual(['db', 'kernel-boot', 'web']);
  expect(components.every((c) => c.custom === false)).toBe(true);
});

test('children are parented to their component (the URN carries the component type)', async () => {
  const { VirtualMachine } = frontend();
  const vm = new VirtualMachine('solo', {
    disks: [{ name: 'root' }],
    volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1' } }],
  });
  const urn = await resolved(vm.resource.urn);
  expect(urn).toMatch(/kubevisor:index:VirtualMachine\$kubernetes:kubevisor\.io\/v1alpha1:VirtualMachine::solo$/);
  expect(await resolved(vm.vmName)).toBe('solo');
});

test('invalid args throw every error before anything is registered', async () => {
  const { VirtualMachine, VirtualMachineMigration } = frontend();
  const before = registered.length;
  expect(() => new VirtualMachine('broken', { cpu: { sockets: 0 }, disks: [{ name: 'ghost' }] })).toThrow(
    /3 validation error\(s\):\n {2}\[broken\] spec\.instance\.cpu\.sockets: [^\n]*\n {2}\[broken\] spec\.instance\.disks: .*every disk needs a volume of the same name.*\n {2}\[broken\] spec\.instance: .*nothing to boot/,
  );
  expect(() => new VirtualMachineMigration('m', { vmName: 'Not_A_Name' })).toThrow(/\[m\] spec\.vmName: Invalid value/);
  expect(registered.length).toBe(before);
});

test('the migration component registers its CustomResource', async () => {
  const { VirtualMachineMigration } = frontend();
  const m = new VirtualMachineMigration('move-web', { vmName: 'web' });
  expect(await resolved(m.migrationName)).toBe('move-web');
  const r = registered.find((x) => x.type === 'kubernetes:kubevisor.io/v1alpha1:VirtualMachineMigration')!;
  expect(r.inputs).toEqual({
    apiVersion: 'kubevisor.io/v1alpha1',
    kind: 'VirtualMachineMigration',
    metadata: { name: 'move-web' },
    spec: { vmName: 'web', timeoutSeconds: 600 },
  });
});

/** Registered inputs of the typed Kubernetes resources (not components) whose names carry one of the prefixes. */
const kubernetesObjects = (prefixes: string[]) =>
  registered
    .filter((r) => r.custom && r.type.startsWith('kubernetes:') && prefixes.some((p) => r.name.startsWith(`${p}-`)))
    .map((r) => r.inputs);
const byKey = (o: Record<string, unknown>) => {
  const m = o.metadata as { name: string; namespace?: string };
  return `${o.kind as string}/${m.namespace ?? ''}/${m.name}`;
};
const settle = () => new Promise((r) => setTimeout(r, 50));

test('the platform and node setup components register exactly the objects the cdk8s constructs synthesize', async () => {
  const { KubevisorPlatform, NodeSetup } = frontend();
  const before = registered.length;
  const props = { image: 'registry.example/kubevisor:9.9.9', controller: { replicas: 3 } };
  const platform = new KubevisorPlatform('install', props);
  new NodeSetup('prep', { image: props.image, hugepages2Mi: 512 }, { dependsOn: platform });
  for (let i = 0; i < 40 && kubernetesObjects(['install', 'prep']).length < 22; i++) await settle();
  // A user's cdk8s app, with chart and construct ids of its own: the objects do not depend on them.
  const chart = Testing.chart();
  new cdk8sFrontend.KubevisorPlatform(chart, 'my-platform', props);
  new cdk8sFrontend.NodeSetup(chart, 'my-node-setup', { image: props.image, hugepages2Mi: 512 });
  const expected = Testing.synth(chart) as Record<string, unknown>[];
  const actual = kubernetesObjects(['install', 'prep']);
  expect(actual.map(byKey).sort()).toEqual(expected.map(byKey).sort());
  for (const o of expected) expect(actual.find((a) => byKey(a) === byKey(o))).toEqual(o);
  const types = registered.slice(before).map((r) => r.type);
  expect(types).toEqual(expect.arrayContaining(['kubevisor:index:KubevisorPlatform', 'kubevisor:index:NodeSetup']));
  expect(types).toEqual(expect.arrayContaining(['kubernetes:apps/v1:Deployment', 'kubernetes:apps/v1:DaemonSet']));
});

test('invalid platform args throw every problem before anything is registered', () => {
  const { KubevisorPlatform, NodeSetup } = frontend();
  const before = registered.length;
  expect(() => new KubevisorPlatform('bad', { namespace: 'Not A Namespace', controller: { replicas: 0 } })).toThrow(
    /2 validation error\(s\):\n {2}\[kubevisor\/platform\] namespace: Invalid value: "Not A Namespace": must be a DNS label.*\n {2}\[kubevisor\/platform\] controller\.replicas: Invalid value: 0/,
  );
  expect(() => new NodeSetup('bad', { hugepages1Gi: -1 })).toThrow(/hugepages1Gi: Invalid value: -1/);
  expect(registered.length).toBe(before);
});

test("args fed by Outputs: an auto-named Secret into cloud-init, the VM's vmName into a migration", async () => {
  const { VirtualMachine, VirtualMachineArgsBuilder, VirtualMachineMigration, VolumeSources } = frontend();
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after setMocks
  const k8s = require('@pulumi/kubernetes') as typeof K8s;
  const secret = new k8s.core.v1.Secret('web-user-data', { stringData: { value: '#cloud-config\n' } });
  const vm = new VirtualMachine(
    'outputs',
    new VirtualMachineArgsBuilder({ metadata: { namespace: pulumi.output('tenant-a') } })
      .addDisk('root', VolumeSources.containerDisk('example.com/disk:1'))
      .addCloudInit({ userDataSecretName: secret.metadata.name })
      .build(),
  );
  const migration = new VirtualMachineMigration('move-outputs', {
    vmName: vm.vmName,
    metadata: { namespace: vm.namespace.apply((n) => n ?? 'default') },
  });
  expect(await resolved(migration.migrationName)).toBe('move-outputs');
  const object = registered.find((r) => r.name === 'outputs' && r.custom)!.inputs as {
    metadata: unknown;
    spec: { volumes: unknown[] };
  };
  expect(object.metadata).toEqual({ name: 'outputs', namespace: 'tenant-a' });
  expect(object.spec.volumes).toEqual([
    { name: 'root', containerDisk: { image: 'example.com/disk:1', imagePullPolicy: 'Always', maxSize: '10Gi' } },
    { name: 'cloudinit', cloudInit: { userDataSecretName: 'web-user-data-1a2b3c4d' } },
  ]);
  const move = registered.find((r) => r.name === 'move-outputs' && r.custom)!.inputs as { spec: unknown };
  expect(move.spec).toEqual({ vmName: 'outputs', timeoutSeconds: 600 });
  // The component records its args as its own inputs (not `{}`).
  expect(registered.find((r) => r.name === 'outputs' && !r.custom)!.inputs).toHaveProperty('disks');
});

test('args that resolve invalid fail as a ResourceError naming the resource and each field', () => {
  // renderedObject runs this on the resolved args inside apply (the engine then fails the update on the resource).
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after setMocks
  const { checkedObject } = require('../../constructs/pulumi/inputs') as typeof Inputs;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the shared renderer
  const { renderVirtualMachine } = require('../../constructs') as typeof Renderers;
  const parent = new pulumi.ComponentResource('test:index:Parent', 'p');
  let thrown: unknown;
  try {
    checkedObject('late', { cpu: { sockets: 0 }, disks: [{ name: 'ghost' }] }, renderVirtualMachine, parent);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(pulumi.ResourceError);
  expect((thrown as pulumi.ResourceError).resource).toBe(parent);
  expect((thrown as Error).message).toMatch(
    /kubevisor: 3 validation error\(s\):\n {2}\[late\] spec\.instance\.cpu\.sockets: Invalid value: 0[^\n]*\n {2}\[late\] spec\.instance\.disks: [^\n]*\(fails for spec\.instance\.disks\[0\] \("ghost"\)\)/,
  );
});

test('when the args hold a secret, the errors name fields but show no value', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after setMocks
  const { checkedObject } = require('../../constructs/pulumi/inputs') as typeof Inputs;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the shared renderer
  const { renderVirtualMachine } = require('../../constructs') as typeof Renderers;
  const parent = new pulumi.ComponentResource('test:index:Parent', 'q');
  const props = {
    kernel: { image: 'example.com/k:1', cmdline: 'password=hunter2-but-far-too-long-'.repeat(200) },
    memory: { size: '2GB' },
  };
  const message = (() => {
    try {
      checkedObject('secretive', props, renderVirtualMachine, parent, true);
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  })();
  expect(message).toContain(
    '[secretive] spec.instance.memory.size: Invalid value (value hidden: the args hold a secret)',
  );
  expect(message).not.toContain('hunter2');
  expect(message).not.toContain('2GB');
});

test('the args builder gives the object the cdk8s add… methods give', () => {
  const { VirtualMachineArgsBuilder, VolumeSources, NetworkSources, Bindings } = frontend();
  const args = new VirtualMachineArgsBuilder({ memory: { size: '2Gi' } })
    .addDisk('root', VolumeSources.containerDisk('example.com/disk:1'), { readOnly: true })
    .addCloudInit({ userData: '#cloud-config\n' })
    .addInterface('pod', NetworkSources.pod(), Bindings.masquerade({ ports: [{ port: 80 }] }))
    .build();
  const chart = Testing.chart();
  new cdk8sFrontend.VirtualMachine(chart, 'built', { metadata: { name: 'built' }, memory: { size: '2Gi' } })
    .addDisk('root', cdk8sFrontend.VolumeSources.containerDisk('example.com/disk:1'), { readOnly: true })
    .addCloudInit({ userData: '#cloud-config\n' })
    .addInterface(
      'pod',
      cdk8sFrontend.NetworkSources.pod(),
      cdk8sFrontend.Bindings.masquerade({ ports: [{ port: 80 }] }),
    );
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the shared renderer
  const { renderVirtualMachine } = require('../../constructs') as typeof Renderers;
  expect([renderVirtualMachine('built', args as never)]).toEqual(Testing.synth(chart));
});

test('the args builder takes whole sources as Outputs too (not spread as Output objects)', async () => {
  const { VirtualMachine, VirtualMachineArgsBuilder, NetworkSources } = frontend();
  new VirtualMachine(
    'whole-outputs',
    new VirtualMachineArgsBuilder()
      .addDisk('root', pulumi.output({ containerDisk: { image: 'example.com/disk:2' } }))
      .addCloudInit(pulumi.output({ userData: '#cloud-config\n' }))
      .addInterface('pod', NetworkSources.pod(), pulumi.output({ masquerade: {} }), pulumi.output('52:54:00:aa:bb:cc'))
      .build(),
  );
  const isVm = (r: Registered) => r.name === 'whole-outputs' && r.custom;
  for (let i = 0; i < 40 && !registered.some(isVm); i++) await new Promise((r) => setTimeout(r, 50));
  const spec = registered.find(isVm)!.inputs.spec as { volumes: unknown[]; instance: { interfaces: unknown[] } };
  expect(spec.volumes).toEqual([
    { name: 'root', containerDisk: { image: 'example.com/disk:2', imagePullPolicy: 'Always', maxSize: '10Gi' } },
    { name: 'cloudinit', cloudInit: { userData: '#cloud-config\n' } },
  ]);
  expect(spec.instance.interfaces).toEqual([
    { name: 'pod', masquerade: { cidr: '10.0.2.0/30' }, mac: '52:54:00:aa:bb:cc' },
  ]);
});
