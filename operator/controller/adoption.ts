/**
 * Whether an object found under the name of one kubevisor is creating is kubevisor's own. Names are stable per run
 * (constructs/vm-pod-name.ts), so a retried create meets the object an earlier attempt made — and a tenant who may
 * create pods and Secrets in the VM's namespace can compute the name too and create first, naming the VM as the
 * controller in the owner references (nothing checks an owner reference). The privileged node daemon then drives
 * whatever the controller accepts, so an existing object is accepted only when it is what the controller renders:
 * the same controller, and the same spec once both sides are normalized alike. Normalizing removes only what the API
 * server defaults and what others legitimately set:
 * - set by others: `nodeName` (the scheduler; compared when the rendered pod binds itself), priority and preemption
 *   (Priority admission), `serviceAccount` and `imagePullSecrets` (ServiceAccount admission), the not-ready and
 *   unreachable tolerations (DefaultTolerationSeconds), `overhead` (RuntimeClass), resources the rendered pod leaves
 *   unset (LimitRanger defaults), and annotations CNI plugins and admission write on running pods;
 * - API defaults: dnsPolicy, schedulerName, serviceAccountName, terminationMessagePath/-Policy, probe timings and
 *   httpGet path/scheme, container port protocol, fieldRef apiVersion, Secret volume defaultMode, requests taken from
 *   limits, quantities in canonical form, empty lists.
 * Everything else — init containers and containers (names, images, command, args, env, securityContext,
 * volumeMounts and their propagation, devices, probes, lifecycle), volumes and their sources, the pod's
 * securityContext, host namespaces, the service-account token, runtimeClassName, scheduling, and the labels and
 * annotations in kubevisor's reserved domains — must be equal. A mutating webhook that injects containers (a mesh
 * sidecar) makes the controller's own pod unrecognisable: that is refused too, the safe way round.
 */
import type { VirtualMachineSpec } from '../../api';
import { parseQuantity } from '../../api';
import { isReservedMetadataKey } from '../../constructs/pod-metadata';
import { VM_SECRET_KEY } from '../pod-layout';
import { controllerOf } from './cluster';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v ?? null)) as T;

/** Annotations written on a pod after it was created (CNI results, admission notes): never the creator's. */
const SET_BY_OTHERS: ReadonlySet<string> = new Set([
  'k8s.v1.cni.cncf.io/network-status',
  'k8s.v1.cni.cncf.io/networks-status',
  'cni.projectcalico.org/podIP',
  'cni.projectcalico.org/podIPs',
  'cni.projectcalico.org/containerID',
  'k8s.ovn.org/pod-networks',
  'kubernetes.io/limit-ranger',
  'openshift.io/scc',
]);

/** The tolerations DefaultTolerationSeconds adds to every pod that has none of its own for these taints. */
const isDefaultToleration = (t: unknown) =>
  isObject(t) &&
  (t.key === 'node.kubernetes.io/not-ready' || t.key === 'node.kubernetes.io/unreachable') &&
  t.operator === 'Exists' &&
  t.effect === 'NoExecute' &&
  t.tolerationSeconds === 300 &&
  t.value === undefined;

/** A quantity as an exact, reduced fraction, so `1Gi`, `1024Mi` and `1073741824` compare equal. */
function canonicalQuantity(q: unknown): unknown {
  if (typeof q !== 'string' && typeof q !== 'number') return q;
  try {
    const { num, den } = parseQuantity(q);
    const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? (a < 0n ? -a : a) : gcd(b, a % b));
    const g = gcd(num, den) || 1n;
    return `${num / g}/${den / g}`;
  } catch {
    return q;
  }
}

const dropDefault = (o: Json, key: string, value: unknown) => {
  if (o[key] === value) delete o[key];
};

function normalizeProbe(p: unknown): unknown {
  if (!isObject(p)) return p;
  const out: Json = { timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3, ...p };
  if (isObject(out.httpGet)) out.httpGet = { path: '/', scheme: 'HTTP', ...out.httpGet };
  return out;
}

/** Requests and limits as numbers; keys `expected` leaves unset are someone else's defaults (LimitRanger). */
function normalizeResources(r: unknown, expected: unknown): unknown {
  if (!isObject(r)) return r;
  const want = isObject(expected) ? expected : {};
  const limits = isObject(r.limits) ? r.limits : {};
  // The API server copies a limit into a missing request.
  const requests = { ...limits, ...(isObject(r.requests) ? r.requests : {}) };
  const pick = (list: Json, wanted: unknown) => {
    const keep = isObject(wanted) ? Object.keys(wanted) : [];
    return Object.fromEntries(keep.filter((k) => k in list).map((k) => [k, canonicalQuantity(list[k])]));
  };
  const wantRequests = {
    ...(isObject(want.limits) ? want.limits : {}),
    ...(isObject(want.requests) ? want.requests : {}),
  };
  return { requests: pick(requests, wantRequests), limits: pick(limits, want.limits) };
}

