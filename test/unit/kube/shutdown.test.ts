import { EventEmitter } from 'node:events';
import { installSignalHandlers, shutdownGracefully, type ShutdownParts } from '../../../operator/kube/shutdown';
import { WorkQueue } from '../../../operator/kube/workqueue';
import { runWorkers } from '../../../operator/kube/workers';

/** Parts that record the order in which they were stopped. */
function recordingParts(order: string[], workersStopped: Promise<void>): ShutdownParts {
  return {
    queues: [{ shutdown: () => void order.push('queue') }],
    workers: [{ stopped: workersStopped.then(() => void order.push('workers')) }],
    informers: [{ stop: async () => void order.push('informer') }],
    leader: { release: async () => void order.push('release') },
    server: { stop: async () => void order.push('server') },
    client: { close: () => void order.push('client') },
  };
}

describe('graceful shutdown', () => {
  test('stops in order: queues, workers drained, informers, lease released, server, client', async () => {
    const order: string[] = [];
    const queue = new WorkQueue();
    const processed: string[] = [];
    queue.add('a');
    queue.add('b');
    const workers = runWorkers(queue, 1, async (key) => void processed.push(key));
    const parts = recordingParts(order, workers.stopped);
    parts.queues = [{ shutdown: () => (order.push('queue'), queue.shutdown()) }];
    expect(await shutdownGracefully(parts, { timeoutMs: 5000 })).toBe(true);
    expect(order).toEqual(['queue', 'workers', 'informer', 'release', 'server', 'client']);
    expect(processed).toEqual(['a', 'b']); // the queue drained
  });

  test('a worker that never finishes is cut off, and the lease is still released and the server stopped', async () => {
    const order: string[] = [];
    const never = new Promise<void>(() => undefined);
    const complete = await shutdownGracefully(recordingParts(order, never), { timeoutMs: 100 });
    expect(complete).toBe(false);
    expect(order).toEqual(['queue', 'informer', 'release', 'server', 'client']);
  });

  test('a step that fails does not stop the later ones', async () => {
    const order: string[] = [];
    const parts = recordingParts(order, Promise.resolve());
    parts.informers = [{ stop: () => Promise.reject(new Error('boom')) }];
    expect(await shutdownGracefully(parts, { timeoutMs: 1000 })).toBe(false);
    expect(order).toEqual(['queue', 'workers', 'release', 'server', 'client']);
  });

  test('SIGTERM runs the shutdown then exits 0; a second signal exits 1 at once', async () => {
    const emitter = new EventEmitter();
    const exits: number[] = [];
    const order: string[] = [];
    let finishWorkers!: () => void;
    const workersStopped = new Promise<void>((r) => (finishWorkers = r));
    const handlers = installSignalHandlers(recordingParts(order, workersStopped), {
      emitter: emitter as unknown as NodeJS.Process,
      exit: (code) => void exits.push(code),
      timeoutMs: 5000,
    });
    try {
      emitter.emit('SIGTERM', 'SIGTERM');
      emitter.emit('SIGINT', 'SIGINT');
      expect(exits).toEqual([1]);
      finishWorkers();
      await handlers.shutdown('again'); // the same run, not a second one
      expect(exits).toEqual([1, 0]);
      expect(order.filter((s) => s === 'release')).toHaveLength(1);
    } finally {
      handlers.uninstall();
    }
    expect(emitter.listenerCount('SIGTERM')).toBe(0);
  });
});
