/**
 * How the controller creates a VM pod and its Secret (operator/controller/pod-create.ts), against the API stand-in:
 * an object found under the name is accepted only when it is the controller's own, the Secret is never replaced once
 * its pod exists, and a Secret the VM still controls does not outlive an attempt that made no pod.
 */
import { KubeClient } from '../../../operator/kube/client';
import type { KubeObject } from '../../../operator/kube';
import { NameTakenError } from '../../../operator/controller/cluster';
import { PodCreator } from '../../../operator/controller/pod-create';
import { vmPodRequest } from '../../../operator/controller/vm-pod-request';
import { KubeApiStandin, STANDIN_KINDS } from '../kube/kube-api-standin';
import { adoptionVm } from '../../fixtures/adoption-cases';

/* eslint-disable @typescript-eslint/no-explicit-any -- tests poke at raw objects */
type Json = Record<string, any>;

const NS = 'tenant';
const CASE = 'web-probes-secrets';
const ROLE = { run: 0 };
const OPTIONS = { image: 'kubevisor:e2e' };

let standin: KubeApiStandin;
let client: KubeClient;
let creator: PodCreator;

beforeEach(async () => {
  standin = await KubeApiStandin.start([
    ...STANDIN_KINDS,
    { apiVersion: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true },
  ]);
  client = new KubeClient({ server: standin.url, token: 'test' });
  creator = new PodCreator(client);
});
afterEach(async () => {
  client.close();
  await standin.stop();
});

const vm = (mutate: (spec: Json) => void = () => {}) => {
  const v = adoptionVm(CASE, NS) as Json;
  mutate(v.spec);
  return v as ReturnType<typeof adoptionVm> & { metadata: { namespace: string; uid: string } };
};
const request = (v = vm()) => vmPodRequest(v as never, ROLE, OPTIONS);
const get = (kind: 'Pod' | 'Secret', name: string) => client.tryGet<KubeObject & Json>('v1', kind, name, NS);
const nameOf = (o: Json) => o.metadata.name as string;
const ownerKind = async (name: string) => (await get('Secret', name))?.metadata.ownerReferences?.[0]?.kind;

test('creates the Secret, then the pod, and hands the Secret to the pod', async () => {
  const { pod, secret } = request();
  const uid = await creator.createPod(pod, secret);
  expect(uid).toBe((await get('Pod', nameOf(pod)))?.metadata.uid);
  expect((await get('Secret', nameOf(pod)))?.metadata.ownerReferences).toEqual([
    { apiVersion: 'v1', kind: 'Pod', name: nameOf(pod), uid, controller: true },
  ]);
});

test('the Secret is created while the write that must precede the pod runs; the pod only after that write', async () => {
  const { pod, secret } = request();
  let finish!: () => void;
  const before = new Promise<void>((resolve) => (finish = resolve));
  const creating = creator.createPod(pod, { ...secret, before });
  await new Promise((r) => setTimeout(r, 50));
  expect(await get('Secret', nameOf(pod))).toBeDefined();
  expect(await get('Pod', nameOf(pod))).toBeUndefined();
  finish();
  const uid = await creating;
  expect(uid).toBe((await get('Pod', nameOf(pod)))?.metadata.uid);
  expect(await ownerKind(nameOf(pod))).toBe('Pod');
});

test('when the write that must precede the pod fails, no pod is made and the Secret does not outlive the attempt', async () => {
  const { pod, secret } = request();
  const before = Promise.reject(new Error('conflict'));
  await expect(creator.createPod(pod, { ...secret, before })).rejects.toThrow('conflict');
  expect(await get('Pod', nameOf(pod))).toBeUndefined();
  expect(await get('Secret', nameOf(pod))).toBeUndefined();
});

test('a hand-over in the background: settling the Secret waits for it and then costs no request', async () => {
  const { pod, secret } = request();
  const uid = await creator.createPod(pod, { ...secret, handOverInBackground: true });
  expect(uid).toBe((await get('Pod', nameOf(pod)))?.metadata.uid);
  await creator.settleVmSecret(NS, nameOf(pod), vm().metadata.uid, uid);
  const before = client.requestCount.total;
  expect(await ownerKind(nameOf(pod))).toBe('Pod');
  await creator.settleVmSecret(NS, nameOf(pod), vm().metadata.uid, uid);
  expect(client.requestCount.total).toBe(before + 1); // only the GET of this test
});

test('a pod it created and handed its Secret to is settled already: settling it again costs no request', async () => {
  const { pod, secret } = request();
  const uid = await creator.createPod(pod, secret);
  const before = client.requestCount.total;
  await creator.settleVmSecret(NS, nameOf(pod), vm().metadata.uid, uid);
  expect(client.requestCount.total).toBe(before);
});