function normalizeContainer(c: unknown, expected: unknown): unknown {
  if (!isObject(c)) return c;
  const out = clone(c);
  dropDefault(out, 'terminationMessagePath', '/dev/termination-log');
  dropDefault(out, 'terminationMessagePolicy', 'File');
  out.resources = normalizeResources(out.resources, isObject(expected) ? expected.resources : undefined);
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    if (out[probe] !== undefined) out[probe] = normalizeProbe(out[probe]);
  }
  if (Array.isArray(out.ports)) out.ports = out.ports.map((p) => (isObject(p) ? { protocol: 'TCP', ...p } : p));
  if (Array.isArray(out.env)) {
    out.env = out.env.map((e) =>
      isObject(e) && isObject(e.valueFrom) && isObject(e.valueFrom.fieldRef)
        ? { ...e, valueFrom: { ...e.valueFrom, fieldRef: { apiVersion: 'v1', ...e.valueFrom.fieldRef } } }
        : e,
    );
  }
  return out;
}

function normalizeVolume(v: unknown): unknown {
  if (!isObject(v)) return v;
  const out = clone(v);
  if (isObject(out.secret)) out.secret = { defaultMode: 0o644, ...out.secret };
  if (isObject(out.emptyDir) && out.emptyDir.sizeLimit !== undefined) {
    out.emptyDir = { ...out.emptyDir, sizeLimit: canonicalQuantity(out.emptyDir.sizeLimit) };
  }
  return out;
}

/** The keys in reserved domains (pod-metadata.ts) a pod carries, minus those others write after creation. */
function reservedMetadata(entries: unknown): Json {
  if (!isObject(entries)) return {};
  return Object.fromEntries(Object.entries(entries).filter(([k]) => isReservedMetadataKey(k) && !SET_BY_OTHERS.has(k)));
}

/** Empty lists are omitted by the API server (every list in a pod is `omitempty`). */
function withoutEmptyLists(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutEmptyLists);
  if (!isObject(v)) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([, x]) => !(Array.isArray(x) && x.length === 0) && x !== undefined)
      .map(([k, x]) => [k, withoutEmptyLists(x)]),
  );
}

/** The part of a pod that decides what runs and how; `expected` is the rendered pod (it says what is ours to set). */
function podView(pod: Json, expected: Json): unknown {
  const metadata = isObject(pod.metadata) ? pod.metadata : {};
  const want = isObject(expected.spec) ? expected.spec : {};
  const spec = clone(isObject(pod.spec) ? pod.spec : {});
  for (const k of [
    'priority',
    'priorityClassName',
    'preemptionPolicy',
    'serviceAccount',
    'imagePullSecrets',
    'overhead',
  ]) {
    delete spec[k];
  }
  if (want.nodeName === undefined) delete spec.nodeName;
  dropDefault(spec, 'dnsPolicy', 'ClusterFirst');
  dropDefault(spec, 'schedulerName', 'default-scheduler');
  dropDefault(spec, 'serviceAccountName', 'default');
  if (Array.isArray(spec.tolerations)) spec.tolerations = spec.tolerations.filter((t) => !isDefaultToleration(t));
  for (const list of ['initContainers', 'containers', 'ephemeralContainers']) {
    const wanted = Array.isArray(want[list]) ? (want[list] as unknown[]) : [];
    if (Array.isArray(spec[list])) {
      spec[list] = spec[list].map((c) =>
        normalizeContainer(
          c,
          wanted.find((w) => isObject(w) && isObject(c) && w.name === c.name),
        ),
      );
    }
  }
  if (Array.isArray(spec.volumes)) spec.volumes = spec.volumes.map(normalizeVolume);
  return withoutEmptyLists({
    controller: controllerOf(pod as { metadata?: { ownerReferences?: { uid: string }[] } })?.uid,
    labels: reservedMetadata(metadata.labels),
    annotations: reservedMetadata(metadata.annotations),
    spec,
  });
}

/** The first path at which `a` and `b` differ (object keys in any order), or undefined when they are equal. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return path || '<root>';
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (isObject(a) && isObject(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const d = firstDifference(a[k], b[k], path ? `${path}.${k}` : k);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return a === b ? undefined : path || '<root>';
}

/**
 * Where an existing pod differs from the pod the controller rendered (`metadata.controller` for another controller),
 * or undefined when it is that pod as the API server returns it.
 */
