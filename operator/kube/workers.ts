// Workers that take keys from a WorkQueue and reconcile them, with controller-runtime's result
// handling: success → forget (reset backoff), plus addAfter when the reconciler asks to be called
// again later; an error → addRateLimited (backoff); 409 Conflict → addRateLimited as well, but it
// is the normal outcome of racing another writer, so it is logged at debug, not as an error.
import { performance } from 'node:perf_hooks';
import { isApiError } from './errors';
import { silentLogger, type Logger } from './log';
import type { WorkQueue } from './workqueue';

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
    queue.addRateLimited(key);
    if (isApiError(error, 409)) {
      outcome = 'conflict';
      logger.debug('conflict; requeued', { key, error, retries: queue.numRequeues(key) });
    } else {
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
