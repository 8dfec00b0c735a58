import {
  BucketRateLimiter,
  ItemExponentialRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
  type RateLimiter,
} from '../../../operator/kube/rate-limiter';
import { WorkQueue } from '../../../operator/kube/workqueue';

/** A rate limiter whose delays the test chooses, recording calls. */
class ScriptedLimiter implements RateLimiter {
  readonly forgotten: string[] = [];
  private readonly counts = new Map<string, number>();
  constructor(private readonly delayMs: number) {}
  when(key: string): number {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    return this.delayMs;
  }
  forget(key: string): void {
    this.forgotten.push(key);
    this.counts.delete(key);
  }
  numRequeues(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}

describe('WorkQueue de-duplication and processing', () => {
  test('a key queued several times is handed out once, in first-add order', async () => {
    const q = new WorkQueue();
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    q.add('ns/a');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('ns/a');
    expect(await q.get()).toBe('ns/b');
    expect(q.length).toBe(0);
    expect(q.inFlight).toBe(2);
  });

  test('a key added while being processed is not handed out again until done, then exactly once', async () => {
    const q = new WorkQueue();
    q.add('k');
    expect(await q.get()).toBe('k');
    q.add('k');
    q.add('k');
    expect(q.length).toBe(0); // dirty, but held back while in flight
    let second: string | undefined;
    const pending = q.get().then((k) => (second = k));
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done('k');
    await pending;
    expect(second).toBe('k');
    expect(q.length).toBe(0);
    q.done('k');
    expect(q.inFlight).toBe(0);
  });

  test('a key done without being re-added is not processed again', async () => {
    const q = new WorkQueue();
    q.add('k');
    await q.get();
    q.done('k');
    expect(q.length).toBe(0);
    expect(q.inFlight).toBe(0);
  });

  test('a waiting get() receives the next key added', async () => {
    const q = new WorkQueue();
    const got = q.get();
    q.add('late');
    await expect(got).resolves.toBe('late');
  });

  test('never hands one key to two workers at once, while different keys do run in parallel', async () => {
    const q = new WorkQueue();
    const active = new Map<string, number>();
    let maxPerKey = 0;
    let maxOverall = 0;
    let overall = 0;
    const processed = new Map<string, number>();
    let releaseAll!: () => void;
    const gate = new Promise<void>((r) => (releaseAll = r));
    const worker = async (): Promise<void> => {
      for (;;) {
        const key = await q.get();
        if (key === undefined) return;
        active.set(key, (active.get(key) ?? 0) + 1);
        overall++;
        maxPerKey = Math.max(maxPerKey, active.get(key) ?? 0);
        maxOverall = Math.max(maxOverall, overall);
        // During its first two passes the key is added again while being processed (an informer
        // event arrives), so it must come round three times in all.
        if ((processed.get(key) ?? 0) < 2) q.add(key);
        await gate;
        processed.set(key, (processed.get(key) ?? 0) + 1);
        active.set(key, (active.get(key) ?? 0) - 1);
        overall--;
        q.done(key);
      }
    };
    const workers = [worker(), worker(), worker(), worker()];
    q.add('x');
    q.add('y');
    await new Promise((r) => setImmediate(r));
    releaseAll();
    for (let i = 0; i < 200 && ((processed.get('x') ?? 0) < 3 || (processed.get('y') ?? 0) < 3); i++) {
      await new Promise((r) => setImmediate(r));
    }
    q.shutdown();
    await Promise.all(workers);
    expect(maxPerKey).toBe(1);
    expect(maxOverall).toBe(2);
    expect(processed.get('x')).toBe(3);
    expect(processed.get('y')).toBe(3);
  });

  test('done() of a key that is not in flight changes nothing', () => {
    const q = new WorkQueue();
    q.add('a');
    q.done('a');
    expect(q.length).toBe(1);
    expect(q.inFlight).toBe(0);
  });
});

describe('WorkQueue delays', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('addAfter queues the key only once the delay has passed', () => {
    const q = new WorkQueue();
    q.addAfter('k', 1000);
    expect(q.length).toBe(0);
    expect(q.delayedCount).toBe(1);
    jest.advanceTimersByTime(999);
    expect(q.length).toBe(0);
    jest.advanceTimersByTime(1);
    expect(q.length).toBe(1);
    expect(q.delayedCount).toBe(0);
  });

  test('addAfter keeps the earlier of two pending times', () => {
    const q = new WorkQueue();
    q.addAfter('sooner', 1000);
    q.addAfter('sooner', 100);
    q.addAfter('kept', 50);
    q.addAfter('kept', 500);
    expect(q.delayedCount).toBe(2);
    jest.advanceTimersByTime(50);
    expect(q.length).toBe(1);
    jest.advanceTimersByTime(50);
    expect(q.length).toBe(2);
    // Nothing is left waiting: the later requests were folded into the earlier ones.
    expect(q.delayedCount).toBe(0);
    jest.advanceTimersByTime(10_000);
    expect(q.length).toBe(2);
  });

  test('addAfter with no delay adds at once', () => {
    const q = new WorkQueue();
    q.addAfter('k', 0);
    expect(q.length).toBe(1);
  });

  test('addRateLimited waits as long as the rate limiter says; forget resets it', () => {
    const limiter = new ScriptedLimiter(200);
    const q = new WorkQueue({ rateLimiter: limiter });
    q.addRateLimited('k');
    expect(q.numRequeues('k')).toBe(1);
    jest.advanceTimersByTime(199);
    expect(q.length).toBe(0);
    jest.advanceTimersByTime(1);
    expect(q.length).toBe(1);
    q.forget('k');
    expect(limiter.forgotten).toEqual(['k']);
    expect(q.numRequeues('k')).toBe(0);
  });

  test('with the default limiter, repeated failures of one key back off exponentially', async () => {
    const q = new WorkQueue();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      q.addRateLimited('k');
      let elapsed = 0;
      // Bounded: a broken delay fails the assertion below instead of spinning forever.
      while (q.length === 0 && elapsed < 10_000) {
        jest.advanceTimersByTime(1);
        elapsed++;
      }
      delays.push(elapsed);
      const key = await q.get();
      if (key !== undefined) q.done(key);
    }
    expect(delays).toEqual([5, 10, 20, 40]);
  });
});

