import { LeaderElector, microTime, type LeaderElectionOptions, type Lease } from '../../../operator/kube/leader';
import type { StoredObject } from './kube-api-standin';
import { useKubeStandin, waitUntil } from './standin-fixture';

const standin = useKubeStandin();

interface Candidate {
  elector: LeaderElector;
  started: number;
  stopped: number;
  /** Whether the *other* candidate still considered itself leader when this one started leading. */
  otherWasLeaderAtStart?: boolean;
}

/**
 * A candidate with its own client (bearer token = identity, so the stand-in can cut it off).
 * Lease timings are short but keep client-go's proportions (retry < renew deadline < lease).
 */
function candidate(
  identity: string,
  timings: Partial<LeaderElectionOptions> = {},
  other?: () => Candidate | undefined,
): Candidate {
  const ctx = standin();
  const c: Candidate = { started: 0, stopped: 0, elector: undefined as unknown as LeaderElector };
  c.elector = new LeaderElector({
    client: ctx.clientWithToken(identity, { timeoutMs: 2000 }),
    namespace: 'kubevisor-system',
    name: 'kubevisor-controller',
    identity,
    leaseDurationMs: 1000,
    renewDeadlineMs: 600,
    retryPeriodMs: 50,
    onStartedLeading: () => {
      c.started++;
      const o = other?.();
      if (o) c.otherWasLeaderAtStart = o.elector.isLeader();
    },
    onStoppedLeading: () => void c.stopped++,
    ...timings,
  });
  ctx.cleanup(() => c.elector.stop());
  return c;
}

function lease(): Lease | undefined {
  return standin().standin.stored('coordination.k8s.io/v1', 'Lease', 'kubevisor-controller', 'kubevisor-system') as
    Lease | undefined;
}

function requestsBy(token: string): number {
  return standin().standin.requests.filter((r) => r.headers.authorization === `Bearer ${token}`).length;
}

