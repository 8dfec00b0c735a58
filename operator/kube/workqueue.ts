// The controller's work queue, with client-go/controller-runtime semantics:
// - a key queued several times before a worker takes it is processed once (de-duplication);
// - a key added while a worker processes it is marked dirty and queued again when the worker calls
//   done(key), so the latest state is always reconciled, and never by two workers at once;
// - addAfter delays a key (the earliest pending time wins); addRateLimited delays it by the rate
//   limiter (per-key exponential backoff, global bucket); forget clears its backoff;
// - shutdown stops accepting keys and drops pending delays; workers still get the keys already
//   queued (the queue drains), then get() resolves undefined.
import { defaultControllerRateLimiter, type RateLimiter } from './rate-limiter';

export interface WorkQueueOptions {
  /** Name in metrics and logs. */
  name?: string;
  /** @default defaultControllerRateLimiter() (5 ms → 1000 s per key, 10 qps burst 100 overall) */
  rateLimiter?: RateLimiter;
}

/** A first-in first-out list with O(1) push and shift. */
class Fifo {
  private items: string[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }
  push(item: string): void {
    this.items.push(item);
  }
  shift(): string | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    // Compact once the consumed prefix dominates, so memory stays proportional to the queue.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

export class WorkQueue {
  readonly name: string;
  private readonly rateLimiter: RateLimiter;
  private readonly queue = new Fifo();
  /**
   * Keys added as urgent are handed out before the others. A controller marks progress of work already under way
   * (a VM's pod was bound) as urgent, so it is not stuck behind a flood of new objects. A key may sit in both lists;
   * the second entry is skipped when reached.
   */
  private readonly urgent = new Fifo();
  /** Keys that need processing: queued, or added again while being processed. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  /** Keys added as urgent while being processed: done() queues them as urgent, not at the back of the queue. */
  private readonly urgentWhileProcessing = new Set<string>();
  private readonly delayed = new Map<string, { readyAt: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly drainWaiters: (() => void)[] = [];
  private shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.name = options.name ?? 'queue';
    this.rateLimiter = options.rateLimiter ?? defaultControllerRateLimiter();
  }

  /** Keys waiting for a worker (not counting delayed ones or ones being processed). */
  get length(): number {
    let n = 0;
    for (const key of this.dirty) if (!this.processing.has(key)) n++;
    return n;
  }

  /** Keys being processed by a worker now. */
  get inFlight(): number {
    return this.processing.size;
  }

  /** Keys waiting for their delay (addAfter / addRateLimited) to pass. */
  get delayedCount(): number {
    return this.delayed.size;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Queues `key` unless it is already queued; if it is being processed, it is queued again after done(). An urgent
   * add jumps the queue (and promotes a key already waiting).
   */
  add(key: string, options: { urgent?: boolean } = {}): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) {
      if (options.urgent && !this.processing.has(key)) {
        this.urgent.push(key);
        this.dispatch();
      } else if (options.urgent) {
        this.urgentWhileProcessing.add(key);
      }
      return;
    }
    this.dirty.add(key);
    if (this.processing.has(key)) {
      if (options.urgent) this.urgentWhileProcessing.add(key);
      return;
    }
    (options.urgent ? this.urgent : this.queue).push(key);
    this.dispatch();
  }

  /** Queues `key` after `delayMs`; if it is already waiting, the earlier time wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const readyAt = performance.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.readyAt <= readyAt) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { readyAt, timer });
  }

  /** Queues `key` after the rate limiter's delay for it (its backoff grows until forget). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Resets `key`'s backoff; call after it was processed successfully. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /**
   * The next key to process, marked as in flight until done(key). Waits while the queue is empty;
   * resolves undefined once the queue is shut down and empty.
   */
  get(): Promise<string | undefined> {
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Ends processing of `key`; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    const urgent = this.urgentWhileProcessing.delete(key);
    if (this.dirty.has(key)) {
      (urgent ? this.urgent : this.queue).push(key);
      this.dispatch();
    }
    this.checkDrained();
  }

  /** Stops accepting keys and drops pending delays; queued keys are still handed out (drain). */
  shutdown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.dispatch();
    this.checkDrained();
  }

  /** Resolves when the queue is shut down, empty and nothing is in flight. */
  drained(): Promise<void> {
    if (this.isDrained()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private take(): string | undefined {
    for (;;) {
      const key = this.urgent.shift() ?? this.queue.shift();
      if (key === undefined) return undefined;
      // A second entry of a key already handed out (it was promoted, or re-queued by done()).
      if (!this.dirty.has(key) || this.processing.has(key)) continue;
      this.dirty.delete(key);
      this.processing.add(key);
      return key;
    }
  }

  private get queued(): number {
    return this.urgent.length + this.queue.length;
  }

  /** Hands queued keys to waiting workers; after shutdown, releases idle workers once the queue is empty. */
  private dispatch(): void {
    while (this.waiters.length > 0 && this.queued > 0) {
      const key = this.take();
      if (key === undefined) break;
      this.waiters.shift()?.(key);
    }
    if (this.shuttingDown && this.queued === 0) {
      for (const waiter of this.waiters.splice(0)) waiter(undefined);
    }
  }

  private isDrained(): boolean {
    return this.shuttingDown && this.queued === 0 && this.processing.size === 0;
  }

  private checkDrained(): void {
    if (!this.isDrained()) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }
}
