/**
 * The adoption check (operator/controller/adoption.ts): the controller's own pods, as a real API server returned them
 * (test/fixtures/vm-pod/as-returned, refreshed by the controller e2e suite), are accepted; a forged pod that names the
 * VM as its controller and differs in one security-relevant field is refused, at that field. Then the Secret: only
 * the one rendered, or one recording this VM at a version it could have had.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VirtualMachineSpec } from '../../../api';
import { pastSpecMismatch, podMismatch, recordedVm, secretMismatch } from '../../../operator/controller/adoption';
import {
  ADOPTION_CASES,
  AS_RETURNED_DIR,
  AS_RETURNED_NAMESPACE,
  adoptionAttachmentPod,
  adoptionPod,
  adoptionVm,
} from '../../fixtures/adoption-cases';

/* eslint-disable @typescript-eslint/no-explicit-any -- forgeries poke at raw pod JSON */
type Json = Record<string, any>;

const returned = (name: string): Json => JSON.parse(readFileSync(join(AS_RETURNED_DIR, `${name}.json`), 'utf8'));
const rendered = (name: string): Json =>
  name === 'attachment' ? adoptionAttachmentPod(AS_RETURNED_NAMESPACE) : adoptionPod(name, AS_RETURNED_NAMESPACE).pod;
const NAMES = [...Object.keys(ADOPTION_CASES), 'attachment'];

test.each(NAMES)('%s: the pod the controller rendered, as the API server returned it, is accepted', (name) => {
  expect(podMismatch(returned(name), rendered(name))).toBeUndefined();
});

test('what the scheduler, admission and CNI plugins add later is accepted too', () => {
  const pod = returned('web-probes-secrets');
  pod.spec.nodeName = 'kwok-node-1';
  pod.spec.priorityClassName = 'tenant-default';
  pod.spec.priority = 1000;
  pod.spec.imagePullSecrets = [{ name: 'registry' }];
  pod.metadata.annotations['k8s.v1.cni.cncf.io/network-status'] = '[]';
  pod.metadata.annotations['cni.projectcalico.org/podIP'] = '10.1.2.3/32';
  // A LimitRange default for a resource the VM pod leaves unset.
  pod.spec.containers[0].resources.limits.memory = '4Gi';
  expect(podMismatch(pod, rendered('web-probes-secrets'))).toBeUndefined();
});

