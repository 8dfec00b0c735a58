// Where the migration CA lives: its key in a Secret only the controller reads, its certificate (public) in a
// ConfigMap the daemons read. Created once with create-if-absent semantics: of two controllers starting at the
// same moment, one create wins and the other reads the winner's CA, so there is never a second CA.
import { isAlreadyExists, isConflict } from '../kube/errors';
import type { KubeClient } from '../kube/client';
import type { KubeObject } from '../kube/object';
import { createMigrationCa, loadMigrationCa, type MigrationCa, type MigrationCaPem } from './certificate-authority';
import {
  CA_BUNDLE_KEY,
  DEFAULT_CA_CONFIGMAP_NAME,
  DEFAULT_CA_SECRET_NAME,
  DEFAULT_PKI_NAMESPACE,
} from './node-identity';
import { pemBlocks } from './pem';

/** What the CA store needs of a client (a KubeClient, or a fake in tests). */
export type CaStoreClient = Pick<KubeClient, 'tryGet' | 'create' | 'update'>;

/** Where the CA is kept, and with what client. */
export interface CaStoreOptions {
  client: CaStoreClient;
  /** @default 'kubevisor-system' */
  namespace?: string;
  /** @default 'kubevisor-migration-ca' */
  secretName?: string;
  /** @default 'kubevisor-migration-ca' */
  configMapName?: string;
  /** Makes a new CA when none is stored. @default createMigrationCa */
  createCa?: () => MigrationCaPem;
}

interface Secret extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}
interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

const LABELS = { 'app.kubernetes.io/name': 'kubevisor', 'app.kubernetes.io/component': 'migration-pki' };

/**
 * The stored CA, creating it when absent, and the CA bundle ConfigMap made to contain it. A Secret that exists
 * but does not hold a usable CA is an error, never overwritten: replacing a CA breaks every node certificate.
 */
export async function ensureMigrationCa(options: CaStoreOptions): Promise<MigrationCa> {
  const namespace = options.namespace ?? DEFAULT_PKI_NAMESPACE;
  const secretName = options.secretName ?? DEFAULT_CA_SECRET_NAME;
  const configMapName = options.configMapName ?? DEFAULT_CA_CONFIGMAP_NAME;
  const { client } = options;

  let secret = await client.tryGet<Secret>('v1', 'Secret', secretName, namespace);
  if (!secret) {
    const fresh = (options.createCa ?? createMigrationCa)();
    try {
      secret = await client.create<Secret>({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: secretName, namespace, labels: LABELS },
        type: 'kubernetes.io/tls',
        data: {
          'tls.crt': Buffer.from(fresh.certPem).toString('base64'),
          'tls.key': Buffer.from(fresh.keyPem).toString('base64'),
        },
      });
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      // Another controller created it between our get and create: use theirs.
      secret = await client.tryGet<Secret>('v1', 'Secret', secretName, namespace);
      if (!secret) throw new Error(`migration CA: Secret ${namespace}/${secretName} vanished while being created`);
    }
  }
  const decode = (key: string): string => Buffer.from(secret?.data?.[key] ?? '', 'base64').toString('utf8');
  let ca: MigrationCa;
  try {
    ca = loadMigrationCa({ certPem: decode('tls.crt'), keyPem: decode('tls.key') });
  } catch (error) {
    throw new Error(
      `migration CA: Secret ${namespace}/${secretName} does not hold a usable CA (${(error as Error).message}); fix or delete it`,
      { cause: error },
    );
  }
  await publishCaBundle(client, namespace, configMapName, ca);
  return ca;
}

/**
 * Makes the ConfigMap's bundle contain the CA certificate. A bundle that already contains it is left as it is, so
 * a bundle holding an old and a new CA during a rotation is not cut back to one.
 */
async function publishCaBundle(client: CaStoreClient, namespace: string, name: string, ca: MigrationCa): Promise<void> {
  const wanted = ca.cert.raw;
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await client.tryGet<ConfigMap>('v1', 'ConfigMap', name, namespace);
    if (!current) {
      try {
        await client.create<ConfigMap>({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name, namespace, labels: LABELS },
          data: { [CA_BUNDLE_KEY]: ca.certPem },
        });
        return;
      } catch (error) {
        if (isAlreadyExists(error)) continue;
        throw error;
      }
    }
    const bundle = current.data?.[CA_BUNDLE_KEY] ?? '';
    let blocks: { label: string; der: Buffer }[] = [];
    try {
      blocks = pemBlocks(bundle);
    } catch {
      // An unreadable bundle is replaced below.
    }
    if (blocks.some((b) => b.label === 'CERTIFICATE' && b.der.equals(wanted))) return;
    try {
      await client.update<ConfigMap>({ ...current, data: { ...current.data, [CA_BUNDLE_KEY]: ca.certPem } });
      return;
    } catch (error) {
      // A concurrent writer: read again and re-check.
      if (!isConflict(error)) throw error;
    }
  }
  throw new Error(`migration CA: could not publish the CA bundle in ConfigMap ${namespace}/${name} (conflicts)`);
}
