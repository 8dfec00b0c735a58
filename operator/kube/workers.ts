// Workers that take keys from a WorkQueue and reconcile them, with controller-runtime's result
// handling: success → forget (reset backoff), plus addAfter when the reconciler asks to be called
// again later; an error → addRateLimited (backoff); 409 Conflict → wait for the watch to bring the
// newer version (with a late fallback), logged at debug: it is the normal outcome of a lagging cache.
import { performance } from 'node:perf_hooks';
import { isApiError } from './errors';
import { silentLogger, type Logger } from './log';
import type { WorkQueue } from './workqueue';

/** After a 409, look again this late even if no newer version arrives through the watch. */
export const CONFLICT_FALLBACK_MS = 2_000;

export interface ReconcileResult {
  /** Reconcile this key again after this many milliseconds (e.g. to poll an external state). */
  requeueAfter?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult | void>;

/** The `result` label of reconcile metrics. */
export type ReconcileOutcome = 'success' | 'requeue_after' | 'conflict' | 'error';

/** Receives one observation per reconcile (OperatorMetrics implements it). */
export interface ReconcileObserver {
  observeReconcile(controller: string, outcome: ReconcileOutcome, seconds: number): void;
}

export interface RunWorkersOptions {
  /** Name in logs and metrics. @default queue.name */
  controller?: string;
  logger?: Logger;
  observer?: ReconcileObserver;
}

export interface Workers {
  /** Resolves when every worker has exited (the queue was shut down and drained). */
  readonly stopped: Promise<void>;
}

/** Starts `count` workers on `queue`. They run until the queue is shut down and drained. */
export function runWorkers(
  queue: WorkQueue,
  count: number,
  reconcile: Reconcile,
  options: RunWorkersOptions = {},
): Workers {
  const controller = options.controller ?? queue.name;
  const logger = (options.logger ?? silentLogger).child({ controller });
  const worker = async (): Promise<void> => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      await processOne(queue, key, reconcile, controller, logger, options.observer);
    }
  };
  const stopped = Promise.all(Array.from({ length: Math.max(1, count) }, worker)).then(() => undefined);
  return { stopped };
}

async function processOne(
  queue: WorkQueue,
  key: string,
  reconcile: Reconcile,
  controller: string,
  logger: Logger,
  observer: ReconcileObserver | undefined,
): Promise<void> {
  const started = performance.now();
  let outcome: ReconcileOutcome;
  try {
    const result = await reconcile(key);
    queue.forget(key);
    const after = result ? result.requeueAfter : undefined;
    if (after !== undefined && after > 0) {
      queue.addAfter(key, after);
      outcome = 'requeue_after';
    } else {
      outcome = 'success';
    }
  } catch (error) {
    if (isApiError(error, 409)) {
      // A conflict means the cache is behind the object: the watch event that carries the newer version enqueues the
      // key again. Rate-limiting it instead would spend the global bucket on every write racing a lagging watch, and
      // under a burst of new objects the controller would stall for minutes; a late fallback covers a lost event.
      queue.addAfter(key, CONFLICT_FALLBACK_MS);
      outcome = 'conflict';
      logger.debug('conflict; waiting for the newer version', { key, error });
    } else {
      queue.addRateLimited(key);
      outcome = 'error';
      logger.error('reconcile failed', { key, error, retries: queue.numRequeues(key) });
    }
  } finally {
    queue.done(key);
  }
  try {
    observer?.observeReconcile(controller, outcome, (performance.now() - started) / 1000);
  } catch (error) {
    logger.warn('reconcile observer failed', { error });
  }
}
