// Rate limiters for work-queue retries, as client-go's workqueue defines them. The controller
// default is the larger of a per-key exponential backoff (5 ms doubling to 1000 s) and a global
// token bucket (10 qps, burst 100): one failing key backs off alone, while a storm of failures
// across many keys is held to 10 retries a second overall.
import { performance } from 'node:perf_hooks';

export interface RateLimiter {
  /** How long `key` should wait before its next retry; records the retry. */
  when(key: string): number;
  /** Clears `key`'s history (after a success). */
  forget(key: string): void;
  /** Retries recorded for `key` since the last forget. */
  numRequeues(key: string): number;
}

/** base·2^n for the n-th retry of a key, capped at max. */
export class ItemExponentialRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    readonly baseMs = 5,
    readonly maxMs = 1_000_000,
  ) {}

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // Past 2^60 every sensible cap is exceeded; stop multiplying before the float overflows.
    if (n > 60) return this.maxMs;
    return Math.min(this.baseMs * 2 ** n, this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * A token bucket shared by all keys: `burst` tokens, refilled at `qps` per second. Each retry takes
 * a token, or reserves the next one and waits for it (golang.org/x/time/rate's Reserve semantics).
 */
export class BucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    readonly qps = 10,
    readonly burst = 100,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  when(): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.qps) / 1000);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  forget(): void {
    // Global: nothing per key to forget.
  }

  numRequeues(): number {
    return 0;
  }
}

/** The largest delay any of the limiters asks for. */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    // Every limiter must record the retry, so evaluate all of them (no short-circuit).
    return this.limiters.map((l) => l.when(key)).reduce((a, b) => Math.max(a, b), 0);
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    return this.limiters.map((l) => l.numRequeues(key)).reduce((a, b) => Math.max(a, b), 0);
  }
}

/** controller-runtime's DefaultTypedControllerRateLimiter. */
export function defaultControllerRateLimiter(): RateLimiter {
  return new MaxOfRateLimiter(new ItemExponentialRateLimiter(5, 1_000_000), new BucketRateLimiter(10, 100));
}
