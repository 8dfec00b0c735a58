/**
 * How the controller creates a pod whose name anyone can compute, and the VM pod's Secret beside it
 * ({@link Cluster.createPod}, {@link Cluster.settleVmSecret}). The Secret is created first, so the pod never starts
 * without it, owned by the VM until the pod exists and then handed to the pod, so it goes with it. Rules:
 * - an object found under the name is accepted only when it is what the controller renders (adoption.ts);
 * - once the pod exists its Secret is never replaced: the launcher must read the VM the pod was rendered from;
 * - before the pod exists, a Secret the VM still controls is left from an attempt that never made the pod: reused
 *   when it is the one rendered now, deleted and made again when not;
 * - a Secret the VM still controls never outlives an attempt that failed to make its pod, and one whose pod went away
 *   before the hand-over is deleted when the reconcile settles it.
 */
import type { KubeClient, KubeObject } from '../kube';
import { isAlreadyExists } from '../kube';
import { podMismatch, secretMismatch } from './adoption';
import type { VmPodSecret } from './cluster';
import { NameTakenError, controllerOf } from './cluster';

type Json = Record<string, unknown>;
type Owned = KubeObject & {
  metadata: { name: string; namespace?: string; uid?: string; ownerReferences?: { uid: string; kind?: string }[] };
};

const nameOf = (o: Json) => (o as Owned).metadata;

/** Why an object is not the VM's, as the VM's condition shows it. */
function notOurs(kind: 'Pod' | 'Secret', o: Owned, path: string): NameTakenError {
  const detail =
    path === 'controller'
      ? 'another controller'
      : `it names this VM as its controller but is not the ${kind.toLowerCase()} the VM needs: ${path} differs`;
  return new NameTakenError(kind, o.metadata.namespace ?? '', o.metadata.name, detail);
}

export class PodCreator {
  /** Names of Secrets already settled (bounded: a name is only ever settled again in vain). */
  private readonly settled = new Set<string>();
  /** Hand-overs still running in the background, by Secret key: settling waits for them rather than race them. */
  private readonly handingOver = new Map<string, Promise<void>>();

  constructor(private readonly client: KubeClient) {}

  async createPod(pod: Json, request?: VmPodSecret): Promise<string | undefined> {
    if (!request) return (await this.createOrAccept(pod as Owned)).metadata.uid;
    const { name, namespace } = nameOf(pod);
    const vmUid = controllerOf(pod as Owned)?.uid ?? '';
    // Settled again once this create has handed the Secret over (a create that stops half way leaves it to settle).
    this.settled.delete(`${namespace}/${name}`);
    let secret: Owned | undefined;
    if (request.before) {
      // The Secret in parallel with the write that must precede the pod (one round trip fewer per VM pod).
      const [made, before] = await Promise.allSettled([this.tryCreate(request.secret as Owned), request.before]);
      if (before.status === 'rejected') {
        if (made.status === 'fulfilled' && made.value)
          await this.removeIfVmOwned(made.value, vmUid).catch(() => undefined);
        throw before.reason;
      }
      if (made.status === 'rejected') throw made.reason;
      secret = made.value;
    } else {
      secret = await this.tryCreate(request.secret as Owned);
    }
    if (!secret) {
      const existing = await this.client.get<Owned>('v1', 'Secret', name, namespace);
      const existingPod = await this.client.tryGet<Owned>('v1', 'Pod', name, namespace);
      if (existingPod) {
        this.checkPair(existingPod, existing, pod, request, vmUid);
        await this.handOver(existing, existingPod);
        return existingPod.metadata.uid;
      }
      secret = await this.reuseOrReplace(existing, request.secret as Owned, vmUid);
    }
    let created: Owned;
    try {
      created = await this.client.create(pod as Owned);
    } catch (e) {
      if (!isAlreadyExists(e)) {
        // Best effort: the create's own error is the one to report (the next attempt finds the Secret otherwise).
        await this.removeIfVmOwned(secret, vmUid).catch(() => undefined);
        throw e;
      }
      // The pod appeared although its Secret did not exist: ours only if it is exactly the pod rendered now, the VM
      // the new Secret holds.
      const existingPod = await this.client.get<Owned>('v1', 'Pod', name, namespace);
      const why = podMismatch(existingPod, pod);
      if (why) {
        await this.removeIfVmOwned(secret, vmUid).catch(() => undefined);
        throw notOurs('Pod', existingPod, why);
      }
      created = existingPod;
    }
    const key = `${namespace}/${name}`;
    // Handed over: the pod now owns its Secret, and settling it (a GET per pod under a burst) would find nothing to do.
    const handing = this.handOver(secret, created).then(() => this.markSettled(key));
    if (request.handOverInBackground) {
      const pending = handing
        .catch(() => undefined)
        .finally(() => {
          if (this.handingOver.get(key) === pending) this.handingOver.delete(key);
        });
      this.handingOver.set(key, pending);
    } else {
      await handing;
    }
    return created.metadata.uid;
  }