describe('WorkQueue shutdown', () => {
  test('stops accepting keys, drops pending delays, drains what is queued, then releases workers', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.addAfter('delayed', 60_000);
    expect(await q.get()).toBe('a');
    q.shutdown();
    expect(q.isShuttingDown).toBe(true);
    expect(q.delayedCount).toBe(0);
    q.add('refused');
    q.addRateLimited('refused');
    expect(await q.get()).toBe('b');
    expect(await q.get()).toBeUndefined();
    let drained = false;
    const drain = q.drained().then(() => (drained = true));
    await Promise.resolve();
    expect(drained).toBe(false); // a and b are still in flight
    q.done('a');
    q.done('b');
    await drain;
    expect(drained).toBe(true);
  });

  test('idle workers waiting in get() are released with undefined', async () => {
    const q = new WorkQueue();
    const waiting = [q.get(), q.get()];
    q.shutdown();
    await expect(Promise.all(waiting)).resolves.toEqual([undefined, undefined]);
  });

  test('a key made dirty before shutdown is still processed once more after done()', async () => {
    const q = new WorkQueue();
    q.add('k');
    await q.get();
    q.add('k');
    q.shutdown();
    q.done('k');
    expect(await q.get()).toBe('k');
    q.done('k');
    await expect(q.drained()).resolves.toBeUndefined();
  });
});

