// Exponential backoff with jitter, bounded, for reconnect loops (informer re-watch). Jitter spreads
// many clients that lost the API server at the same moment, so they do not return in lockstep.
import { setTimeout as sleepFor } from 'node:timers/promises';

export interface BackoffOptions {
  /** Delay after the first failure. */
  initialMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
  /** @default 2 */
  factor?: number;
  /** Fraction of the delay that is random: the delay lies in [d·(1−jitter), d]. @default 0.5 */
  jitter?: number;
  /** @default Math.random */
  random?: () => number;
}

/** Delay before retry number `failures` (1 = after the first failure); 0 for 0 failures. */
export function backoffDelay(failures: number, options: BackoffOptions): number {
  if (failures <= 0) return 0;
  const factor = options.factor ?? 2;
  const jitter = Math.min(Math.max(options.jitter ?? 0.5, 0), 1);
  const random = options.random ?? Math.random;
  // Cap the exponent so a long outage cannot overflow to Infinity.
  const base = Math.min(options.maxMs, options.initialMs * Math.pow(factor, Math.min(failures - 1, 64)));
  return Math.round(base * (1 - jitter * random()));
}

/** Resolves after `ms`, or at once (without throwing) when `signal` aborts. */
export async function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return;
  try {
    await sleepFor(ms, undefined, { signal });
  } catch {
    // Aborted: the caller checks its own state.
  }
}
