/**
 * Reconciles one VirtualMachine: reads it, its pods and their nodes from the caches, asks the lifecycle what the
 * status should be and what to do, does it, and writes status only when it changed. Idempotent: every action is
 * safe to repeat, so a crash between two steps is repaired by the next pass.
 */
import { podMetadataLeftOut } from '../../constructs/pod-metadata';
import { sameJson } from '../kube';
import type { VirtualMachineStatus } from '../../api';
import type { VmPodOptions } from '../../constructs/vm-pod';
import { renderAttachmentPod, vmPodName } from '../../constructs/vm-pod';
import { notAppliedToPod } from '../../constructs/vm-pod-stored';
import { reconcileHotplug } from './hotplug';
import type { Cluster, VmObject } from './cluster';
import { NameTakenError, controllerOf } from './cluster';
import { createVmPod } from './vm-pod-request';
import type { LifecycleConfig } from './vm-lifecycle';
import { DEFAULT_LIFECYCLE, VM_FINALIZER, reconcileVm, setCondition } from './vm-lifecycle';

/** How often a VM whose pod name is taken looks again (the foreign pod may not carry the VM label, so no event comes). */
export const NAME_TAKEN_RETRY_MS = 15_000;

/** How late a VM skipped for a cache behind its own write looks again if no watch event came meanwhile. */
export const CACHE_BEHIND_RETRY_MS = 2_000;

/** How long the first status of a VM (Scheduling) may wait for its pod's binding, to be written once as Scheduled. */
export const START_STATUS_HOLD_MS = 5_000;

/**
 * The first start's status of VMs whose pod this controller has created but whose status it has not written yet: one
 * write (Scheduled, with the pod's UID and node) instead of two (Scheduling, then Scheduled), when the scheduler binds
 * the pod within {@link START_STATUS_HOLD_MS}; Scheduling is written when it does not.
 *
 * Why this is crash-safe: holding the write back only widens a window that already exists — between the pod's create
 * and the status write that records it. A controller that stops (a crash, a lost lease) within it leaves a VM whose
 * stored status shows no start and a pod that carries the VM's stable run-0 name; the next controller starts the VM
 * again, and createPod finds the pod (and its Secret) under that name and accepts it only when it is exactly the pod
 * it renders (adoption.ts), then records its UID. Until its UID is recorded the pod is not the VM's current pod for
 * anyone else (podsOf, the node daemon). Only first starts are held: a restart's status names the run it starts, and
 * the status of the run before it stays as it is stored until then.
 */
export class HeldStartStatus {
  private readonly held = new Map<string, { uid: string; status: VirtualMachineStatus; until: number }>();

  constructor(readonly holdMs = START_STATUS_HOLD_MS) {}

  /** The status held for VM `key` of UID `uid`, if any (one held for an earlier VM of the name is dropped). */
  get(key: string, uid: string | undefined): { status: VirtualMachineStatus; until: number } | undefined {
    const entry = this.held.get(key);
    if (entry && entry.uid !== uid) {
      this.held.delete(key);
      return undefined;
    }
    return entry;
  }

  set(key: string, uid: string, status: VirtualMachineStatus, until: number): void {
    this.held.set(key, { uid, status, until });
  }

  forget(key: string): void {
    this.held.delete(key);
  }

  get size(): number {
    return this.held.size;
  }
}

export interface VmReconcilerOptions {
  readonly pod: VmPodOptions;
  readonly lifecycle?: LifecycleConfig;
  readonly now?: () => Date;
  /** Hold the first start's status write until the pod is bound (see {@link HeldStartStatus}); off when unset. */
  readonly heldStarts?: HeldStartStatus;
}