export function podMismatch(existing: Json, rendered: Json): string | undefined {
  return firstDifference(podView(existing, rendered), podView(rendered, rendered));
}

/** Where an existing VM pod Secret differs from the rendered one (its controller is checked by the caller). */
export function secretMismatch(existing: Json, rendered: Json): string | undefined {
  return secretShapeMismatch(existing) ?? firstDifference(existing.data ?? {}, rendered.data ?? {}, 'data');
}

/** A VM pod Secret is Opaque, immutable (nobody can change what the launcher reads) and holds the VM only. */
export function secretShapeMismatch(existing: Json): string | undefined {
  if ((existing.type ?? 'Opaque') !== 'Opaque') return 'type';
  if (existing.immutable !== true) return 'immutable';
  const keys = isObject(existing.data) ? Object.keys(existing.data) : [];
  if (keys.length !== 1 || keys[0] !== VM_SECRET_KEY || isObject(existing.stringData)) return 'data';
  return undefined;
}

/** A VM as a VM pod Secret records it (constructs/vm-pod-secret.ts). */
export interface RecordedVm {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly uid?: string };
  readonly spec: VirtualMachineSpec;
}

const sameJson = (a: unknown, b: unknown) => firstDifference(clone(a), clone(b)) === undefined;

type Volume = NonNullable<VirtualMachineSpec['volumes']>[number];
const hotpluggable = (v: Volume) => Boolean(v.persistentVolumeClaim?.hotpluggable || v.dataVolume?.hotpluggable);

/**
 * Where `recorded` could not be an earlier version of `current`, or undefined when it could: what the API rules keep
 * immutable (instance, networks, existing volumes) is equal, and the volumes differ only by hot-pluggable ones.
 */
export function pastSpecMismatch(current: VirtualMachineSpec, recorded: VirtualMachineSpec): string | undefined {
  if (!isObject(recorded) || !isObject(recorded.instance)) return 'spec';
  const { disks: disksNow, fileSystems: fsNow, ...fixedNow } = current.instance;
  const { disks: disksThen, fileSystems: fsThen, ...fixedThen } = recorded.instance;
  if (!sameJson(fixedNow, fixedThen)) return 'spec.instance';
  if (!sameJson(current.networks, recorded.networks)) return 'spec.networks';
  const now = new Map((current.volumes ?? []).map((v) => [v.name, v]));
  const then = new Map((Array.isArray(recorded.volumes) ? recorded.volumes : []).map((v) => [v.name, v]));
  for (const [name, v] of then) {
    const same = now.get(name);
    if (same ? !sameJson(same, v) : !hotpluggable(v)) return `spec.volumes[${name}]`;
  }
  for (const [name, v] of now) if (!then.has(name) && !hotpluggable(v)) return `spec.volumes[${name}]`;
  // Disks and file systems name their volume: those of hot-pluggable volumes come and go with them.
  const isHotplugged = (name: string) =>
    [now.get(name), then.get(name)].some((v) => v !== undefined && hotpluggable(v));
  const devices: [string, { name: string }[] | undefined, { name: string }[] | undefined][] = [
    ['disks', disksNow, disksThen],
    ['fileSystems', fsNow, fsThen],
  ];
  for (const [field, a, b] of devices) {
    const fixed = (list: unknown) =>
      (Array.isArray(list) ? (list as { name: string }[]) : []).filter((d) => !isHotplugged(d.name));
    if (!sameJson(fixed(a), fixed(b))) return `spec.instance.${field}`;
  }
  return undefined;
}

/**
 * The VM an existing VM pod Secret records, when it is this VM (apiVersion, kind, name, namespace, uid) at a version
 * it could have had ({@link pastSpecMismatch}); undefined otherwise.
 */
export function recordedVm(secret: Json, vm: RecordedVm): RecordedVm | undefined {
  if (secretShapeMismatch(secret)) return undefined;
  let recorded: unknown;
  try {
    recorded = JSON.parse(Buffer.from(String((secret.data as Json)[VM_SECRET_KEY]), 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(recorded) || !isObject(recorded.metadata)) return undefined;
  const m = recorded.metadata;
  if (recorded.apiVersion !== vm.apiVersion || recorded.kind !== vm.kind) return undefined;
  if (m.name !== vm.metadata.name || m.namespace !== vm.metadata.namespace || m.uid !== vm.metadata.uid)
    return undefined;
  const spec = recorded.spec as VirtualMachineSpec;
  if (pastSpecMismatch(vm.spec, spec) !== undefined) return undefined;
  return { ...vm, spec };
}
