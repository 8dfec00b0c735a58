// The migration signer, run by the controller: it watches CertificateSigningRequests for kubevisor.io/migration-node
// and, for each, approves and signs it or denies it (signer-policy.ts decides). Informer-driven and level-triggered
// like every controller here: a restart, a missed event or a second signer only repeats steps that are no-ops for a
// finished CSR, and a write that races another fails with 409 and is retried on the newer version.
//
// Garbage: issued and denied CSRs are left to kube-controller-manager's CSR cleaner (controller `csrcleaner`, on by
// default), which deletes approved/denied/failed CSRs after 1 h, pending ones after 24 h, and any whose certificate
// has expired. The signer needs no delete permission for that.
import { Informer } from '../kube/informer';
import type { KubeClient } from '../kube/client';
import { silentLogger, type Logger } from '../kube/log';
import { runWorkers } from '../kube/workers';
import { WorkQueue } from '../kube/workqueue';
import { objectKey } from '../kube/object';
import { ensureMigrationCa } from './ca-store';
import { CSR_PATH, type CertificateSigningRequest } from './csr-object';
import { KubeSignerWriter } from './kube-signer-writer';
import { MIGRATION_SIGNER_NAME } from './node-identity';
import { DEFAULT_SIGNER_POLICY, type SignerPolicy } from './signer-policy';
import { signStep } from './signer-reconcile';

/** Options of startMigrationSigner. */
export interface MigrationSignerOptions {
  /** A client allowed to read and write CSRs, approve and sign for the signer, and keep the CA Secret/ConfigMap. */
  client: KubeClient;
  /** Namespace of the CA Secret and ConfigMap. @default 'kubevisor-system' */
  namespace?: string;
  /** @default 'kubevisor-migration-ca' */
  caSecretName?: string;
  /** @default 'kubevisor-migration-ca' */
  caConfigMapName?: string;
  /** Overrides of the default policy (requester user name, longest lifetime). */
  policy?: Partial<SignerPolicy>;
  /** Concurrent CSR steps. @default 2 */
  workers?: number;
  /** Full relist period of the CSR informer. @default 300000 */
  resyncMs?: number;
  logger?: Logger;
  /** @default () => new Date() */
  now?: () => Date;
}

/** A running migration signer. */
export interface MigrationSigner {
  /** The CA certificate the signer signs with (also published in the CA ConfigMap). */
  readonly caCertPem: string;
  /** Resolves once every existing CSR of the signer has been listed (and queued). */
  waitForSync(timeoutMs: number): Promise<void>;
  /** Stops watching and waits for steps in flight to finish. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Ensures the CA (create-if-absent Secret, published ConfigMap), then starts the CSR informer and workers.
 * Run it in the leader only: a second signer is harmless (its writes conflict) but wasted work.
 */
export async function startMigrationSigner(options: MigrationSignerOptions): Promise<MigrationSigner> {
  const logger = (options.logger ?? silentLogger).child({ controller: 'migration-signer' });
  const now = options.now ?? (() => new Date());
  const policy: SignerPolicy = { ...DEFAULT_SIGNER_POLICY, ...options.policy };
  const ca = await ensureMigrationCa({
    client: options.client,
    namespace: options.namespace,
    secretName: options.caSecretName,
    configMapName: options.caConfigMapName,
  });
  const writer = new KubeSignerWriter(options.client, now);
  const informer = new Informer<CertificateSigningRequest>({
    client: options.client,
    path: CSR_PATH,
    name: 'migration-csrs',
    // The API server filters CSRs by signer, so the signer never caches other signers' requests.
    fieldSelector: `spec.signerName=${MIGRATION_SIGNER_NAME}`,
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    resyncMs: options.resyncMs,
    transform: (csr) => {
      const { managedFields: _managedFields, ...metadata } = csr.metadata;
      return { ...csr, metadata };
    },
    logger,
  });
  const queue = new WorkQueue({ name: 'migration-signer' });
  const enqueue = (csr: CertificateSigningRequest): void => queue.add(objectKey(csr));
  informer.onAdd(enqueue);
  informer.onUpdate((_old, csr) => enqueue(csr));
  const workers = runWorkers(
    queue,
    options.workers ?? 2,
    async (key) => {
      const csr = informer.getByKey(key);
      if (!csr) return;
      const result = await signStep(csr, { policy, ca, writer, now });
      if (result.outcome === 'unchanged') return;
      const fields = { csr: key, requester: csr.spec.username, ...result };
      if (result.outcome === 'issued') logger.info('migration certificate issued', fields);
      else logger.warn('migration certificate refused', fields);
    },
    { controller: 'migration-signer', logger },
  );
  informer.start();
  let stopping: Promise<void> | undefined;
  return {
    caCertPem: ca.certPem,
    waitForSync: (timeoutMs) => informer.waitForSync(timeoutMs),
    stop: () =>
      (stopping ??= (async () => {
        await informer.stop();
        queue.shutdown();
        await workers.stopped;
      })()),
  };
}
