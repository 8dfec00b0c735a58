// Bounded polling: every wait in the e2e harness and tests ends by time and by attempt count.

export interface WaitOptions {
  /** Give up after this long. */
  timeoutMs: number;
  /** Pause between attempts. */
  intervalMs?: number;
  /** Give up after this many attempts even if time remains (default: enough to cover timeoutMs). */
  maxAttempts?: number;
  /** Called before each attempt; throw to stop waiting at once (e.g. a component process died). */
  abortIf?: () => void;
}

export class WaitTimeoutError extends Error {
  constructor(
    readonly what: string,
    readonly elapsedMs: number,
    readonly attempts: number,
    readonly lastError: unknown,
  ) {
    const last =
      lastError === undefined
        ? ''
        : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
    super(`timed out after ${elapsedMs} ms (${attempts} attempts) waiting for ${what}${last}`);
    this.name = 'WaitTimeoutError';
  }
}

/**
 * Calls probe until it returns a value other than undefined, and returns that value. A probe that
 * throws counts as "not yet"; its error is reported if the wait times out.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, options: WaitOptions): Promise<T> {
  const intervalMs = options.intervalMs ?? 250;
  const maxAttempts = options.maxAttempts ?? Math.ceil(options.timeoutMs / intervalMs) + 1;
  const start = Date.now();
  let lastError: unknown;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    options.abortIf?.();
    try {
      const value = await probe();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    const elapsed = Date.now() - start;
    if (elapsed >= options.timeoutMs || attempt === maxAttempts) {
      throw new WaitTimeoutError(what, elapsed, attempt, lastError);
    }
    await sleep(Math.min(intervalMs, options.timeoutMs - elapsed));
  }
  throw new WaitTimeoutError(what, Date.now() - start, maxAttempts, lastError);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