test('a retry finds its own pod and Secret and accepts them, also after the VM changed, replacing nothing', async () => {
  const first = request();
  const uid = await creator.createPod(first.pod, first.secret);
  const data = (await get('Secret', nameOf(first.pod)))?.data;
  expect(await creator.createPod(first.pod, first.secret)).toBe(uid);
  // The VM changed since (a hot-plugged volume, another runPolicy): its pod is still the one made from the VM then.
  const changed = request(
    vm((s) => {
      s.runPolicy = 'Once';
      s.instance.disks.push({ name: 'data', readOnly: false });
      s.volumes.push({ name: 'data', persistentVolumeClaim: { claimName: 'data', hotpluggable: true } });
    }),
  );
  expect(await creator.createPod(changed.pod, changed.secret)).toBe(uid);
  expect((await get('Secret', nameOf(first.pod)))?.data).toEqual(data);
});

test('a Secret the VM still controls, left before its pod was made, is made again from the VM now', async () => {
  const stale = request(vm((s) => (s.runPolicy = 'Once')));
  await client.create(stale.secret.secret as KubeObject);
  const now = request();
  await creator.createPod(now.pod, now.secret);
  expect((await get('Secret', nameOf(now.pod)))?.data).toEqual((now.secret.secret as Json).data);
  expect(await ownerKind(nameOf(now.pod))).toBe('Pod');
});

test('a pod that names the VM as its controller but differs is refused, and the new Secret is not left to it', async () => {
  const { pod, secret } = request();
  const forged = structuredClone(pod) as Json;
  forged.spec.containers[0].command = ['/bin/sh', '-c', 'fake-ch'];
  await client.create(forged as KubeObject);
  const error = await creator.createPod(pod, secret).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(NameTakenError);
  expect((error as Error).message).toContain('spec.containers[0].command differs');
  expect(await get('Secret', nameOf(pod))).toBeUndefined();
});

test('a forged pod and a forged Secret that both name the VM are refused', async () => {
  const { pod, secret } = request();
  const forged = structuredClone(pod) as Json;
  forged.spec.volumes[2].emptyDir = {};
  await client.create(forged as KubeObject);
  const other = request(vm((s) => (s.instance.cpu.sockets = 4)));
  await client.create(other.secret.secret as KubeObject);
  await expect(creator.createPod(pod, secret)).rejects.toThrow(NameTakenError);
  // Nothing is replaced once a pod of that name exists.
  expect((await get('Secret', nameOf(pod)))?.data).toEqual((other.secret.secret as Json).data);
});

test('a Secret under another controller is refused before any pod is made', async () => {
  const { pod, secret } = request();
  const foreign = structuredClone(secret.secret) as Json;
  foreign.metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'x', controller: true }];
  await client.create(foreign as KubeObject);
  await expect(creator.createPod(pod, secret)).rejects.toThrow(/Secret tenant\/\S+ already exists/);
  expect(await get('Pod', nameOf(pod))).toBeUndefined();
});

test('a pod create that fails leaves no Secret behind', async () => {
  const { pod, secret } = request();
  standin.failNext({ method: 'POST', pathIncludes: '/pods' }, 403, 'Forbidden');
  await expect(creator.createPod(pod, secret)).rejects.toThrow('403');
  expect(await get('Secret', nameOf(pod))).toBeUndefined();
});

describe('settling a Secret the VM still controls', () => {
  const uid = (o: Json) => o.metadata.uid as string;

  test('without its pod it is deleted; with the pod the reconciler knows it is handed over', async () => {
    const gone = request();
    await client.create(gone.secret.secret as KubeObject);
    await creator.settleVmSecret(NS, nameOf(gone.pod), vm().metadata.uid);
    expect(await get('Secret', nameOf(gone.pod))).toBeUndefined();

    const other = vmPodRequest(vm() as never, { run: 1 }, OPTIONS);
    await client.create(other.secret.secret as KubeObject);
    const pod = await client.create(other.pod as KubeObject);
    await creator.settleVmSecret(NS, nameOf(other.pod), vm().metadata.uid, uid(pod as Json));
    expect(await ownerKind(nameOf(other.pod))).toBe('Pod');
  });

  test('a pod of that name the reconciler does not know keeps its hands off', async () => {
    const { pod, secret } = request();
    await client.create(secret.secret as KubeObject);
    await client.create(pod as KubeObject);
    await creator.settleVmSecret(NS, nameOf(pod), vm().metadata.uid, 'another-uid');
    expect(await ownerKind(nameOf(pod))).toBe('VirtualMachine');
  });
});
