/**
 * Which attachment pods a running VM needs: one per volume added since its pod was created (hotpluggable, used by a
 * disk), and an attachment pod goes only once the node daemon no longer has its volume attached.
 */
import type { VirtualMachineSpec, VirtualMachineStatus, VmVolume } from '../../../api';
import { reconcileHotplug } from '../../../operator/controller/hotplug';
import type { PodView } from '../../../operator/controller/vm-lifecycle';

const pvc = (name: string, hotpluggable = true): VmVolume => ({
  name,
  persistentVolumeClaim: { claimName: `${name}-claim`, hotpluggable },
});
const spec = (volumes: VmVolume[]): VirtualMachineSpec => ({
  instance: { disks: volumes.map((v) => ({ name: v.name })) },
  volumes,
});
const current: PodView = {
  metadata: { name: 'vm-x-1', uid: 'pod-uid', annotations: { 'kubevisor.io/volumes': 'root' } },
  spec: { nodeName: 'n1' },
};
const attachment = (volume: string, owner = 'pod-uid', deleting = false): PodView => ({
  metadata: {
    name: `hp-${volume}`,
    labels: { 'kubevisor.io/hotplug-volume': volume },
    ownerReferences: [{ uid: owner, controller: true }],
    ...(deleting ? { deletionTimestamp: '2026-11-29T00:00:00Z' } : {}),
  },
});
const running: VirtualMachineStatus = { phase: 'Running' };
const describeActions = (a: ReturnType<typeof reconcileHotplug>) =>
  a.map((x) => (x.type === 'createAttachmentPod' ? `create ${x.volume.name}` : `delete ${x.name}`));

test.each<[string, VirtualMachineSpec, VirtualMachineStatus, PodView[], string[]]>([
  [
    'a volume added to a running VM gets an attachment pod',
    spec([pvc('root', false), pvc('data')]),
    running,
    [],
    ['create data'],
  ],
  ['…once', spec([pvc('root', false), pvc('data')]), running, [attachment('data')], []],
  ['a volume the pod was created with needs none', spec([pvc('root')]), running, [], []],
  [
    'nor one that is not hotpluggable (the API refuses adding it anyway)',
    spec([pvc('root', false), pvc('data', false)]),
    running,
    [],
    [],
  ],
  [
    'nor a volume no disk uses',
    { instance: { disks: [{ name: 'root' }] }, volumes: [pvc('root', false), pvc('data')] },
    running,
    [],
    [],
  ],
  ['nothing while the VM does not run', spec([pvc('root', false), pvc('data')]), { phase: 'Scheduled' }, [], []],
  [
    'an attachment pod of an earlier VM pod goes',
    spec([pvc('root', false), pvc('data')]),
    running,
    [attachment('data', 'old')],
    ['create data', 'delete hp-data'],
  ],
  [
    'a removed volume still attached keeps its pod until the daemon detached it',
    spec([pvc('root', false)]),
    { ...running, hotplugVolumes: [{ name: 'data', phase: 'Attached' }] },
    [attachment('data')],
    [],
  ],
  ['…then it goes', spec([pvc('root', false)]), running, [attachment('data')], ['delete hp-data']],
  [
    'a pod already being deleted is left alone',
    spec([pvc('root', false)]),
    running,
    [attachment('data', 'pod-uid', true)],
    [],
  ],
])('%s', (_name, s, status, attachments, expected) => {
  expect(describeActions(reconcileHotplug(s, status, current, attachments))).toEqual(expected);
});