  /**
   * The Secret of VM pod `name`, while the VM still controls it: handed to the pod when the pod is `podUid` (a pod the
   * reconciler knows as the VM's), deleted when no pod of that name exists; left alone when an unknown pod has it.
   */
  async settleVmSecret(namespace: string, name: string, vmUid: string, podUid?: string): Promise<void> {
    const key = `${namespace}/${name}`;
    await this.handingOver.get(key);
    if (this.settled.has(key)) return;
    const secret = await this.client.tryGet<Owned>('v1', 'Secret', name, namespace);
    if (secret && controllerOf(secret)?.uid === vmUid) {
      const pod = await this.client.tryGet<Owned>('v1', 'Pod', name, namespace);
      if (pod && pod.metadata.uid !== podUid) return;
      if (pod) await this.handOver(secret, pod);
      else await this.removeIfVmOwned(secret, vmUid);
    }
    this.markSettled(key);
  }

  private markSettled(key: string): void {
    if (this.settled.has(key)) return;
    if (this.settled.size >= 10_000) this.settled.delete(this.settled.values().next().value!);
    this.settled.add(key);
  }

  /** A pod without a Secret (an attachment pod): created, or the existing one when it is exactly this pod. */
  private async createOrAccept(pod: Owned): Promise<Owned> {
    try {
      return await this.client.create(pod);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
    const existing = await this.client.get<Owned>('v1', 'Pod', pod.metadata.name, pod.metadata.namespace);
    const why = podMismatch(existing, pod);
    if (why) throw notOurs('Pod', existing, why);
    return existing;
  }

  private async tryCreate(object: Owned): Promise<Owned | undefined> {
    try {
      return await this.client.create(object);
    } catch (e) {
      if (isAlreadyExists(e)) return undefined;
      throw e;
    }
  }

  /**
   * A pod and Secret found in place: nothing is created or replaced once the pod exists, so both must be the VM's —
   * as rendered now, or as rendered from the VM the Secret records (an earlier attempt, before the VM changed).
   */
  private checkPair(pod: Owned, secret: Owned, rendered: Json, request: VmPodSecret, vmUid: string): void {
    const podNow = podMismatch(pod, rendered);
    if (podNow === 'controller') throw notOurs('Pod', pod, podNow);
    const owner = controllerOf(secret);
    if (owner?.uid !== vmUid && !(owner?.kind === 'Pod' && owner.uid === pod.metadata.uid)) {
      throw notOurs('Secret', secret, 'controller');
    }
    const secretNow = secretMismatch(secret, request.secret);
    if (!podNow && !secretNow) return;
    const then = request.podFromSecret(secret);
    if (then && !podMismatch(pod, then)) return;
    throw podNow ? notOurs('Pod', pod, podNow) : notOurs('Secret', secret, secretNow!);
  }

  /** A Secret found before its pod exists (see the rules above). */
  private async reuseOrReplace(existing: Owned, rendered: Owned, vmUid: string): Promise<Owned> {
    const owner = controllerOf(existing);
    if (owner?.uid === vmUid) {
      if (!secretMismatch(existing, rendered)) return existing;
      await this.removeIfVmOwned(existing, vmUid);
      return this.client.create(rendered);
    }
    if (owner?.kind === 'Pod' && owner.name === existing.metadata.name) {
      // Handed to an earlier pod of this name that is gone: the garbage collector removes it (retried with backoff).
      throw new Error(
        `Secret ${existing.metadata.namespace}/${existing.metadata.name} still belongs to a deleted pod; waiting for ` +
          `the garbage collector to remove it`,
      );
    }
    throw notOurs('Secret', existing, 'controller');
  }

  /** From now on the Secret goes with the pod (garbage collection), however the pod ends. */
  private async handOver(secret: Owned, pod: Owned): Promise<void> {
    if (controllerOf(secret)?.kind === 'Pod') return;
    await this.client.patch(secret, 'merge', {
      metadata: {
        resourceVersion: secret.metadata.resourceVersion,
        ownerReferences: [
          { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid, controller: true },
        ],
      },
    });
  }

  private async removeIfVmOwned(secret: Owned, vmUid: string): Promise<void> {
    if (controllerOf(secret)?.uid !== vmUid) return;
    await this.client.delete('v1', 'Secret', secret.metadata.name, secret.metadata.namespace, {
      ignoreNotFound: true,
      preconditions: { uid: secret.metadata.uid },
    });
  }
}
