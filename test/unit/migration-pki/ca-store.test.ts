/**
 * The CA store: created once (create-if-absent, so two controllers never make two CAs), published as a public
 * bundle, and never overwritten when what is stored is unusable.
 */
import { KubeApiError, type KubeObject } from '../../../operator/kube';
import {
  CA_BUNDLE_KEY,
  createMigrationCa,
  ensureMigrationCa,
  type CaStoreClient,
} from '../../../operator/migration-pki';

/** An in-memory API server for Secrets and ConfigMaps, with a hook to act between a get and a create. */
class FakeStore {
  readonly objects = new Map<string, KubeObject>();
  beforeCreate?: (object: KubeObject) => void;

  readonly client: CaStoreClient = {
    tryGet: (async (_apiVersion: string, kind: string, name: string, namespace?: string) =>
      this.objects.get(`${kind}/${namespace}/${name}`)) as CaStoreClient['tryGet'],
    create: (async (object: KubeObject) => {
      this.beforeCreate?.(object);
      const key = `${object.kind}/${object.metadata.namespace}/${object.metadata.name}`;
      if (this.objects.has(key)) {
        throw new KubeApiError(409, 'AlreadyExists', `${key} already exists`, [], 'POST', key, {});
      }
      this.objects.set(key, structuredClone(object));
      return object;
    }) as CaStoreClient['create'],
    update: (async (object: KubeObject) => {
      this.objects.set(`${object.kind}/${object.metadata.namespace}/${object.metadata.name}`, structuredClone(object));
      return object;
    }) as CaStoreClient['update'],
  };

  secret(): KubeObject & { data?: Record<string, string> } {
    return this.objects.get('Secret/kubevisor-system/kubevisor-migration-ca') as KubeObject;
  }
  bundle(): string | undefined {
    const configMap = this.objects.get('ConfigMap/kubevisor-system/kubevisor-migration-ca') as
      (KubeObject & { data?: Record<string, string> }) | undefined;
    return configMap?.data?.[CA_BUNDLE_KEY];
  }
}

test('creates the CA Secret and publishes only its certificate in the ConfigMap', async () => {
  const store = new FakeStore();
  const ca = await ensureMigrationCa({ client: store.client });
  const secret = store.secret();
  expect(secret.type).toBe('kubernetes.io/tls');
  expect(Buffer.from(secret.data?.['tls.crt'] ?? '', 'base64').toString()).toBe(ca.certPem);
  expect(Buffer.from(secret.data?.['tls.key'] ?? '', 'base64').toString()).toContain('PRIVATE KEY');
  expect(store.bundle()).toBe(ca.certPem);
  expect(store.bundle()).not.toContain('PRIVATE KEY');
});

test('a second run reuses the stored CA', async () => {
  const store = new FakeStore();
  const first = await ensureMigrationCa({ client: store.client });
  const second = await ensureMigrationCa({ client: store.client });
  expect(second.certPem).toBe(first.certPem);
});

test('losing the create race means using the winner CA, not a second one', async () => {
  const store = new FakeStore();
  const winner = createMigrationCa();
  // Another controller creates its Secret between our get and our create.
  store.beforeCreate = (object) => {
    store.beforeCreate = undefined;
    if (object.kind !== 'Secret') return;
    store.objects.set('Secret/kubevisor-system/kubevisor-migration-ca', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'kubevisor-migration-ca', namespace: 'kubevisor-system' },
      data: {
        'tls.crt': Buffer.from(winner.certPem).toString('base64'),
        'tls.key': Buffer.from(winner.keyPem).toString('base64'),
      },
    });
  };
  const ca = await ensureMigrationCa({ client: store.client });
  expect(ca.certPem).toBe(winner.certPem);
  expect(store.bundle()).toBe(winner.certPem);
});

test('an unusable Secret is an error and is left as it is', async () => {
  const store = new FakeStore();
  const broken = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'kubevisor-migration-ca', namespace: 'kubevisor-system' },
    data: { 'tls.crt': Buffer.from('not a certificate').toString('base64') },
  };
  store.objects.set('Secret/kubevisor-system/kubevisor-migration-ca', broken);
  await expect(ensureMigrationCa({ client: store.client })).rejects.toThrow(
    'Secret kubevisor-system/kubevisor-migration-ca does not hold a usable CA',
  );
  expect(store.secret()).toEqual(broken);
});

test('a bundle that already holds the CA (e.g. next to a new one during a rotation) is kept; a stale one is fixed', async () => {
  const store = new FakeStore();
  const ca = await ensureMigrationCa({ client: store.client });
  const other = createMigrationCa();
  const set = (bundle: string) =>
    store.objects.set('ConfigMap/kubevisor-system/kubevisor-migration-ca', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'kubevisor-migration-ca', namespace: 'kubevisor-system' },
      data: { [CA_BUNDLE_KEY]: bundle },
    });
  set(other.certPem + ca.certPem);
  await ensureMigrationCa({ client: store.client });
  expect(store.bundle()).toBe(other.certPem + ca.certPem);
  set(other.certPem);
  await ensureMigrationCa({ client: store.client });
  expect(store.bundle()).toBe(ca.certPem);
});
