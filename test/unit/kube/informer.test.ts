import { byLabel, byOwnerUid } from '../../../operator/kube/indexers';
import { Informer, type InformerOptions } from '../../../operator/kube/informer';
import type { KubeObject } from '../../../operator/kube/object';
import type { StoredObject } from './kube-api-standin';
import { useKubeStandin, waitUntil } from './standin-fixture';

const standin = useKubeStandin();

function pod(
  name: string,
  extra: { labels?: Record<string, string>; owner?: string; namespace?: string } = {},
): StoredObject {
  const metadata: StoredObject['metadata'] = { name, namespace: extra.namespace ?? 'vms' };
  if (extra.labels) metadata.labels = extra.labels;
  if (extra.owner) {
    metadata.ownerReferences = [
      { apiVersion: 'kubevisor.io/v1alpha1', kind: 'VirtualMachine', name: 'vm', uid: extra.owner, controller: true },
    ];
  }
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: {} };
}

interface Recorder {
  added: string[];
  updated: { old: KubeObject; new: KubeObject }[];
  deleted: string[];
}

/** An informer on all pods, with fast retry so the tests do not wait on production backoffs; stopped after the test. */
function podInformer(options: Partial<InformerOptions<KubeObject>> = {}): {
  informer: Informer<KubeObject>;
  seen: Recorder;
} {
  const { client, cleanup } = standin();
  const informer = new Informer<KubeObject>({
    client,
    path: '/api/v1/pods',
    backoff: { initialMs: 5, maxMs: 50 },
    resyncMs: 0,
    ...options,
  });
  cleanup(() => informer.stop());
  const seen: Recorder = { added: [], updated: [], deleted: [] };
  informer.onAdd((o) => seen.added.push(o.metadata.name ?? ''));
  informer.onUpdate((o, n) => seen.updated.push({ old: o, new: n }));
  informer.onDelete((o) => seen.deleted.push(o.metadata.name ?? ''));
  return { informer, seen };
}

describe('Informer list', () => {
  test('lists in pages with limit/continue, fills apiVersion/kind, emits add per object, then syncs', async () => {
    for (let i = 0; i < 7; i++) standin().standin.upsert(pod(`p${i}`));
    const { informer, seen } = podInformer({ pageSize: 3 });
    expect(informer.hasSynced()).toBe(false);
    informer.start();
    await informer.waitForSync(4000);
    expect(informer.hasSynced()).toBe(true);
    expect(informer.list()).toHaveLength(7);
    expect(seen.added.sort()).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    expect(informer.get('vms', 'p3')).toMatchObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p3' } });
    expect(informer.getByKey('vms/p4')?.metadata.name).toBe('p4');
    const lists = standin().standin.listRequests('pods');
    expect(lists).toHaveLength(3);
    expect(lists.map((r) => r.query.get('limit'))).toEqual(['3', '3', '3']);
    expect(lists[0].query.has('continue')).toBe(false);
    expect(lists[1].query.get('continue')).toBeTruthy();
    expect(lists[2].query.get('continue')).toBeTruthy();
  });

  test('when a continue token expires mid-list, falls back to one unpaginated list', async () => {
    for (let i = 0; i < 5; i++) standin().standin.upsert(pod(`p${i}`));
    standin().standin.failNext({ method: 'GET', queryHas: 'continue' }, 410, 'Expired');
    const { informer } = podInformer({ pageSize: 2 });
    informer.start();
    await informer.waitForSync(4000);
    expect(informer.list()).toHaveLength(5);
    const last = standin().standin.listRequests('pods').at(-1);
    expect(last?.query.has('limit')).toBe(false);
  });

  test('a failing list is retried until it succeeds', async () => {
    standin().standin.upsert(pod('a'));
    standin().standin.failNext({ method: 'GET', pathIncludes: '/pods' }, 500, 'InternalError', 3);
    const { informer } = podInformer();
    informer.start();
    await informer.waitForSync(4000);
    expect(informer.get('vms', 'a')).toBeDefined();
    expect(standin().standin.listRequests('pods').length).toBe(4);
  });

  test('waitForSync rejects after its timeout while the server fails, and stop() rejects pending waiters', async () => {
    standin().standin.failNext({ method: 'GET', pathIncludes: '/pods' }, 503, 'ServiceUnavailable', 1_000_000);
    const { informer } = podInformer();
    informer.start();
    await expect(informer.waitForSync(50)).rejects.toThrow(/did not sync within 50 ms/);
    const pending = informer.waitForSync(60_000);
    await informer.stop();
    await expect(pending).rejects.toThrow(/stopped before it synced/);
    expect(informer.hasSynced()).toBe(false);
  });

  test('passes label and field selectors to list and watch', async () => {
    standin().standin.upsert(pod('match', { labels: { app: 'vm' } }));
    standin().standin.upsert(pod('other', { labels: { app: 'db' } }));
    const { informer } = podInformer({ labelSelector: 'app=vm', fieldSelector: 'metadata.namespace=vms' });
    informer.start();
    await informer.waitForSync(4000);
    expect(informer.list().map((p) => p.metadata.name)).toEqual(['match']);
    await waitUntil(() => standin().standin.watchRequests().length > 0, 'a watch');
    const watch = standin().standin.watchRequests()[0];
    expect(watch.query.get('labelSelector')).toBe('app=vm');
    expect(watch.query.get('fieldSelector')).toBe('metadata.namespace=vms');
  });
});