describe('LeaderElector', () => {
  test('of two candidates exactly one leads, and the other stays standby while the leader renews', async () => {
    // Each candidate's callback looks at the other, so they refer to each other through these holders.
    const ref: { a?: Candidate; b?: Candidate } = {};
    const a = (ref.a = candidate('a', {}, () => ref.b));
    const b = (ref.b = candidate('b', {}, () => ref.a));
    a.elector.start();
    b.elector.start();
    await waitUntil(() => a.started + b.started === 1, 'a leader');
    const [leader, standby] = a.started === 1 ? [a, b] : [b, a];
    expect(leader.elector.isLeader()).toBe(true);
    expect(standby.elector.isLeader()).toBe(false);
    expect(lease()?.spec).toMatchObject({
      holderIdentity: leader.elector.identity,
      leaseDurationSeconds: 1,
      leaseTransitions: 0,
    });
    // Let the standby look at the lease many times, well past one lease duration of renewals.
    const seen = requestsBy(standby.elector.identity);
    await waitUntil(() => requestsBy(standby.elector.identity) >= seen + 25, 'the standby to keep polling');
    expect(standby.elector.isLeader()).toBe(false);
    expect(standby.started).toBe(0);
    expect(standby.elector.currentLeader).toBe(leader.elector.identity);
    expect(standby.elector.hasObservedLease()).toBe(true);
    expect(leader.stopped).toBe(0);
    expect(leader.elector.isLeader()).toBe(true);
    // The lease's renewTime moved on: the leader renewed.
    expect(lease()?.spec?.renewTime).not.toBe(lease()?.spec?.acquireTime);
  });

  test('a leader that cannot renew stops leading; the other takes over only after the lease expires', async () => {
    const ref: { a?: Candidate; b?: Candidate } = {};
    const a = (ref.a = candidate('a', {}, () => ref.b));
    a.elector.start();
    await waitUntil(() => a.started === 1, 'a to lead');
    const b = (ref.b = candidate('b', {}, () => ref.a));
    b.elector.start();
    await waitUntil(() => b.elector.hasObservedLease(), 'b to see the lease');
    // a is cut off from the API server: its renewals fail.
    standin().standin.partition('a');
    await waitUntil(() => b.started === 1, 'b to take over', 8000);
    expect(a.stopped).toBe(1);
    expect(a.elector.isLeader()).toBe(false);
    // The safety property: a had already stopped when b started (renew deadline < lease duration).
    expect(b.otherWasLeaderAtStart).toBe(false);
    expect(lease()?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  test('a graceful release hands over at once, without waiting for the lease to expire', async () => {
    // A 30 s lease: if b leads within the test's few seconds, it was the release, not expiry.
    const slow = { leaseDurationMs: 30_000, renewDeadlineMs: 20_000, retryPeriodMs: 50 };
    const a = candidate('a', slow);
    a.elector.start();
    await waitUntil(() => a.started === 1, 'a to lead');
    const b = candidate('b', slow);
    b.elector.start();
    const seen = requestsBy('b');
    await waitUntil(() => requestsBy('b') >= seen + 4, 'b to poll the held lease');
    expect(b.elector.isLeader()).toBe(false);
    await a.elector.release();
    expect(a.elector.isLeader()).toBe(false);
    expect(a.stopped).toBe(0); // released, not lost
    await waitUntil(() => b.started === 1, 'b to take over after the release');
    expect(lease()?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  test('a leader whose event loop stalls past the renew deadline no longer claims to lead, before its loop even runs', async () => {
    const a = candidate('a');
    a.elector.start();
    await waitUntil(() => a.started === 1, 'a to lead');
    expect(a.elector.isLeader()).toBe(true);
    // Block this thread for longer than the 600 ms renew deadline: no timer, no renewal can run.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 800);
    expect(a.elector.isLeader()).toBe(false);
  });

  test('a leader whose lease is taken over by another stops leading at once', async () => {
    const a = candidate('a', { leaseDurationMs: 30_000, renewDeadlineMs: 20_000, retryPeriodMs: 50 });
    a.elector.start();
    await waitUntil(() => a.started === 1, 'a to lead');
    const current = lease();
    if (!current?.spec) throw new Error('no lease');
    // Another process (e.g. an operator with a different identity and a broken clock) writes itself in.
    const intruded = { ...current, spec: { ...current.spec, holderIdentity: 'intruder' } };
    standin().standin.upsert(intruded as unknown as StoredObject);
    await waitUntil(() => a.stopped === 1, 'a to notice');
    expect(a.elector.isLeader()).toBe(false);
  });

  test('writes the lease with optimistic concurrency: a stale update is refused and retried, not forced', async () => {
    standin().standin.failNext({ method: 'PUT', pathIncludes: '/leases/' }, 409, 'Conflict');
    // Pre-create a released lease so the candidate must update (PUT) rather than create it.
    standin().standin.upsert({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'kubevisor-controller', namespace: 'kubevisor-system' },
      spec: { holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 3 },
    });
    const a = candidate('a');
    a.elector.start();
    await waitUntil(() => a.started === 1, 'a to lead');
    const puts = standin().standin.requests.filter((r) => r.method === 'PUT');
    expect(puts.length).toBeGreaterThanOrEqual(2);
    const body = JSON.parse(puts[0].body) as Lease;
    expect(body.metadata.resourceVersion).toBeTruthy();
    expect(lease()?.spec).toMatchObject({ holderIdentity: 'a', leaseTransitions: 4 });
  });

  test('lease times are MicroTime (six fractional digits), and bad timings are refused', () => {
    expect(microTime(new Date('2025-01-02T03:04:05.678Z'))).toBe('2025-01-02T03:04:05.678000Z');
    const client = standin().client;
    const base = { client, namespace: 'ns', name: 'l', identity: 'x' };
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(
      /renewDeadline/,
    );
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 2000, retryPeriodMs: 2000 })).toThrow(/retryPeriod/);
  });
});
