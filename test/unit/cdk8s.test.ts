import { ApiObject, Chart, JsonPatch, Testing } from 'cdk8s';
import {
  Bindings,
  NetworkSources,
  VirtualMachine,
  VirtualMachineMigration,
  VolumeSources,
  stableMac,
} from '../../constructs/cdk8s';
import { renderVirtualMachine } from '../../constructs';
import { EXAMPLES } from '../../stacks/examples';

test('helpers build the same object as plain props', () => {
  const chart = Testing.chart();
  const vm = new VirtualMachine(chart, 'web', {
    metadata: EXAMPLES.web.metadata,
    runPolicy: 'Always',
    cpu: { sockets: 1, coresPerSocket: 2 },
    memory: { size: '2Gi' },
    readinessProbe: EXAMPLES.web.readinessProbe,
  });
  vm.addDisk('root', VolumeSources.containerDisk('quay.io/containerdisks/debian:12'))
    .addCloudInit({ userData: (EXAMPLES.web.volumes![1].cloudInit as { userData: string }).userData })
    .addInterface('pod', NetworkSources.pod(), Bindings.masquerade({ ports: [{ port: 80 }, { port: 22 }] }));
  expect(Testing.synth(chart)).toEqual([renderVirtualMachine('web', EXAMPLES.web)]);
});

test('the ApiObject is the default child, so ApiObject.of() and JSON patches work as escape hatches', () => {
  const chart = Testing.chart();
  const vm = new VirtualMachine(chart, 'vm', {
    metadata: { name: 'vm' },
    kernel: { image: 'k:1', cmdline: 'root=/dev/vda' },
  });
  expect(ApiObject.of(vm)).toBe(vm.apiObject);
  ApiObject.of(vm).addJsonPatch(JsonPatch.add('/spec/instance/cpu/sockets', 4));
  expect(Testing.synth(chart)[0].spec.instance.cpu.sockets).toBe(4);
});

test('without metadata.name the name is a DNS label derived from the construct path', () => {
  const chart = Testing.chart();
  const vm = new VirtualMachine(chart, 'My_Web', { kernel: { image: 'k:1', cmdline: 'root=/dev/vda' } });
  expect(vm.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  expect(vm.name.length).toBeLessThanOrEqual(63);
  expect(Testing.synth(chart)[0].metadata.name).toBe(vm.name);
});

test('interfaces get stable, unicast MACs unless one is given', () => {
  expect(stableMac('web', 'pod')).toBe(stableMac('web', 'pod'));
  expect(stableMac('web', 'pod')).not.toBe(stableMac('web', 'lan'));
  expect(stableMac('web', 'pod')).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
  const chart = Testing.chart();
  new VirtualMachine(chart, 'vm', { metadata: { name: 'vm' }, kernel: { image: 'k:1', cmdline: 'x' } })
    .addInterface('a', NetworkSources.pod())
    .addInterface('b', NetworkSources.multus('ns/br'), Bindings.bridge(), '52:54:00:aa:bb:cc');
  const ifaces = Testing.synth(chart)[0].spec.instance.interfaces;
  expect(ifaces).toEqual([
    { name: 'a', mac: stableMac('vm', 'a') },
    { name: 'b', bridge: {}, mac: '52:54:00:aa:bb:cc' },
  ]);
});

test('labels and annotations merge with chart labels', () => {
  const chart = new Chart(Testing.app(), 'test', { labels: { team: 'infra' } });
  new VirtualMachine(chart, 'vm', {
    metadata: { name: 'vm', labels: { app: 'x' }, annotations: { note: 'y' } },
    kernel: { image: 'k:1', cmdline: 'x' },
  });
  const m = Testing.synth(chart)[0].metadata;
  expect(m.labels).toEqual({ app: 'x', team: 'infra' });
  expect(m.annotations).toEqual({ note: 'y' });
});

test('synth applies the CRD defaults', () => {
  const chart = Testing.chart();
  new VirtualMachine(chart, 'vm', { metadata: { name: 'vm' } }).addDisk(
    'root',
    VolumeSources.persistentVolumeClaim('root'),
  );
  expect(Testing.synth(chart)[0].spec).toEqual({
    runPolicy: 'Once',
    power: { paused: false, shutdownGracePeriodSeconds: 60 },
    instance: {
      cpu: { sockets: 1, coresPerSocket: 1, dedicatedCPUPlacement: false },
      memory: { size: '1Gi' },
      disks: [{ name: 'root', readOnly: false }],
    },
    volumes: [{ name: 'root', persistentVolumeClaim: { claimName: 'root', hotpluggable: false } }],
  });
});

test('migrations synthesize with defaults and are validated', () => {
  const chart = Testing.chart();
  new VirtualMachineMigration(chart, 'move', { metadata: { name: 'move-web' }, vmName: 'web' });
  expect(Testing.synth(chart)[0]).toEqual({
    apiVersion: 'kubevisor.io/v1alpha1',
    kind: 'VirtualMachineMigration',
    metadata: { name: 'move-web' },
    spec: { vmName: 'web', timeoutSeconds: 600 },
  });
  const bad = Testing.chart();
  new VirtualMachineMigration(bad, 'move', { vmName: 'Web', timeoutSeconds: 0 });
  expect(() => Testing.synth(bad)).toThrow(/\[test\/move\] spec\.vmName: Invalid value: "Web"/);
  expect(() => Testing.synth(bad)).toThrow(/\[test\/move\] spec\.timeoutSeconds: Invalid value: 0/);
});

test('validation sees the object as written: a JSON patch that breaks it fails synth, one that fixes it passes', () => {
  const chart = Testing.chart();
  const vm = new VirtualMachine(chart, 'vm', { metadata: { name: 'vm' } }).addDisk(
    'root',
    VolumeSources.containerDisk('example.com/disk:1'),
  );
  ApiObject.of(vm).addJsonPatch(JsonPatch.replace('/spec/instance/memory/size', '2GB'));
  expect(() => Testing.synth(chart)).toThrow(
    /\[test\/vm\] spec\.instance\.memory\.size: Invalid value: "2GB"[^\n]*write 2G \(powers of 1000\) or 2Gi/,
  );
  const fixed = Testing.chart();
  const ok = new VirtualMachine(fixed, 'vm', { metadata: { name: 'vm' }, memory: { size: '2GB' } }).addDisk(
    'root',
    VolumeSources.containerDisk('example.com/disk:1'),
  );
  ApiObject.of(ok).addJsonPatch(JsonPatch.replace('/spec/instance/memory/size', '2Gi'));
  expect(
    (Testing.synth(fixed)[0] as { spec: { instance: { memory: { size: string } } } }).spec.instance.memory.size,
  ).toBe('2Gi');
});