describe('Informer watch', () => {
  test('watches from the list version with bookmarks; events update the cache and call the handlers', async () => {
    const { standin: server } = standin();
    server.upsert(pod('a', { labels: { v: '1' } }));
    const { informer, seen } = podInformer();
    informer.start();
    await informer.waitForSync(4000);
    const listVersion = informer.lastResourceVersion;
    await waitUntil(() => server.activeWatches === 1, 'the watch to open');
    const watch = server.watchRequests()[0];
    expect(watch.query.get('resourceVersion')).toBe(listVersion);
    expect(watch.query.get('allowWatchBookmarks')).toBe('true');
    expect(Number(watch.query.get('timeoutSeconds'))).toBeGreaterThan(0);

    server.upsert(pod('b'));
    await waitUntil(() => informer.get('vms', 'b') !== undefined, 'b in the cache');
    expect(seen.added).toEqual(['a', 'b']);

    server.upsert(pod('a', { labels: { v: '2' } }));
    await waitUntil(() => seen.updated.length === 1, 'the update');
    expect(seen.updated[0].old.metadata.labels).toEqual({ v: '1' });
    expect(seen.updated[0].new.metadata.labels).toEqual({ v: '2' });
    expect(informer.get('vms', 'a')?.metadata.labels).toEqual({ v: '2' });

    server.remove('v1', 'Pod', 'a', 'vms');
    await waitUntil(() => seen.deleted.length === 1, 'the delete');
    expect(seen.deleted).toEqual(['a']);
    expect(informer.get('vms', 'a')).toBeUndefined();
    expect(informer.lastResourceVersion).toBe(server.currentResourceVersion);
    // Only one list: everything after it came from the watch.
    expect(server.listRequests('pods')).toHaveLength(1);
  });

  test('a bookmark moves the resume version without calling handlers; the next watch resumes from it', async () => {
    const { standin: server } = standin();
    server.upsert(pod('a'));
    const { informer, seen } = podInformer();
    informer.start();
    await informer.waitForSync(4000);
    await waitUntil(() => server.activeWatches === 1, 'the watch to open');
    // Writes to another kind move the server's version without any pod event.
    server.upsert({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'vms' } });
    const bookmarkVersion = server.bookmark();
    await waitUntil(() => informer.lastResourceVersion === bookmarkVersion, 'the bookmark');
    expect(seen).toEqual({ added: ['a'], updated: [], deleted: [] });
    server.dropWatches();
    await waitUntil(() => server.watchRequests().length === 2, 'the re-watch');
    expect(server.watchRequests()[1].query.get('resourceVersion')).toBe(bookmarkVersion);
  });

  test('a dropped stream is re-watched from the last version, missing nothing and relisting nothing', async () => {
    const { standin: server } = standin();
    server.upsert(pod('a'));
    const { informer, seen } = podInformer();
    informer.start();
    await informer.waitForSync(4000);
    await waitUntil(() => server.activeWatches === 1, 'the watch to open');
    const before = informer.lastResourceVersion;
    server.dropWatches();
    // Written while no watch is open: it must arrive through the re-watch's replay.
    server.upsert(pod('b'));
    await waitUntil(() => informer.get('vms', 'b') !== undefined, 'b after the re-watch');
    expect(server.watchRequests()[1].query.get('resourceVersion')).toBe(before);
    expect(server.listRequests('pods')).toHaveLength(1);
    expect(seen.added).toEqual(['a', 'b']);
  });

  test('a stream the server ends cleanly (timeoutSeconds) is re-watched', async () => {
    const { standin: server } = standin();
    const { informer } = podInformer();
    informer.start();
    await informer.waitForSync(4000);
    await waitUntil(() => server.activeWatches === 1, 'the watch to open');
    server.endWatches();
    await waitUntil(() => server.watchRequests().length === 2 && server.activeWatches === 1, 'the re-watch');
    server.upsert(pod('late'));
    await waitUntil(() => informer.get('vms', 'late') !== undefined, 'an event on the new watch');
  });

  test.each(['event', 'http'] as const)(
    '410 Gone (as an %s) relists and emits the differences: deletes for vanished objects, adds for new ones',
    async (goneMode) => {
      const { standin: server } = standin();
      server.goneMode = goneMode;
      server.upsert(pod('a'));
      server.upsert(pod('b'));
      const { informer, seen } = podInformer();
      informer.start();
      await informer.waitForSync(4000);
      await waitUntil(() => server.activeWatches === 1, 'the watch to open');
      server.dropWatches();
      // While disconnected: a goes, c comes, and the server forgets the history in between.
      server.remove('v1', 'Pod', 'a', 'vms');
      server.upsert(pod('c'));
      server.compact();
      await waitUntil(() => informer.get('vms', 'c') !== undefined, 'the relist');
      expect(server.listRequests('pods')).toHaveLength(2);
      expect(informer.get('vms', 'a')).toBeUndefined();
      expect(seen.deleted).toEqual(['a']);
      expect(seen.added).toEqual(['a', 'b', 'c']);
      // b existed before and after: an update, not a second add.
      expect(seen.updated.map((u) => u.new.metadata.name)).toEqual(['b']);
      // And it watches again from the new list's version.
      await waitUntil(() => server.activeWatches === 1, 'the watch after the relist');
      expect(server.watchRequests().at(-1)?.query.get('resourceVersion')).toBe(server.currentResourceVersion);
    },
  );

  test('the periodic resync relists and emits update for every cached object', async () => {
    const { standin: server } = standin();
    server.upsert(pod('a'));
    server.upsert(pod('b'));
    const { informer, seen } = podInformer({ resyncMs: 100 });
    informer.start();
    await informer.waitForSync(4000);
    await waitUntil(() => seen.updated.length >= 2, 'a resync');
    const names = seen.updated.slice(0, 2).map((u) => u.new.metadata.name);
    expect(names.sort()).toEqual(['a', 'b']);
    // Nothing changed: a resync update carries the same version on both sides.
    for (const u of seen.updated) expect(u.old.metadata.resourceVersion).toBe(u.new.metadata.resourceVersion);
    expect(server.listRequests('pods').length).toBeGreaterThanOrEqual(2);
    expect(seen.added).toEqual(['a', 'b']);
  });

  test('a handler that throws does not stop the informer or the other handlers', async () => {
    const { standin: server } = standin();
    const { informer, seen } = podInformer();
    informer.onAdd(() => {
      throw new Error('handler bug');
    });
    informer.start();
    await informer.waitForSync(4000);
    server.upsert(pod('a'));
    server.upsert(pod('b'));
    await waitUntil(() => seen.added.length === 2, 'both adds');
    expect(informer.list()).toHaveLength(2);
  });

  test('stop() ends the watch; later changes are not seen', async () => {
    const { standin: server } = standin();
    const { informer, seen } = podInformer();
    informer.start();
    await informer.waitForSync(4000);
    await waitUntil(() => server.activeWatches === 1, 'the watch to open');
    await informer.stop();
    await waitUntil(() => server.activeWatches === 0, 'the watch to close');
    server.upsert(pod('after'));
    expect(informer.get('vms', 'after')).toBeUndefined();
    expect(seen.added).toEqual([]);
  });
});