/** One forged change each, with the path the check reports. */
const FORGERIES: [string, string, (pod: Json) => void][] = [
  ['another controller', 'controller', (p) => (p.metadata.ownerReferences[0].uid = 'someone-else')],
  ['no controller', 'controller', (p) => delete p.metadata.ownerReferences],
  ['launcher image', 'spec.containers[0].image', (p) => (p.spec.containers[0].image = 'evil.example/ch:1')],
  [
    'launcher command (a stand-in for Cloud Hypervisor)',
    'spec.containers[0].command',
    (p) => (p.spec.containers[0].command = ['/bin/sh', '-c', 'fake-ch']),
  ],
  ['launcher args', 'spec.containers[0].args', (p) => (p.spec.containers[0].args = ['--debug'])],
  [
    'an added capability',
    'spec.containers[0].securityContext.capabilities.add',
    (p) => p.spec.containers[0].securityContext.capabilities.add.push('NET_ADMIN'),
  ],
  [
    'privileged',
    'spec.containers[0].securityContext.privileged',
    (p) => (p.spec.containers[0].securityContext.privileged = true),
  ],
  [
    'runAsUser',
    'spec.initContainers[0].securityContext.runAsUser',
    (p) => (p.spec.initContainers[0].securityContext.runAsUser = 0),
  ],
  [
    'mountPropagation',
    'spec.containers[0].volumeMounts[1].mountPropagation',
    (p) => (p.spec.containers[0].volumeMounts[1].mountPropagation = 'Bidirectional'),
  ],
  [
    'an extra mount',
    'spec.containers[0].volumeMounts',
    (p) => p.spec.containers[0].volumeMounts.push({ name: 'kubevisor-run', mountPath: '/host' }),
  ],
  [
    'an environment variable',
    'spec.containers[0].env',
    (p) => (p.spec.containers[0].env = [{ name: 'KUBEVISOR_MIGRATION_TARGET', value: 'true' }]),
  ],
  ['an init container less', 'spec.initContainers', (p) => p.spec.initContainers.splice(1, 1)],
  [
    'a disk-backed hot-plug directory',
    'spec.volumes[2].emptyDir.medium',
    (p) => (p.spec.volumes[2].emptyDir = { sizeLimit: '1Mi' }),
  ],
  [
    'an emptyDir size limit',
    'spec.volumes[0].emptyDir.sizeLimit',
    (p) => (p.spec.volumes[0].emptyDir.sizeLimit = '1Ti'),
  ],
  ['the VM Secret name', 'spec.volumes[3].secret.secretName', (p) => (p.spec.volumes[3].secret.secretName = 'other')],
  [
    'the VM Secret items',
    'spec.volumes[3].secret.items[0].key',
    (p) => (p.spec.volumes[3].secret.items[0].key = 'password'),
  ],
  [
    'the cloud-init Secret mandatory',
    'spec.volumes[6].secret.optional',
    (p) => delete p.spec.volumes[6].secret.optional,
  ],
  ['a hostPath volume', 'spec.volumes', (p) => p.spec.volumes.push({ name: 'host', hostPath: { path: '/' } })],
  [
    'the pod security context',
    'spec.securityContext.seccompProfile.type',
    (p) => (p.spec.securityContext.seccompProfile.type = 'Unconfined'),
  ],
  ['host network', 'spec.hostNetwork', (p) => (p.spec.hostNetwork = true)],
  ['host PID', 'spec.hostPID', (p) => (p.spec.hostPID = true)],
  ['host IPC', 'spec.hostIPC', (p) => (p.spec.hostIPC = true)],
  ['a shared process namespace', 'spec.shareProcessNamespace', (p) => (p.spec.shareProcessNamespace = true)],
  [
    'the service-account token',
    'spec.automountServiceAccountToken',
    (p) => (p.spec.automountServiceAccountToken = true),
  ],
  ['another service account', 'spec.serviceAccountName', (p) => (p.spec.serviceAccountName = 'admin')],
  ['a runtime class', 'spec.runtimeClassName', (p) => (p.spec.runtimeClassName = 'kata')],
  ['a toleration of everything', 'spec.tolerations', (p) => p.spec.tolerations.push({ operator: 'Exists' })],
  [
    'another node selector',
    'spec.nodeSelector.kubevisor.io/kvm',
    (p) => (p.spec.nodeSelector['kubevisor.io/kvm'] = 'no'),
  ],
  ['a liveness probe removed', 'spec.containers[0].livenessProbe', (p) => delete p.spec.containers[0].livenessProbe],
  ['another run label', 'labels.kubevisor.io/run', (p) => (p.metadata.labels['kubevisor.io/run'] = '7')],
  [
    'fewer volumes recorded for hot-plug',
    'annotations.kubevisor.io/volumes',
    (p) => (p.metadata.annotations['kubevisor.io/volumes'] = 'root'),
  ],
  [
    'a Multus network',
    'annotations.k8s.v1.cni.cncf.io/networks',
    (p) => (p.metadata.annotations['k8s.v1.cni.cncf.io/networks'] = 'other/their-net'),
  ],
  [
    'an AppArmor profile',
    'annotations.container.apparmor.security.beta.kubernetes.io/launcher',
    (p) => (p.metadata.annotations['container.apparmor.security.beta.kubernetes.io/launcher'] = 'unconfined'),
  ],
];

test.each(FORGERIES)('a pod naming the VM as controller with %s is refused', (_what, path, forge) => {
  const pod = returned('web-probes-secrets');
  forge(pod);
  expect(podMismatch(pod, rendered('web-probes-secrets'))).toBe(path);
});

test('an attachment pod is bound by the controller itself: another node is refused', () => {
  const pod = returned('attachment');
  pod.spec.nodeName = 'kwok-node-1';
  expect(podMismatch(pod, rendered('attachment'))).toBe('spec.nodeName');
});

