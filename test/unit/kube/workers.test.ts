import { KubeApiError } from '../../../operator/kube/errors';
import { createLogger } from '../../../operator/kube/log';
import { ItemExponentialRateLimiter } from '../../../operator/kube/rate-limiter';
import { runWorkers, type ReconcileOutcome, type Workers } from '../../../operator/kube/workers';
import { WorkQueue } from '../../../operator/kube/workqueue';
import { waitUntil } from './standin-fixture';

interface Harness {
  queue: WorkQueue;
  outcomes: ReconcileOutcome[];
  logs: Record<string, unknown>[];
  start(reconcile: (key: string) => Promise<{ requeueAfter?: number } | void>, count?: number): Workers;
}

let running: { queue: WorkQueue; workers?: Workers } | undefined;

function harness(): Harness {
  // Retries after 1 ms, 2 ms, … so tests see retries without waiting on production backoffs.
  const queue = new WorkQueue({ name: 'test', rateLimiter: new ItemExponentialRateLimiter(1, 50) });
  const outcomes: ReconcileOutcome[] = [];
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'debug', write: (l) => logs.push(JSON.parse(l) as Record<string, unknown>) });
  running = { queue };
  return {
    queue,
    outcomes,
    logs,
    start: (reconcile, count = 2) => {
      const workers = runWorkers(queue, count, reconcile, {
        controller: 'vm',
        logger,
        observer: { observeReconcile: (controller, outcome) => void (controller === 'vm' && outcomes.push(outcome)) },
      });
      if (running) running.workers = workers;
      return workers;
    },
  };
}

afterEach(async () => {
  // Always stop the workers, even when a test failed half way.
  running?.queue.shutdown();
  await running?.workers?.stopped;
  running = undefined;
});

describe('runWorkers', () => {
  test('success forgets the key: its backoff starts again from the beginning', async () => {
    const h = harness();
    let calls = 0;
    h.start(async () => {
      calls++;
      if (calls < 3) throw new Error('not yet');
    });
    h.queue.add('ns/a');
    await waitUntil(() => h.outcomes.length === 3, 'three reconciles');
    expect(h.outcomes).toEqual(['error', 'error', 'success']);
    expect(h.queue.numRequeues('ns/a')).toBe(0);
  });

  test('an error requeues with growing backoff and is logged as an error with the key', async () => {
    const h = harness();
    h.start(async () => {
      throw new Error('broken');
    });
    h.queue.add('ns/a');
    await waitUntil(() => h.queue.numRequeues('ns/a') >= 3, 'retries');
    const errors = h.logs.filter((l) => l.level === 'error');
    expect(errors[0]).toMatchObject({
      msg: 'reconcile failed',
      controller: 'vm',
      key: 'ns/a',
      error: { message: 'broken' },
    });
  });

  test('409 Conflict waits for the newer version (an event) without spending the rate limiter, and is not an error', async () => {
    const h = harness();
    let calls = 0;
    h.start(async () => {
      calls++;
      if (calls === 1) throw new KubeApiError(409, 'Conflict', 'the object has been modified', [], 'PUT', '/x', {});
    });
    h.queue.add('ns/a');
    await waitUntil(() => h.outcomes.length === 1, 'the conflict');
    expect(h.queue.numRequeues('ns/a')).toBe(0);
    expect(h.queue.delayedCount).toBe(1); // the late fallback
    // The watch event of the newer version reconciles at once.
    h.queue.add('ns/a');
    await waitUntil(() => h.outcomes.length === 2, 'the event-driven retry');
    expect(h.outcomes).toEqual(['conflict', 'success']);
    expect(h.logs.filter((l) => l.level === 'error')).toEqual([]);
    expect(h.logs.find((l) => l.level === 'debug')).toMatchObject({
      msg: 'conflict; waiting for the newer version',
      key: 'ns/a',
    });
  });

  test('requeueAfter forgets the backoff and schedules the key after that delay', async () => {
    const h = harness();
    let calls = 0;
    h.start(async () => {
      calls++;
      if (calls === 1) throw new Error('once');
      return calls === 2 ? { requeueAfter: 60_000 } : undefined;
    });
    h.queue.add('ns/a');
    await waitUntil(() => h.outcomes.length === 2, 'two reconciles');
    expect(h.outcomes).toEqual(['error', 'requeue_after']);
    expect(h.queue.numRequeues('ns/a')).toBe(0);
    expect(h.queue.delayedCount).toBe(1);
    // An event meanwhile still reconciles at once; the delayed requeue stays pending.
    h.queue.add('ns/a');
    await waitUntil(() => h.outcomes.length === 3, 'the event-driven reconcile');
    expect(h.outcomes[2]).toBe('success');
  });

  test('workers stop once the queue is shut down and drained', async () => {
    const h = harness();
    const done: string[] = [];
    const workers = h.start(async (key) => void done.push(key), 3);
    for (const k of ['a', 'b', 'c', 'd']) h.queue.add(k);
    h.queue.shutdown();
    await workers.stopped;
    expect(done.sort()).toEqual(['a', 'b', 'c', 'd']);
  });
});