/** Returns how long to wait before looking again, if the lifecycle asked for it. */
export async function reconcileVmKey(
  cluster: Cluster,
  namespace: string,
  name: string,
  options: VmReconcilerOptions,
): Promise<{ requeueAfterMs?: number }> {
  const cached = cluster.vm(namespace, name);
  const key = `${namespace}/${name}`;
  const heldStarts = options.heldStarts;
  if (!cached) {
    heldStarts?.forget(key);
    return {};
  }
  // Our own last write is not in the cache yet: its watch event brings the key back. The late look is only a fallback
  // should that event be lost.
  if (cluster.vmCacheBehind?.(namespace, name)) return { requeueAfterMs: CACHE_BEHIND_RETRY_MS };
  // The status as stored: what a status write changes, and what tells whether one is needed.
  const stored = cached.status ?? {};
  // A copy: the cache's objects are shared and read-only, and this pass tracks its own writes' resourceVersion.
  let vm = { ...cached, metadata: { ...cached.metadata } };
  // A first start whose status write is held back: this pass goes on from it, as if it were stored. Once the stored
  // status names a pod (written by this controller or another), or the VM is being deleted, the held one is moot.
  const held = heldStarts?.get(key, cached.metadata.uid);
  if (held && (stored.vmPodName !== undefined || cached.metadata.deletionTimestamp)) heldStarts!.forget(key);
  else if (held) vm = { ...vm, status: held.status };
  const pods = podsOf(cluster, vm, namespace);
  const nodes = new Map(
    pods.flatMap((p) => {
      const n = p.spec?.nodeName ? cluster.node(p.spec.nodeName) : undefined;
      return n ? [[n.metadata.name, n] as const] : [];
    }),
  );
  const now = (options.now ?? (() => new Date()))();
  let nameTaken: NameTakenError | undefined;
  let podNotSeen = false;
  const decision = reconcileVm(
    vm,
    pods,
    nodes,
    now,
    (run) => vmPodName(name, vm.metadata.uid, { run }),
    options.lifecycle ?? DEFAULT_LIFECYCLE,
  );

  // The finalizer goes on while the pod's Secret is created (createPod waits for it before the pod itself), and before
  // any status write, which needs its resourceVersion.
  let finalizer: Promise<void> | undefined;
  for (const a of decision.actions) {
    switch (a.type) {
      case 'addFinalizer': {
        const read = vm;
        finalizer = cluster.addFinalizer(read, VM_FINALIZER).then((resourceVersion) => {
          vm = {
            ...vm,
            metadata: {
              ...vm.metadata,
              resourceVersion,
              finalizers: [...(read.metadata.finalizers ?? []), VM_FINALIZER],
            },
          };
        });
        // Awaited below; handled here too, so a pass that fails first does not leave a rejection unhandled.
        finalizer.catch(() => undefined);
        // Nothing else waits for it unless a pod is to be created.
        if (!decision.actions.some((x) => x.type === 'createPod')) await finalizer;
        break;
      }
      case 'removeFinalizer':
        await cluster.removeFinalizer(vm, VM_FINALIZER);
        return {};
      case 'createPod': {
        // The pod this VM's status records was created by this controller a moment ago and is not in the pod cache
        // yet: its add event wakes the VM (urgently); creating it again would only find it there.
        const recorded = decision.status.vmPodUID;
        if (
          recorded &&
          decision.status.vmPodName === vmPodName(name, vm.metadata.uid, { run: a.run }) &&
          cluster.podCreatedNotSeen?.(namespace, decision.status.vmPodName, recorded)
        ) {
          podNotSeen = true;
          break;
        }
        // The pod of the run before this one may have gone before its Secret was handed to it.
        const previous = vm.status?.vmPodName;
        if (previous && previous !== decision.status.vmPodName) {
          await cluster.settleVmSecret(namespace, previous, vm.metadata.uid);
        }
        let uid: string | undefined;
        try {
          uid = await createVmPod(
            cluster,
            { ...vm, metadata: { ...vm.metadata, namespace } },
            { run: a.run },
            options.pod,
            // The status write that records the pod need not wait for its Secret's hand-over (settled later if it fails).
            { ...(finalizer ? { before: finalizer } : {}), handOverInBackground: true },
          );
        } catch (e) {
          if (!(e instanceof NameTakenError)) throw e;
          nameTaken = e;
          await finalizer;
          break;
        }
        // From now on only the pod of this UID is the VM's pod of that name (see podsOf).
        if (uid && decision.status.vmPodName === vmPodName(name, vm.metadata.uid, { run: a.run })) {
          decision.status.vmPodUID = uid;
        }
        reportLeftOut(cluster, vm);
        break;
      }
      case 'deletePod':
        await cluster.deletePod(namespace, a.name, a.force);
        break;
      case 'event':
        // Events are best effort: a failed Event must not fail or slow down the reconcile.
        void cluster.event(vm, a.warning ? 'Warning' : 'Normal', a.reason, a.message).catch(() => undefined);
        break;
    }
  }
  await finalizer;
  // Hand the Secret of every pod of the VM to it, in case a create stopped between the two (once per pod).
  for (const p of pods) await cluster.settleVmSecret(namespace, p.metadata.name, vm.metadata.uid, p.metadata.uid);
  const current = pods.find((p) => p.metadata.name === decision.status.vmPodName);
  if (!vm.metadata.deletionTimestamp) {
    for (const a of reconcileHotplug(vm.spec, decision.status, current, cluster.attachmentPodsOfVm(namespace, name))) {
      if (a.type === 'createAttachmentPod' && current?.metadata.uid && current.spec?.nodeName) {
        const target = { name: current.metadata.name, uid: current.metadata.uid, nodeName: current.spec.nodeName };
        await cluster.createPod(
          renderAttachmentPod({ ...vm, metadata: { ...vm.metadata, namespace } }, target, a.volume, options.pod),
        );
      } else if (a.type === 'deleteAttachmentPod') {
        await cluster.deletePod(namespace, a.name, false);
      }
    }
  }
  if (nameTaken) reportNameTaken(cluster, vm, decision.status, nameTaken, now);
  let requeueAfterMs = decision.requeueAfterMs;
  const soon = (ms: number) => (requeueAfterMs = Math.max(1, Math.min(requeueAfterMs ?? Infinity, ms)));
  // Compared as JSON documents, not serialisations: the cached status comes back from the API server with its keys
  // sorted, and a write that changes nothing would still cost a request (and, under a burst, a queue slot).
  if (!vm.metadata.deletionTimestamp && !sameJson(decision.status, stored)) {
    // A first start (nothing stored names a pod) whose pod exists, is recorded by UID and is not bound yet: held back
    // (see HeldStartStatus), so that the binding's pass writes the VM's status once. The binding wakes the VM; the
    // requeue writes Scheduling should it not come in time.
    const until = held?.until ?? now.getTime() + (heldStarts?.holdMs ?? 0);
    if (
      heldStarts &&
      stored.vmPodName === undefined &&
      decision.status.phase === 'Scheduling' &&
      decision.status.vmPodUID !== undefined &&
      !nameTaken &&
      now.getTime() < until
    ) {
      heldStarts.set(key, vm.metadata.uid, decision.status, until);
      soon(until - now.getTime());
    } else {
      heldStarts?.forget(key);
      await cluster.updateVmStatus({ ...vm, status: cached.status }, decision.status);
    }
  } else {
    heldStarts?.forget(key);
  }
  if (nameTaken) soon(NAME_TAKEN_RETRY_MS);
  if (podNotSeen) soon(CACHE_BEHIND_RETRY_MS);
  return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
}