describe('the VM pod Secret', () => {
  const { secret } = adoptionPod('web-probes-secrets', AS_RETURNED_NAMESPACE);
  const vm = adoptionVm('web-probes-secrets', AS_RETURNED_NAMESPACE);
  const withVm = (v: unknown): Json => ({
    ...secret,
    data: { 'vm.json': Buffer.from(JSON.stringify(v)).toString('base64') },
  });
  const recorded = JSON.parse(Buffer.from((secret as Json).data['vm.json'], 'base64').toString('utf8'));

  test('only the rendered Secret matches: immutable, Opaque, one key, the same VM', () => {
    expect(secretMismatch({ ...secret, metadata: { name: 'x' } }, secret)).toBeUndefined();
    expect(secretMismatch({ ...secret, immutable: false }, secret)).toBe('immutable');
    expect(secretMismatch({ ...secret, type: 'kubernetes.io/tls' }, secret)).toBe('type');
    expect(secretMismatch({ ...secret, data: { ...(secret as Json).data, extra: 'eA==' } }, secret)).toBe('data');
    expect(secretMismatch(withVm({ ...recorded, spec: { ...recorded.spec, runPolicy: 'Once' } }), secret)).toBe(
      'data.vm.json',
    );
  });

  test('a Secret recording this VM at an earlier version gives back that version', () => {
    const earlier = { ...recorded, spec: { ...recorded.spec, runPolicy: 'Once', power: { paused: true } } };
    expect(recordedVm(withVm(earlier), vm)?.spec).toEqual(earlier.spec);
    expect(recordedVm(secret, vm)?.spec).toEqual(vm.spec);
  });

  test.each<[string, (r: Json) => void]>([
    ['another VM uid', (r) => (r.metadata.uid = 'other')],
    ['another VM name', (r) => (r.metadata.name = 'other')],
    ['another namespace', (r) => (r.metadata.namespace = 'other')],
    ['another kind', (r) => (r.kind = 'Pod')],
    ['other hardware', (r) => (r.spec.instance.cpu.sockets = 8)],
    ['other networks', (r) => (r.spec.networks = [])],
    ['another disk image', (r) => (r.spec.volumes[0].containerDisk.image = 'evil.example/disk:1')],
  ])('a Secret recording %s is not this VM', (_what, forge) => {
    const r = structuredClone(recorded);
    forge(r);
    expect(recordedVm(withVm(r), vm)).toBeUndefined();
  });

  test('a Secret that is not JSON, or not immutable, records nothing', () => {
    expect(recordedVm({ ...secret, data: { 'vm.json': Buffer.from('{').toString('base64') } }, vm)).toBeUndefined();
    expect(recordedVm({ ...secret, immutable: false }, vm)).toBeUndefined();
  });
});

test('an earlier version differs from the VM now only by hot-pluggable volumes', () => {
  const now = structuredClone(adoptionVm('web-probes-secrets', AS_RETURNED_NAMESPACE).spec) as VirtualMachineSpec;
  const hotplug = { name: 'data', persistentVolumeClaim: { claimName: 'data', hotpluggable: true } };
  const plain = { name: 'data', persistentVolumeClaim: { claimName: 'data', hotpluggable: false } };
  expect(pastSpecMismatch(now, now)).toBeUndefined();
  expect(pastSpecMismatch({ ...now, volumes: [...now.volumes!, hotplug] }, now)).toBeUndefined();
  expect(pastSpecMismatch(now, { ...now, volumes: [...now.volumes!, hotplug] })).toBeUndefined();
  expect(pastSpecMismatch({ ...now, volumes: [...now.volumes!, plain] }, now)).toBe('spec.volumes[data]');
  expect(pastSpecMismatch(now, { ...now, volumes: now.volumes!.slice(1) })).toBe('spec.volumes[root]');
});

test('disks and file systems differ only by those of hot-pluggable volumes', () => {
  const now = structuredClone(adoptionVm('web-probes-secrets', AS_RETURNED_NAMESPACE).spec) as VirtualMachineSpec;
  const hotplug = { name: 'data', persistentVolumeClaim: { claimName: 'data', hotpluggable: true } };
  const withData = { ...now, volumes: [...now.volumes!, hotplug] };
  const dataDisk = {
    ...withData,
    instance: { ...now.instance, disks: [...(now.instance.disks ?? []), { name: 'data' }] },
  };
  expect(pastSpecMismatch(dataDisk, now)).toBeUndefined();
  expect(pastSpecMismatch(now, dataDisk)).toBeUndefined();
  const rootChanged = (now.instance.disks ?? []).map((d) => (d.name === 'root' ? { ...d, readOnly: true } : d));
  expect(pastSpecMismatch(now, { ...now, instance: { ...now.instance, disks: rootChanged } })).toBe(
    'spec.instance.disks',
  );
  expect(pastSpecMismatch(now, { ...now, instance: { ...now.instance, cpu: { sockets: 9 } } })).toBe('spec.instance');
});
