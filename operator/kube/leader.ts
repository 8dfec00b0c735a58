// Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm and defaults
// (lease 15 s, renew deadline 10 s, retry period 2 s):
// - A candidate takes the lease when it has no holder, or when its record has not changed for
//   leaseDurationSeconds as measured on the candidate's own clock since it last saw it change
//   (never by comparing the holder's renewTime with our clock: clocks are skewed).
// - The leader renews every retry period; if it cannot renew for renewDeadline it stops leading
//   (onStoppedLeading; the process must exit). renewDeadline < leaseDuration, so the old leader
//   has stopped before any candidate can consider the lease expired.
// - Every write is an update with the resourceVersion read (optimistic concurrency): of two
//   candidates racing for the same lease, one gets 409 and stays a candidate.
// - release() on graceful shutdown clears the holder, so a successor takes over at its next retry
//   instead of waiting for the lease to expire.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { KubeClient } from './client';
import { isAlreadyExists, isConflict, isNotFound } from './errors';
import { silentLogger, type Logger } from './log';
import type { KubeObject } from './object';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectionOptions {
  client: Pick<KubeClient, 'request'>;
  /** Namespace and name of the Lease. */
  namespace: string;
  name: string;
  /** Unique per process, e.g. the pod name plus a random suffix. */
  identity: string;
  /** @default 15000 (written to the Lease in whole seconds, at least 1) */
  leaseDurationMs?: number;
  /** @default 10000; must be less than leaseDurationMs */
  renewDeadlineMs?: number;
  /** @default 2000 */
  retryPeriodMs?: number;
  onStartedLeading?: () => void;
  /** Leadership was lost (not released): stop all work at once; the process must exit. */
  onStoppedLeading?: () => void;
  /** The observed holder changed (including to ourselves). */
  onNewLeader?: (identity: string) => void;
  logger?: Logger;
}

