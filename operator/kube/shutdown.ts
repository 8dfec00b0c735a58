// Graceful shutdown on SIGTERM/SIGINT, bounded in time (the pod's terminationGracePeriodSeconds is
// 30 s by default; after it the kubelet kills us anyway). Order matters:
//   1. shut the queues down: no new keys; workers finish the key in hand and drain what is queued;
//   2. wait for the workers (bounded): no reconcile may still be writing once we give up the lease;
//   3. stop the informers;
//   4. release the leader lease, so the successor takes over at once rather than after expiry;
//   5. stop the HTTP server and close the client's idle connections.
// Leadership *lost* is a different path: the process must exit at once (onStoppedLeading → exit).
import { silentLogger, type Logger } from './log';

export interface ShutdownParts {
  queues?: readonly { shutdown(): void }[];
  workers?: readonly { readonly stopped: Promise<void> }[];
  informers?: readonly { stop(): Promise<void> }[];
  leader?: { release(): Promise<void> };
  server?: { stop(): Promise<void> };
  client?: { close(): void };
}

export interface ShutdownOptions {
  /** Total budget. @default 25000 */
  timeoutMs?: number;
  /** Share of the budget the workers get to drain; the rest is kept for release and close. @default 0.6 */
  drainShare?: number;
  logger?: Logger;
}

/**
 * Stops everything in order. Resolves true when every step finished within the budget, false when
 * a step was cut short (the remaining steps still run, each within what is left).
 */
export async function shutdownGracefully(parts: ShutdownParts, options: ShutdownOptions = {}): Promise<boolean> {
  const logger = options.logger ?? silentLogger;
  const budget = options.timeoutMs ?? 25_000;
  const deadline = performance.now() + budget;
  const left = (): number => Math.max(0, deadline - performance.now());
  let complete = true;
  const step = async (name: string, work: () => Promise<unknown>, limitMs: number): Promise<void> => {
    const outcome = await within(work, limitMs);
    if (outcome === 'done') return;
    complete = false;
    if (outcome === 'timeout') logger.warn('shutdown step timed out', { step: name, limitMs: Math.round(limitMs) });
    else logger.error('shutdown step failed', { step: name, error: outcome.error });
  };

  for (const queue of parts.queues ?? []) queue.shutdown();
  await step(
    'drain workers',
    () => Promise.all((parts.workers ?? []).map((w) => w.stopped)),
    budget * (options.drainShare ?? 0.6),
  );
  await step('stop informers', () => Promise.all((parts.informers ?? []).map((i) => i.stop())), left());
  if (parts.leader) {
    const leader = parts.leader;
    await step('release leadership', () => leader.release(), left());
  }
  if (parts.server) {
    const server = parts.server;
    await step('stop server', () => server.stop(), left());
  }
  parts.client?.close();
  logger.info(complete ? 'shut down' : 'shut down (some steps cut short)');
  return complete;
}

export interface SignalHandlerOptions extends ShutdownOptions {
  /** @default ['SIGTERM', 'SIGINT'] */
  signals?: NodeJS.Signals[];
  /** @default process.exit */
  exit?: (code: number) => void;
  /** Where to listen for signals. @default process */
  emitter?: Pick<NodeJS.Process, 'on' | 'off'>;
}

export interface SignalHandlers {
  /** Runs the shutdown as a signal would (exit code 0 if complete, 1 if cut short). */
  shutdown(reason: string): Promise<void>;
  /** Removes the signal listeners. */
  uninstall(): void;
}

/** On the first signal shut down gracefully, then exit; a second signal exits at once with 1. */
export function installSignalHandlers(parts: ShutdownParts, options: SignalHandlerOptions = {}): SignalHandlers {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const emitter = options.emitter ?? process;
  const logger = options.logger ?? silentLogger;
  let running: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    if (running) return running;
    logger.info('shutting down', { reason });
    running = shutdownGracefully(parts, options).then(
      (complete) => exit(complete ? 0 : 1),
      (error: unknown) => {
        logger.error('shutdown failed', { error });
        exit(1);
      },
    );
    return running;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (running) {
      logger.warn('second signal; exiting now', { signal });
      exit(1);
      return;
    }
    void shutdown(signal);
  };
  for (const signal of signals) emitter.on(signal, onSignal);
  return {
    shutdown,
    uninstall: () => {
      for (const signal of signals) emitter.off(signal, onSignal);
    },
  };
}

/** Runs `work` but stops waiting after `ms`. */
async function within(work: () => Promise<unknown>, ms: number): Promise<'done' | 'timeout' | { error: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([work().then(() => 'done' as const), timeout]);
  } catch (error) {
    return { error };
  } finally {
    clearTimeout(timer);
  }
}