describe('Informer indexers', () => {
  test('byIndex follows adds, updates that move an object between values, and deletes', async () => {
    const { standin: server } = standin();
    server.upsert(pod('p1', { owner: 'uid-1', labels: { tier: 'gold' } }));
    server.upsert(pod('p2', { owner: 'uid-1', labels: { tier: 'silver' } }));
    server.upsert(pod('p3', { owner: 'uid-2' }));
    const { informer } = podInformer({ indexers: { owner: byOwnerUid } });
    informer.start();
    await informer.waitForSync(4000);
    const names = (objects: KubeObject[]): string[] => objects.map((o) => o.metadata.name ?? '').sort();
    expect(names(informer.byIndex('owner', 'uid-1'))).toEqual(['p1', 'p2']);
    expect(names(informer.byIndex('owner', 'uid-2'))).toEqual(['p3']);
    expect(informer.byIndex('owner', 'uid-none')).toEqual([]);

    // An index added after sync files the objects already cached.
    informer.addIndexer('tier', byLabel('tier'));
    expect(names(informer.byIndex('tier', 'gold'))).toEqual(['p1']);

    server.upsert(pod('p2', { owner: 'uid-2', labels: { tier: 'gold' } }));
    await waitUntil(() => informer.byIndex('owner', 'uid-2').length === 2, 'p2 to move to uid-2');
    expect(names(informer.byIndex('owner', 'uid-1'))).toEqual(['p1']);
    expect(names(informer.byIndex('tier', 'gold'))).toEqual(['p1', 'p2']);
    expect(informer.byIndex('tier', 'silver')).toEqual([]);

    server.remove('v1', 'Pod', 'p1', 'vms');
    await waitUntil(() => informer.byIndex('owner', 'uid-1').length === 0, 'p1 to leave the index');
    expect(names(informer.byIndex('tier', 'gold'))).toEqual(['p2']);
    expect(() => informer.byIndex('missing', 'x')).toThrow(/no index missing/);
  });
});
