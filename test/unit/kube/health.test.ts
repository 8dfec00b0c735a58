import http from 'node:http';
import {
  informersSynced,
  leaderElectionReady,
  leaderInformersSynced,
  startHealthServer,
  type HealthServer,
} from '../../../operator/kube/health';
import { OperatorMetrics } from '../../../operator/kube/metrics';
import { WorkQueue } from '../../../operator/kube/workqueue';

let server: HealthServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

function get(path: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: server?.port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          type: String(res.headers['content-type']),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

describe('health endpoints', () => {
  test('/healthz answers while the process runs; /readyz follows the checks and names the failing one', async () => {
    const informers = [{ synced: true }, { synced: false }].map((s) => ({ hasSynced: () => s.synced, s }));
    server = await startHealthServer({ port: 0, host: '127.0.0.1', readiness: [informersSynced(informers)] });
    expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    const notReady = await get('/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain('[-]informers-synced failed');
    informers[1].s.synced = true;
    expect(await get('/readyz')).toMatchObject({ status: 200, body: 'readyz check passed\n' });
    expect((await get('/readyz?verbose')).body).toContain('[+]informers-synced ok');
    expect((await get('/nope')).status).toBe(404);
    expect((await get('/metrics')).status).toBe(404); // no metrics given
  });

  test('with leader election, a standby that has reached the lease is ready; one that has not is not', async () => {
    const elector = {
      leader: false,
      observed: false,
      isLeader() {
        return this.leader;
      },
      hasObservedLease() {
        return this.observed;
      },
    };
    server = await startHealthServer({ port: 0, host: '127.0.0.1' });
    server.addReadinessCheck(leaderElectionReady(elector));
    expect((await get('/readyz')).status).toBe(503);
    elector.observed = true;
    expect((await get('/readyz')).status).toBe(200);
    elector.observed = false;
    elector.leader = true;
    expect((await get('/readyz')).status).toBe(200);
  });

  test('with leader election a standby is ready without informers; the leader only once they synced', async () => {
    const elector = {
      leader: false,
      observed: true,
      isLeader() {
        return this.leader;
      },
      hasObservedLease() {
        return this.observed;
      },
    };
    const informer = {
      synced: false,
      hasSynced() {
        return this.synced;
      },
    };
    server = await startHealthServer({ port: 0, host: '127.0.0.1' });
    server.addReadinessCheck(leaderElectionReady(elector));
    server.addReadinessCheck(leaderInformersSynced(elector, [informer]));
    expect((await get('/readyz')).status).toBe(200);
    elector.leader = true;
    expect((await get('/readyz')).status).toBe(503);
    informer.synced = true;
    expect((await get('/readyz')).status).toBe(200);
  });

  test('/metrics serves reconcile counts and latency, queue depth, request counts and the VM phase hook', async () => {
    const metrics = new OperatorMetrics({ defaultMetrics: false });
    const queue = new WorkQueue({ name: 'virtualmachine' });
    queue.add('a');
    queue.add('b');
    metrics.watchQueue('virtualmachine', queue);
    metrics.watchClient({
      requestCount: {
        get: 3,
        list: 1,
        watch: 2,
        create: 0,
        update: 0,
        patch: 5,
        delete: 0,
        deletecollection: 0,
        total: 11,
      },
    });
    metrics.setVmPhaseSource(() => ({ Running: 4, Pending: 1 }));
    metrics.watchLeader({ isLeader: () => true });
    metrics.observeReconcile('virtualmachine', 'success', 0.02);
    metrics.observeReconcile('virtualmachine', 'success', 0.03);
    metrics.observeReconcile('virtualmachine', 'conflict', 0.001);
    server = await startHealthServer({ port: 0, host: '127.0.0.1', metrics });
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toContain('text/plain');
    const text = res.body;
    expect(text).toContain('kubevisor_reconcile_total{controller="virtualmachine",result="success"} 2');
    expect(text).toContain('kubevisor_reconcile_total{controller="virtualmachine",result="conflict"} 1');
    expect(text).toContain(
      'kubevisor_reconcile_duration_seconds_count{controller="virtualmachine",result="success"} 2',
    );
    expect(text).toContain(
      'kubevisor_reconcile_duration_seconds_bucket{le="0.025",controller="virtualmachine",result="success"} 1',
    );
    expect(text).toContain('kubevisor_workqueue_depth{name="virtualmachine"} 2');
    expect(text).toContain('kubevisor_workqueue_in_flight{name="virtualmachine"} 0');
    expect(text).toContain('kubevisor_kube_requests_total{verb="patch"} 5');
    expect(text).toContain('kubevisor_virtualmachines{phase="Running"} 4');
    expect(text).toContain('kubevisor_leader 1');
    // Scrapes read live values: the queue drained, the phase counts changed.
    await queue.get();
    metrics.setVmPhaseSource(() => ({ Running: 5 }));
    const again = (await get('/metrics')).body;
    expect(again).toContain('kubevisor_workqueue_depth{name="virtualmachine"} 1');
    expect(again).toContain('kubevisor_workqueue_in_flight{name="virtualmachine"} 1');
    expect(again).toContain('kubevisor_virtualmachines{phase="Running"} 5');
    expect(again).not.toContain('phase="Pending"');
  });

  test('default process metrics are on unless turned off', async () => {
    expect(await new OperatorMetrics().metrics()).toContain('process_cpu_seconds_total');
    expect(await new OperatorMetrics({ defaultMetrics: false }).metrics()).not.toContain('process_cpu_seconds_total');
  });
});