const leasesPath = (namespace: string): string =>
  `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits (the API server rejects three). */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly logger: Logger;
  private readonly stopController = new AbortController();
  private running?: Promise<void>;
  private leading = false;
  /** performance.now() of the last successful acquire or renew. */
  private lastRenew = 0;
  /** The last record seen and when (our clock) it was first seen in that state. */
  private observed?: { lease: Lease; at: number };
  private observedHolder?: string;
  private observedOnce = false;

  constructor(private readonly options: LeaderElectionOptions) {
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseDurationMs) {
      throw new Error('leader election: renewDeadline must be shorter than leaseDuration');
    }
    if (this.retryPeriodMs >= this.renewDeadlineMs) {
      throw new Error('leader election: retryPeriod must be shorter than renewDeadline');
    }
    this.logger = (options.logger ?? silentLogger).child({
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
  }

  get identity(): string {
    return this.options.identity;
  }

  /** Starts campaigning (idempotent). */
  start(): void {
    if (this.running || this.stopController.signal.aborted) return;
    this.running = this.loop().catch((error: unknown) => this.logger.error('leader election loop failed', { error }));
  }

  /**
   * True while we hold the lease and our last renewal is within the renew deadline. Checked
   * against the clock, not just a flag, so a stalled event loop cannot make us act as leader on a
   * lease that may have passed to another.
   */
  isLeader(): boolean {
    return this.leading && performance.now() - this.lastRenew < this.renewDeadlineMs;
  }

  /** The holder last observed on the lease ('' when released), or undefined before the first read. */
  get currentLeader(): string | undefined {
    return this.observedHolder;
  }

  /** True once the lease was read or written at least once: the API server is reachable, we are a ready standby. */
  hasObservedLease(): boolean {
    return this.observedOnce;
  }

  /**
   * Stops campaigning; if leading, clears the holder so a successor takes over at once. Does not
   * call onStoppedLeading (that is for leadership lost, not given up).
   */
  async release(): Promise<void> {
    const wasLeading = this.isLeader();
    await this.halt();
    if (!wasLeading || !this.observed) return;
    const lease = this.observed.lease;
    const spec = lease.spec ?? {};
    if (spec.holderIdentity !== this.identity) return;
    const now = microTime(new Date());
    const released: Lease = {
      ...lease,
      // client-go's release: no holder, 1 s duration, transitions unchanged.
      spec: { ...spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
    };
    try {
      await this.options.client.request<Lease>(
        'PUT',
        `${leasesPath(this.options.namespace)}/${encodeURIComponent(this.options.name)}`,
        {
          body: released,
          timeoutMs: this.renewDeadlineMs,
        },
      );
      this.logger.info('released leadership');
    } catch (error) {
      // Someone else wrote the lease meanwhile, or the API server is gone: the lease expires anyway.
      this.logger.warn('could not release the lease', { error });
    }
  }

  /** Stops campaigning without touching the lease. */
  async stop(): Promise<void> {
    await this.halt();
  }

  private async halt(): Promise<void> {
    this.stopController.abort();
    this.leading = false;
    await this.running;
  }

  private async loop(): Promise<void> {
    const signal = this.stopController.signal;
    while (!signal.aborted) {
      const result = await this.tryAcquireOrRenew();
      if (signal.aborted) break;
      const now = performance.now();
      if (this.leading) {
        if (result === 'held') {
          this.lastRenew = now;
        } else if (result === 'taken' || now - this.lastRenew >= this.renewDeadlineMs) {
          this.lose(result === 'taken' ? 'another candidate holds the lease' : 'renew deadline passed');
          return;
        }
      } else if (result === 'held') {
        this.leading = true;
        this.lastRenew = now;
        this.logger.info('became leader');
        this.callback(this.options.onStartedLeading);
      }
      // Candidates add up to 20% jitter (client-go's JitterFactor 1.2) so they do not retry in lockstep.
      const wait = this.leading ? this.retryPeriodMs : this.retryPeriodMs * (1 + 0.2 * Math.random());
      try {
        await sleepFor(wait, undefined, { signal });
      } catch {
        break;
      }
    }
  }

  private lose(why: string): void {
    this.leading = false;
    this.stopController.abort();
    this.logger.error('lost leadership', { why });
    this.callback(this.options.onStoppedLeading);
  }

  /**
   * One attempt: 'held' when we hold the lease afterwards, 'taken' when another holds a valid
   * lease, 'failed' when the attempt failed (API error, conflict).
   */
  private async tryAcquireOrRenew(): Promise<'held' | 'taken' | 'failed'> {
    const path = `${leasesPath(this.options.namespace)}/${encodeURIComponent(this.options.name)}`;
    // A renewal must finish before the deadline; an acquisition has no deadline but the renew period.
    const timeoutMs = this.leading
      ? Math.max(1, this.renewDeadlineMs - (performance.now() - this.lastRenew))
      : this.renewDeadlineMs;
    const request = { timeoutMs, signal: this.stopController.signal };
    const nowDate = new Date();
    const leaseSeconds = Math.max(1, Math.ceil(this.leaseDurationMs / 1000));
    let current: Lease;
    try {
      current = await this.options.client.request<Lease>('GET', path, request);
    } catch (error) {
      if (!isNotFound(error)) {
        this.logger.debug('could not read the lease', { error });
        return 'failed';
      }
      const fresh: Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.options.name, namespace: this.options.namespace },
        spec: {
          holderIdentity: this.identity,
          leaseDurationSeconds: leaseSeconds,
          acquireTime: microTime(nowDate),
          renewTime: microTime(nowDate),
          leaseTransitions: 0,
        },
      };
      try {
        this.observe(
          await this.options.client.request<Lease>('POST', leasesPath(this.options.namespace), {
            ...request,
            body: fresh,
          }),
        );
        return 'held';
      } catch (createError) {
        if (!isAlreadyExists(createError)) this.logger.debug('could not create the lease', { error: createError });
        return 'failed';
      }
    }
    this.observe(current);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    if (holder !== '' && holder !== this.identity) {
      const duration = (spec.leaseDurationSeconds ?? leaseSeconds) * 1000;
      const observedAt = this.observed?.at ?? performance.now();
      if (performance.now() - observedAt < duration) return 'taken';
    }
    const next: Lease = {
      ...current,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: leaseSeconds,
        renewTime: microTime(nowDate),
        acquireTime: holder === this.identity && spec.acquireTime ? spec.acquireTime : microTime(nowDate),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === this.identity ? 0 : 1),
      },
    };
    try {
      this.observe(await this.options.client.request<Lease>('PUT', path, { ...request, body: next }));
      return 'held';
    } catch (error) {
      if (!isConflict(error)) this.logger.debug('could not update the lease', { error });
      return 'failed';
    }
  }

  /** Remembers the record; the observation time moves only when the record changes. */
  private observe(lease: Lease): void {
    this.observedOnce = true;
    const previous = this.observed?.lease;
    const changed =
      !previous ||
      previous.metadata.resourceVersion !== lease.metadata.resourceVersion ||
      previous.spec?.holderIdentity !== lease.spec?.holderIdentity ||
      previous.spec?.renewTime !== lease.spec?.renewTime;
    if (changed) this.observed = { lease, at: performance.now() };
    else if (this.observed) this.observed.lease = lease;
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      if (holder !== '') {
        this.logger.info('new leader observed', { leader: holder });
        const onNewLeader = this.options.onNewLeader;
        if (onNewLeader) this.callback(() => onNewLeader(holder));
      }
    }
  }

  private callback(fn: (() => void) | undefined): void {
    try {
      fn?.();
    } catch (error) {
      this.logger.error('leader election callback failed', { error });
    }
  }
}
