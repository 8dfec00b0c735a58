// The operator's HTTP endpoints: /metrics (Prometheus), /healthz (the process answers: liveness)
// and /readyz (informers synced, and with leader election either leading or a standby that can
// reach the lease: readiness). Kubelet's probes and the Prometheus scraper are the only clients.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger, type Logger } from './log';
import type { OperatorMetrics } from './metrics';

export interface ReadinessCheck {
  name: string;
  /** True when ready. */
  check(): boolean;
}

/** Ready once every informer has synced its first list. */
export function informersSynced(informers: readonly { name?: string; hasSynced(): boolean }[]): ReadinessCheck {
  return { name: 'informers-synced', check: () => informers.every((i) => i.hasSynced()) };
}

/**
 * With leader election: informers start only once a replica leads, so the leader must have synced them and a standby
 * must not wait for them — a standby that is never Ready would stall every rollout and, with a PodDisruptionBudget,
 * every drain of the leader's node.
 */
export function leaderInformersSynced(
  elector: { isLeader(): boolean },
  informers: readonly { name?: string; hasSynced(): boolean }[],
): ReadinessCheck {
  const synced = informersSynced(informers);
  return { name: 'informers-synced', check: () => !elector.isLeader() || synced.check() };
}

/** Ready when leading, or when a standby that has reached the lease (so it can take over). */
export function leaderElectionReady(elector: { isLeader(): boolean; hasObservedLease(): boolean }): ReadinessCheck {
  return { name: 'leader-election', check: () => elector.isLeader() || elector.hasObservedLease() };
}

export interface HealthServerOptions {
  /** @default 8080; 0 picks a free port (tests) */
  port?: number;
  /** @default '0.0.0.0' */
  host?: string;
  metrics?: OperatorMetrics;
  readiness?: ReadinessCheck[];
  logger?: Logger;
}

export interface HealthServer {
  readonly port: number;
  /** Adds a readiness check after start (e.g. informers created later). */
  addReadinessCheck(check: ReadinessCheck): void;
  stop(): Promise<void>;
}

export async function startHealthServer(options: HealthServerOptions = {}): Promise<HealthServer> {
  const checks = [...(options.readiness ?? [])];
  const logger = options.logger ?? silentLogger;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, body: string, contentType = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    switch (url.pathname) {
      case '/healthz':
      case '/livez':
        return send(200, 'ok\n');
      case '/readyz': {
        // The Kubernetes health-endpoint format: "[+]name ok" / "[-]name failed" lines.
        const results = checks.map((c) => ({ name: c.name, ok: safeCheck(c, logger) }));
        const ready = results.every((r) => r.ok);
        const verbose = url.searchParams.has('verbose') || !ready;
        const lines = verbose ? results.map((r) => `[${r.ok ? '+' : '-'}]${r.name} ${r.ok ? 'ok' : 'failed'}`) : [];
        lines.push(ready ? 'readyz check passed' : 'readyz check failed');
        return send(ready ? 200 : 503, lines.join('\n') + '\n');
      }
      case '/metrics': {
        if (!options.metrics) return send(404, 'metrics not enabled\n');
        const metrics = options.metrics;
        metrics.metrics().then(
          (text) => send(200, text, metrics.contentType),
          (error: unknown) => {
            logger.error('metrics collection failed', { error });
            send(500, 'metrics collection failed\n');
          },
        );
        return;
      }
      default:
        return send(404, 'not found\n');
    }
  });
  // Probes hold no long-lived connections; keep-alive sockets must not delay stop().
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    addReadinessCheck: (check) => void checks.push(check),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function safeCheck(check: ReadinessCheck, logger: Logger): boolean {
  try {
    return check.check();
  } catch (error) {
    logger.warn('readiness check threw', { check: check.name, error });
    return false;
  }
}
