// Must compile cleanly: the README's shapes, and each typed field used correctly.
import type { Output } from '@pulumi/pulumi';
import { App, Chart } from 'cdk8s';
import { Bindings, NetworkSources, VirtualMachine, VolumeSources } from '../../constructs/cdk8s';
import type { VirtualMachineArgs } from '../../constructs/pulumi';
import { VolumeSources as PulumiVolumeSources } from '../../constructs/pulumi';

const chart = new Chart(new App(), 'vms');
new VirtualMachine(chart, 'web', {
  metadata: { name: 'web' },
  runPolicy: 'Always',
  cpu: { sockets: 1, coresPerSocket: 2 },
  memory: { size: '2Gi' },
  readinessProbe: { httpGet: { port: 80 } },
})
  .addDisk('root', VolumeSources.containerDisk('quay.io/containerdisks/debian:12'))
  .addCloudInit({ userData: '#cloud-config\npackages: [nginx]\n' })
  .addInterface('pod', NetworkSources.pod(), Bindings.masquerade({ ports: [{ port: 80 }, { port: 22 }] }))
  .addInterface('fast', NetworkSources.multus('sriov-net'), Bindings.sriov());

new VirtualMachine(chart, 'db')
  .addDisk('root', { persistentVolumeClaim: { claimName: 'db-root' } })
  .addInterface('pod', { pod: {} });

export const args: VirtualMachineArgs = {
  metadata: { name: 'web' },
  disks: [{ name: 'root' }, { name: 'data' }],
  volumes: [
    { name: 'root', ...PulumiVolumeSources.containerDisk('quay.io/containerdisks/debian:12') },
    { name: 'data', containerDisk: { image: 'quay.io/containerdisks/debian:12', maxSize: '20Gi' } },
  ],
  interfaces: [{ name: 'pod', masquerade: { ports: [{ port: 80 }] } }],
  networks: [{ name: 'pod', pod: {} }],
  livenessProbe: { tcpSocket: { port: 80 }, periodSeconds: 10 },
  resources: { requests: { cpu: '2' }, limits: { cpu: 2 } },
  tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'vms', effect: 'NoSchedule' }],
  affinity: {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a'] }] },
        ],
      },
    },
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: 'web' } } },
        },
      ],
    },
  },
};

// Pulumi args take Inputs at any depth: an Output where a string goes, a whole list as an Output.
declare const secretName: Output<string>;
declare const labels: Output<string>;
export const withOutputs: VirtualMachineArgs = {
  metadata: { name: 'web', labels: { team: labels } },
  disks: [{ name: 'cloudinit' }],
  volumes: [{ name: 'cloudinit', cloudInit: { userDataSecretName: secretName } }],
  kernel: { image: 'example.com/kernel:1', cmdline: secretName },
  // A whole nested object as an Output, as @pulumi/kubernetes takes it.
  resources: secretName.apply((cpu) => ({ requests: { cpu } })),
};