/**
 * The VM's pods: the VM label finds candidates, the controller reference narrows them (a pod anyone else made with
 * the label is neither adopted nor deleted), and the pod named as the VM's current pod counts only once its UID is
 * recorded — the controller records it when it created the pod or found it to be exactly the pod it renders
 * (adoption.ts). A pod that merely names the VM as its controller is never taken for it: until its UID is recorded the
 * lifecycle sees no pod, and asks to create it again, which checks the pod that is there.
 */
function podsOf(cluster: Cluster, vm: VmObject, namespace: string) {
  const current = vm.status?.vmPodName;
  const recorded = vm.status?.vmPodUID;
  return cluster
    .podsOfVm(namespace, vm.metadata.name)
    .filter(
      (p) =>
        controllerOf(p)?.uid === vm.metadata.uid &&
        (p.metadata.name !== current || (recorded !== undefined && p.metadata.uid === recorded)),
    );
}

/** Says, once per pod created, what of the VM the pod leaves out (best effort, as every Event). */
function reportLeftOut(cluster: Cluster, vm: VmObject): void {
  const metadata = podMetadataLeftOut(vm.metadata);
  if (metadata.length) {
    void cluster
      .event(
        vm,
        'Normal',
        'MetadataNotCopied',
        `labels and annotations in reserved domains are not copied to the VM pod: ${metadata.join(', ')}`,
      )
      .catch(() => undefined);
  }
  const spec = notAppliedToPod(vm.spec);
  if (spec.length) {
    void cluster
      .event(
        vm,
        'Warning',
        'SpecNotApplied',
        `stored before the current rules and left off the VM pod (change these fields to apply them): ${spec.join('; ')}`,
      )
      .catch(() => undefined);
  }
}

/**
 * The VM's pod (or its Secret) could not be created because another object has its name: the Ready condition says so
 * (reason PodNameTaken) and a Warning Event, once per occurrence, names the object. The foreign object is left as it is.
 */
function reportNameTaken(
  cluster: Cluster,
  vm: Parameters<Cluster['event']>[0],
  status: NonNullable<Parameters<Cluster['updateVmStatus']>[1]>,
  error: NameTakenError,
  now: Date,
): void {
  const before = vm.status?.conditions?.find((c) => c.type === 'Ready');
  status.conditions = setCondition(
    status.conditions,
    'Ready',
    'False',
    'PodNameTaken',
    error.message,
    now,
    vm.metadata.generation,
  );
  if (before?.reason !== 'PodNameTaken' || before.message !== error.message) {
    void cluster.event(vm, 'Warning', 'PodNameTaken', error.message).catch(() => undefined);
  }
}