describe('rate limiters', () => {
  test('per-key exponential backoff doubles from 5 ms, caps at 1000 s, and forget resets it', () => {
    const limiter = new ItemExponentialRateLimiter();
    const seq = Array.from({ length: 5 }, () => limiter.when('a'));
    expect(seq).toEqual([5, 10, 20, 40, 80]);
    expect(limiter.when('b')).toBe(5); // keys back off independently
    for (let i = 0; i < 100; i++) limiter.when('a');
    expect(limiter.when('a')).toBe(1_000_000);
    expect(limiter.numRequeues('a')).toBe(106);
    limiter.forget('a');
    expect(limiter.numRequeues('a')).toBe(0);
    expect(limiter.when('a')).toBe(5);
  });

  test('the token bucket allows a burst of 100, then one retry per 100 ms (10 qps)', () => {
    let now = 0;
    const bucket = new BucketRateLimiter(10, 100, () => now);
    const burst = Array.from({ length: 100 }, () => bucket.when());
    expect(burst.every((d) => d === 0)).toBe(true);
    expect(bucket.when()).toBeCloseTo(100);
    expect(bucket.when()).toBeCloseTo(200);
    now += 1000; // refills 10 tokens, 2 of which repay the reservations above
    const afterRefill = Array.from({ length: 8 }, () => bucket.when());
    expect(afterRefill.every((d) => d < 1e-9)).toBe(true);
    expect(bucket.when()).toBeCloseTo(100);
  });

  test('max-of takes the larger delay and records the retry in every limiter', () => {
    let now = 0;
    const perKey = new ItemExponentialRateLimiter(5, 1_000_000);
    const bucket = new BucketRateLimiter(10, 1, () => now);
    const limiter = new MaxOfRateLimiter(perKey, bucket);
    expect(limiter.when('k')).toBe(5); // bucket had its one token; per-key says 5
    expect(limiter.when('k')).toBeCloseTo(100); // bucket empty: 100 ms beats 10 ms
    expect(limiter.numRequeues('k')).toBe(2);
    limiter.forget('k');
    expect(limiter.numRequeues('k')).toBe(0);
    now += 10_000;
    expect(limiter.when('k')).toBe(5);
  });

  test('the controller default combines 5 ms per-key backoff with the 10 qps bucket', () => {
    const limiter = defaultControllerRateLimiter();
    expect(limiter.when('x')).toBe(5);
    expect(limiter.when('x')).toBe(10);
    expect(limiter.when('y')).toBe(5);
  });
});

describe('WorkQueue urgent keys', () => {
  test('urgent keys are handed out first, and an urgent add promotes a waiting key once', async () => {
    const q = new WorkQueue();
    q.add('new-1');
    q.add('new-2');
    q.add('new-3');
    q.add('progress', { urgent: true });
    q.add('new-3', { urgent: true });
    expect(q.length).toBe(4);
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      const key = (await q.get())!;
      order.push(key);
      q.done(key);
    }
    expect(order).toEqual(['progress', 'new-3', 'new-1', 'new-2']);
    expect(q.length).toBe(0);
    q.shutdown();
    // The promoted key's second entry is skipped, not handed out again.
    expect(await q.get()).toBeUndefined();
  });

  test('an urgent add of a key being processed is re-queued once after done()', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = (await q.get())!;
    q.add('a', { urgent: true });
    q.add('b');
    q.done(key);
    const got = [(await q.get())!, (await q.get())!];
    expect(got.sort()).toEqual(['a', 'b']);
    q.shutdown();
  });

  test('a key added as urgent while it is processed stays urgent: done() queues it ahead of the others', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = (await q.get())!;
    q.add('b');
    q.add('c');
    q.add('a'); // an ordinary add first (e.g. its own status write) …
    q.add('a', { urgent: true }); // … then progress of its pod
    q.done(key);
    const order: string[] = [];
    for (let i = 0; i < 3; i++) {
      const k = (await q.get())!;
      order.push(k);
      q.done(k);
    }
    expect(order).toEqual(['a', 'b', 'c']);
    // Urgency is not remembered past the pass it was meant for.
    q.add('b');
    q.add('a');
    expect([(await q.get())!, (await q.get())!]).toEqual(['b', 'a']);
    q.shutdown();
  });
});
