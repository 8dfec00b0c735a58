/** The defaults the constructs apply are the ones the committed CRD gives the API server. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Testing } from 'cdk8s';
import { applyDefaults } from '../../api/defaults';
import type { OpenAPISchema } from '../../api';
import { VirtualMachine } from '../../constructs/cdk8s';

const crdSchema = (file: string): OpenAPISchema =>
  parse(readFileSync(join(__dirname, '..', '..', 'deploy', 'crds', file), 'utf8')).spec.versions[0].schema
    .openAPIV3Schema;

test('the construct output equals the user object defaulted with deploy/crds', () => {
  const userObject = {
    apiVersion: 'kubevisor.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: 'vm' },
    spec: {
      instance: {
        memory: { size: '2Gi', hugepages: {} },
        disks: [{ name: 'root' }],
        interfaces: [{ name: 'pod', mac: '52:54:00:00:00:01', masquerade: { ports: [{ port: 80 }] } }],
      },
      volumes: [{ name: 'root', dataVolume: { volumeName: 'root' } }],
      networks: [{ name: 'pod', pod: {} }],
      tolerations: [{ key: 'k', value: 'v' }],
    },
  };
  const chart = Testing.chart();
  new VirtualMachine(chart, 'vm', {
    metadata: { name: 'vm' },
    memory: { size: '2Gi', hugepages: {} },
    disks: [{ name: 'root' }],
    volumes: [{ name: 'root', dataVolume: { volumeName: 'root' } }],
    interfaces: [{ name: 'pod', mac: '52:54:00:00:00:01', masquerade: { ports: [{ port: 80 }] } }],
    networks: [{ name: 'pod', pod: {} }],
    tolerations: [{ key: 'k', value: 'v' }],
  });
  const [synthesized] = Testing.synth(chart);
  expect(synthesized).toEqual(applyDefaults(crdSchema('virtualmachines.kubevisor.io.yaml'), userObject));
  // and the defaults did something: page size, readOnly, cidr, protocol, operator, dataVolume.hotpluggable
  expect(synthesized.spec.instance.memory.hugepages).toEqual({ pageSize: '2Mi' });
  expect(synthesized.spec.instance.interfaces[0].masquerade).toEqual({
    cidr: '10.0.2.0/30',
    ports: [{ port: 80, protocol: 'TCP' }],
  });
  expect(synthesized.spec.tolerations).toEqual([{ key: 'k', value: 'v', operator: 'Equal' }]);
  expect(synthesized.spec.volumes[0].dataVolume).toEqual({ volumeName: 'root', hotpluggable: false });
});

test('nulls are dropped and nested defaults apply inside defaulted values', () => {
  const schema = crdSchema('virtualmachines.kubevisor.io.yaml');
  const out = applyDefaults(schema, { spec: { instance: { cpu: null }, runPolicy: null } });
  expect(out).toEqual({
    spec: {
      runPolicy: 'Once',
      power: { paused: false, shutdownGracePeriodSeconds: 60 },
      instance: { cpu: { sockets: 1, coresPerSocket: 1, dedicatedCPUPlacement: false }, memory: { size: '1Gi' } },
    },
  });
});
