import { backoffDelay, sleepUnlessAborted } from '../../../operator/kube/backoff';

describe('backoffDelay', () => {
  test('no delay before the first failure; then doubling from the initial delay, never above the maximum', () => {
    const noJitter = { initialMs: 100, maxMs: 1000, jitter: 0 };
    expect([0, 1, 2, 3, 4, 5, 50, 5000].map((n) => backoffDelay(n, noJitter))).toEqual([
      0, 100, 200, 400, 800, 1000, 1000, 1000,
    ]);
  });

  test('jitter takes up to its fraction off, so the delay stays within [d·(1−jitter), d]', () => {
    const options = { initialMs: 100, maxMs: 1000, jitter: 0.5 };
    expect(backoffDelay(2, { ...options, random: () => 0 })).toBe(200);
    expect(backoffDelay(2, { ...options, random: () => 0.999999 })).toBe(100);
    expect(backoffDelay(20, { ...options, random: () => 0.5 })).toBe(750);
  });
});

describe('sleepUnlessAborted', () => {
  test('returns at once, without throwing, when the signal aborts', async () => {
    const abort = new AbortController();
    const sleeping = sleepUnlessAborted(60_000, abort.signal);
    abort.abort();
    await expect(sleeping).resolves.toBeUndefined();
  });
});
