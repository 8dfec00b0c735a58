import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeApiError, KubeClient, type WatchEvent } from '../../../operator/kube/client';
import type { KubeObject } from '../../../operator/kube/object';
import { resourceOf, verbOf } from '../../../operator/kube/request-count';
import { useKubeStandin, waitUntil } from './standin-fixture';

const standin = useKubeStandin();

const vm = (name: string, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'kubevisor.io/v1alpha1',
  kind: 'VirtualMachine',
  metadata: { name, namespace: 'vms' },
  spec: { runPolicy: 'Always' },
  ...extra,
});

/** The error a promise rejects with; fails the test if it resolves or rejects with something else. */
async function apiError(call: Promise<unknown>): Promise<KubeApiError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(KubeApiError);
    return error as KubeApiError;
  }
  throw new Error('expected a KubeApiError');
}

/** A raw loopback server for wire-level cases the stand-in does not produce; closed after the test. */
async function rawServer(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  standin().cleanup(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('KubeClient writes', () => {
  test('apply is a server-side-apply PATCH: apply content type, field manager kubevisor, force and dryRun as asked', async () => {
    const { client, standin: server } = standin();
    const applied = await client.apply(vm('a'), { force: true });
    expect(applied.metadata.resourceVersion).toBeTruthy();
    await client.apply(vm('a'), { dryRun: true, fieldManager: 'other', fieldValidation: 'Strict' });
    const patches = server.requests.filter((r) => r.method === 'PATCH');
    expect(patches[0].path).toBe('/apis/kubevisor.io/v1alpha1/namespaces/vms/virtualmachines/a');
    expect(patches[0].headers['content-type']).toBe('application/apply-patch+yaml');
    expect(Object.fromEntries(patches[0].query)).toEqual({ fieldManager: 'kubevisor', force: 'true' });
    expect(JSON.parse(patches[0].body)).toEqual(vm('a'));
    expect(Object.fromEntries(patches[1].query)).toEqual({
      fieldManager: 'other',
      dryRun: 'All',
      fieldValidation: 'Strict',
    });
  });

  test('applyStatus and patchStatus write to the /status subresource', async () => {
    const { client, standin: server } = standin();
    await client.create(vm('a'));
    await client.applyStatus({ ...vm('a'), status: { phase: 'Pending' } }, { force: true });
    const patched = await client.patchStatus(vm('a'), { status: { phase: 'Running' } });
    expect(patched.status).toEqual({ phase: 'Running' });
    const writes = server.requests.filter((r) => r.method === 'PATCH');
    expect(writes.map((r) => r.path)).toEqual([
      '/apis/kubevisor.io/v1alpha1/namespaces/vms/virtualmachines/a/status',
      '/apis/kubevisor.io/v1alpha1/namespaces/vms/virtualmachines/a/status',
    ]);
    expect(writes[0].headers['content-type']).toBe('application/apply-patch+yaml');
    expect(writes[0].query.get('force')).toBe('true');
    expect(writes[1].headers['content-type']).toBe('application/merge-patch+json');
  });

  test('patch sends the content type of each patch type', async () => {
    const { client, standin: server } = standin();
    await client.create(vm('a'));
    await client.patch(vm('a'), 'merge', { metadata: { labels: { x: '1' } } });
    await client.patch(vm('a'), 'json', [{ op: 'add', path: '/metadata/labels/y', value: '2' }]);
    const result = await client.patch(vm('a'), 'strategic', { metadata: { labels: { z: '3' } } });
    expect(result.metadata.labels).toEqual({ x: '1', y: '2', z: '3' });
    expect(server.requests.filter((r) => r.method === 'PATCH').map((r) => r.headers['content-type'])).toEqual([
      'application/merge-patch+json',
      'application/json-patch+json',
      'application/strategic-merge-patch+json',
    ]);
  });

  test('update is optimistic: a stale resourceVersion gets 409 Conflict', async () => {
    const { client } = standin();
    const created = await client.create(vm('a'));
    const updated = await client.update({ ...created, spec: { runPolicy: 'Halted' } });
    expect(updated.spec).toEqual({ runPolicy: 'Halted' });
    const error = await apiError(client.update({ ...created, spec: { runPolicy: 'Once' } }));
    expect(error).toMatchObject({ code: 409, reason: 'Conflict', method: 'PUT' });
  });
});

describe('KubeClient errors', () => {
  test('a 4xx answer becomes a KubeApiError with code, reason, message, causes, method, path and body', async () => {
    const { client } = standin();
    await client.create(vm('a'));
    const exists = await apiError(client.create(vm('a')));
    expect(exists).toMatchObject({
      code: 409,
      reason: 'AlreadyExists',
      serverMessage: 'virtualmachines "a" already exists',
      method: 'POST',
      path: '/apis/kubevisor.io/v1alpha1/namespaces/vms/virtualmachines?fieldManager=kubevisor',
    });
    expect(exists.body).toMatchObject({ kind: 'Status', code: 409 });
    const invalid = await apiError(
      client.patch(vm('a'), 'json', [{ op: 'test', path: '/spec/runPolicy', value: 'Never' }]),
    );
    expect(invalid.code).toBe(422);
    expect(invalid.causes).toEqual([
      { reason: 'UnexpectedServerResponse', message: 'testing value /spec/runPolicy failed: test failed' },
    ]);
    expect(invalid.message).toContain('PATCH /apis/kubevisor.io/v1alpha1/namespaces/vms/virtualmachines/a');
  });

  test('a non-JSON error body is kept as text', async () => {
    const url = await rawServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>bad gateway</html>\n');
    });
    const client = new KubeClient({ server: url });
    standin().cleanup(() => client.close());
    const error = await apiError(client.request('GET', '/api/v1/namespaces/x/pods/y'));
    expect(error).toMatchObject({
      code: 502,
      reason: '',
      serverMessage: '<html>bad gateway</html>',
      body: '<html>bad gateway</html>\n',
    });
  });

  test('tryGet gives undefined for 404, delete ignores 404 when asked and sends DeleteOptions', async () => {
    const { client, standin: server } = standin();
    expect(await client.tryGet('kubevisor.io/v1alpha1', 'VirtualMachine', 'none', 'vms')).toBeUndefined();
    await expect(client.delete('kubevisor.io/v1alpha1', 'VirtualMachine', 'none', 'vms')).rejects.toMatchObject({
      code: 404,
    });
    await client.delete('kubevisor.io/v1alpha1', 'VirtualMachine', 'none', 'vms', { ignoreNotFound: true });
    await client.create(vm('a'));
    await client.delete('kubevisor.io/v1alpha1', 'VirtualMachine', 'a', 'vms', {
      propagationPolicy: 'Foreground',
      gracePeriodSeconds: 0,
    });
    const last = server.requests.at(-1);
    expect(JSON.parse(last?.body ?? '')).toEqual({
      apiVersion: 'meta.k8s.io/v1',
      kind: 'DeleteOptions',
      propagationPolicy: 'Foreground',
      gracePeriodSeconds: 0,
    });
    expect(await client.tryGet('kubevisor.io/v1alpha1', 'VirtualMachine', 'a', 'vms')).toBeUndefined();
  });

  test('a request with no answer fails after its timeout', async () => {
    const url = await rawServer(() => undefined); // never answers
    const client = new KubeClient({ server: url }, { timeoutMs: 100 });
    standin().cleanup(() => client.close());
    await expect(client.request('GET', '/api/v1/pods')).rejects.toThrow('GET /api/v1/pods: no answer in 100 ms');
  });
});

describe('KubeClient guarded finalizers', () => {
  test('removeFinalizer sends test(resourceVersion) + test(entry) + remove(index) as a JSON patch', async () => {
    const { client, standin: server } = standin();
    const created = await client.create<KubeObject>({
      ...vm('a'),
      metadata: { name: 'a', namespace: 'vms', finalizers: ['x.io/keep', 'kubevisor.io/finalizer'] },
    });
    const after = await client.removeFinalizer(created, 'kubevisor.io/finalizer');
    expect(after.metadata.finalizers).toEqual(['x.io/keep']);
    const patch = server.requests.filter((r) => r.method === 'PATCH')[0];
    expect(patch.headers['content-type']).toBe('application/json-patch+json');
    expect(JSON.parse(patch.body)).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: created.metadata.resourceVersion },
      { op: 'test', path: '/metadata/finalizers/1', value: 'kubevisor.io/finalizer' },
      { op: 'remove', path: '/metadata/finalizers/1' },
    ]);
  });

  test('on a stale object the guard fails and surfaces as 409 Conflict, leaving the finalizers alone', async () => {
    const { client, standin: server } = standin();
    const created = await client.create<KubeObject>({
      ...vm('a'),
      metadata: { name: 'a', namespace: 'vms', finalizers: ['kubevisor.io/finalizer'] },
    });
    // Someone else adds a finalizer in front: index 0 now means something else.
    await client.patch(created, 'merge', { metadata: { finalizers: ['x.io/other', 'kubevisor.io/finalizer'] } });
    const error = await apiError(client.removeFinalizer(created, 'kubevisor.io/finalizer'));
    expect(error).toMatchObject({ code: 409, reason: 'Conflict' });
    expect(server.stored('kubevisor.io/v1alpha1', 'VirtualMachine', 'a', 'vms')?.metadata.finalizers).toEqual([
      'x.io/other',
      'kubevisor.io/finalizer',
    ]);
  });

  test('removing a finalizer the object does not carry sends nothing; addFinalizer appends guarded', async () => {
    const { client, standin: server } = standin();
    const created = await client.create(vm('a'));
    const before = server.requests.length;
    expect(await client.removeFinalizer(created, 'kubevisor.io/finalizer')).toBe(created);
    expect(server.requests.length).toBe(before);
    const withOne = await client.addFinalizer(created, 'kubevisor.io/finalizer');
    const withTwo = await client.addFinalizer(withOne, 'x.io/second');
    expect(withTwo.metadata.finalizers).toEqual(['kubevisor.io/finalizer', 'x.io/second']);
    const bodies = server.requests.slice(before).map((r) => JSON.parse(r.body) as unknown[]);
    expect(bodies[0][1]).toEqual({ op: 'add', path: '/metadata/finalizers', value: ['kubevisor.io/finalizer'] });
    expect(bodies[1][1]).toEqual({ op: 'add', path: '/metadata/finalizers/-', value: 'x.io/second' });
    await expect(
      client.removeFinalizer({ ...vm('b'), metadata: { name: 'b', finalizers: ['f'] } }, 'f'),
    ).rejects.toThrow(/no resourceVersion/);
  });
});

describe('KubeClient events', () => {
  test('an identical event within the window bumps count on the first one instead of creating another', async () => {
    const { client, standin: server } = standin();
    const subject = await client.create(vm('a'));
    const spec = { type: 'Normal' as const, reason: 'PodCreated', message: 'created pod a-vm' };
    const first = await client.createEvent(subject, spec);
    await client.createEvent(subject, spec);
    const third = await client.createEvent(subject, spec);
    expect(third.metadata.name).toBe(first.metadata.name);
    expect(third).toMatchObject({ count: 3 });
    const events = server.requests.filter((r) => r.path.startsWith('/api/v1/namespaces/vms/events'));
    expect(events.map((r) => r.method)).toEqual(['POST', 'PATCH', 'PATCH']);
    expect(events[1].headers['content-type']).toBe('application/merge-patch+json');
    expect(JSON.parse(events[1].body)).toMatchObject({ count: 2 });
    expect(first).toMatchObject({
      type: 'Normal',
      reason: 'PodCreated',
      message: 'created pod a-vm',
      reportingComponent: 'kubevisor',
      source: { component: 'kubevisor' },
      count: 1,
      involvedObject: {
        apiVersion: 'kubevisor.io/v1alpha1',
        kind: 'VirtualMachine',
        name: 'a',
        namespace: 'vms',
        uid: subject.metadata.uid,
      },
    });
    expect(first.firstTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  test('identical events raised concurrently still make one event', async () => {
    const { client, standin: server } = standin();
    const subject = await client.create(vm('a'));
    const spec = { type: 'Warning' as const, reason: 'BootFailed', message: 'no kernel' };
    await Promise.all([
      client.createEvent(subject, spec),
      client.createEvent(subject, spec),
      client.createEvent(subject, spec),
    ]);
    const posts = server.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/events'));
    expect(posts).toHaveLength(1);
  });

  test('a different message, or the same one after the window, makes a new event; an expired event is re-created', async () => {
    const { standin: server, clientWithToken } = standin();
    const client = clientWithToken('t', { eventDedupWindowMs: 0 });
    const subject = await client.create(vm('a'));
    await client.createEvent(subject, { type: 'Normal', reason: 'R', message: 'one' });
    await client.createEvent(subject, { type: 'Normal', reason: 'R', message: 'one' });
    const dedup = clientWithToken('u');
    const e1 = await dedup.createEvent(subject, { type: 'Normal', reason: 'R', message: 'two' });
    await dedup.createEvent(subject, { type: 'Normal', reason: 'R', message: 'three' });
    server.remove('v1', 'Event', e1.metadata.name ?? '', 'vms');
    await dedup.createEvent(subject, { type: 'Normal', reason: 'R', message: 'two' });
    const methods = server.requests.filter((r) => r.path.includes('/events')).map((r) => r.method);
    expect(methods).toEqual(['POST', 'POST', 'POST', 'POST', 'PATCH', 'POST']);
  });

  test('an event about a cluster-scoped object goes to the default namespace', async () => {
    const { client } = standin();
    const ns = await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'vms' } });
    const event = await client.createEvent(ns, { type: 'Normal', reason: 'Seen', message: 'hello' });
    expect(event.metadata.namespace).toBe('default');
    expect((event.involvedObject as Record<string, unknown>).namespace).toBeUndefined();
  });
});

describe('KubeClient watch', () => {
  test('delivers events in order and waits for a slow handler before reading on (never two at once)', async () => {
    const { client, standin: server } = standin();
    const abort = new AbortController();
    const seen: string[] = [];
    let inHandler = 0;
    let maxInHandler = 0;
    const done = client.watch<KubeObject>(
      '/api/v1/namespaces/vms/pods',
      { allowWatchBookmarks: true },
      async (event: WatchEvent<KubeObject>) => {
        inHandler++;
        maxInHandler = Math.max(maxInHandler, inHandler);
        await new Promise((r) => setTimeout(r, 5));
        seen.push(`${event.type}:${event.object.metadata.name ?? ''}`);
        inHandler--;
      },
      abort.signal,
    );
    await waitUntil(() => server.activeWatches === 1, 'the watch');
    for (let i = 0; i < 10; i++)
      server.upsert({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `p${i}`, namespace: 'vms' } });
    server.remove('v1', 'Pod', 'p0', 'vms');
    await waitUntil(() => seen.length === 11, 'all events');
    abort.abort();
    await expect(done).resolves.toBeUndefined();
    expect(seen).toEqual([...Array.from({ length: 10 }, (_, i) => `ADDED:p${i}`), 'DELETED:p0']);
    expect(maxInHandler).toBe(1);
  });

  test('parses events split across chunks, even inside a multi-byte character', async () => {
    const line = JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'héllo-€' } } }) + '\n';
    const bytes = Buffer.from(line + line);
    const euro = bytes.indexOf(Buffer.from('€'));
    const url = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(bytes.subarray(0, euro + 1)); // ends inside the 3-byte €
      setTimeout(() => {
        res.write(bytes.subarray(euro + 1, bytes.length - 5));
        setTimeout(() => res.end(bytes.subarray(bytes.length - 5)), 10);
      }, 10);
    });
    const client = new KubeClient({ server: url });
    standin().cleanup(() => client.close());
    const names: string[] = [];
    await client.watch<KubeObject>('/api/v1/pods', {}, (e) => void names.push(e.object.metadata.name ?? ''));
    expect(names).toEqual(['héllo-€', 'héllo-€']);
  });

  test('an ERROR event rejects with its Status as a KubeApiError (410 Expired)', async () => {
    const { client, standin: server } = standin();
    server.upsert({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'vms' } });
    const old = server.currentResourceVersion;
    server.upsert({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'q', namespace: 'vms' } });
    server.compact();
    const error = await apiError(client.watch('/api/v1/pods', { resourceVersion: old }, () => undefined));
    expect(error).toMatchObject({ code: 410, reason: 'Expired' });
    expect(error.serverMessage).toContain('too old resource version');
  });

  test('a connection that breaks mid-stream rejects', async () => {
    const { client, standin: server } = standin();
    const done = client.watch('/api/v1/pods', {}, () => undefined);
    await waitUntil(() => server.activeWatches === 1, 'the watch');
    server.dropWatches();
    await expect(done).rejects.toThrow();
  });
});

describe('KubeClient discovery, lists and request counting', () => {
  test('createCrdsAndWaitEstablished waits for Established and discovery; the new kind is usable at once', async () => {
    const { client, standin: server } = standin();
    server.crdEstablishDelayMs = 150;
    const crd: KubeObject = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.io' },
      spec: {
        group: 'example.io',
        scope: 'Namespaced',
        names: { kind: 'Widget', plural: 'widgets' },
        versions: [{ name: 'v1', served: true, storage: true }],
      },
    };
    await client.createCrdsAndWaitEstablished([crd], { timeoutMs: 5000 });
    const stored = server.stored('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'widgets.example.io');
    expect(stored?.status).toMatchObject({ conditions: [{ type: 'Established', status: 'True' }] });
    const widget = await client.create<KubeObject>({
      apiVersion: 'example.io/v1',
      kind: 'Widget',
      metadata: { name: 'w', namespace: 'ns' },
    });
    expect(widget.metadata.resourceVersion).toBeTruthy();
    // Again with the same CRD: harmless.
    await client.createCrdsAndWaitEstablished([crd], { timeoutMs: 5000 });
  });

  test('resolves plural and scope by discovery, lists across pages, fills apiVersion/kind', async () => {
    const { client, standin: server } = standin();
    for (const name of ['a', 'b', 'c']) await client.create(vm(name));
    expect(await client.resource('kubevisor.io/v1alpha1', 'VirtualMachine')).toEqual({
      plural: 'virtualmachines',
      namespaced: true,
    });
    expect(await client.collectionPath('kubevisor.io/v1alpha1', 'VirtualMachine')).toBe(
      '/apis/kubevisor.io/v1alpha1/virtualmachines',
    );
    expect(await client.collectionPath('v1', 'Namespace', 'ignored')).toBe('/api/v1/namespaces');
    const items = await client.list('kubevisor.io/v1alpha1', 'VirtualMachine', { namespace: 'vms', limit: 2 });
    expect(items.map((i) => [i.kind, i.metadata.name])).toEqual([
      ['VirtualMachine', 'a'],
      ['VirtualMachine', 'b'],
      ['VirtualMachine', 'c'],
    ]);
    expect(server.listRequests('virtualmachines')).toHaveLength(2);
    await expect(client.resource('kubevisor.io/v1alpha1', 'Nope')).rejects.toThrow(/serves no kind Nope/);
    await expect(client.resource('other.io/v1', 'Thing')).rejects.toThrow(/serves no kind Thing/);
  });

  test('counts every request by Kubernetes verb', async () => {
    const { client, standin: server } = standin();
    const created = await client.create(vm('a')); // discovery get + create
    await client.get('kubevisor.io/v1alpha1', 'VirtualMachine', 'a', 'vms');
    await client.list('kubevisor.io/v1alpha1', 'VirtualMachine');
    await client.update(created);
    await client.apply(vm('a'));
    await client.patchStatus(vm('a'), { status: {} });
    await client.delete('kubevisor.io/v1alpha1', 'VirtualMachine', 'a', 'vms');
    const abort = new AbortController();
    const watching = client.watch('/api/v1/pods', {}, () => undefined, abort.signal);
    await waitUntil(() => server.activeWatches === 1, 'the watch');
    abort.abort();
    await watching;
    // One discovery request is cached for the rest.
    expect(client.requestCount).toEqual({
      get: 2,
      list: 1,
      watch: 1,
      create: 1,
      update: 1,
      patch: 2,
      delete: 1,
      deletecollection: 0,
      total: 9,
    });
    expect(server.requests).toHaveLength(9);
    expect(client.requestCountByResource).toEqual(
      expect.arrayContaining([
        { verb: 'create', resource: 'virtualmachines', count: 1 },
        { verb: 'patch', resource: 'virtualmachines/status', count: 1 },
        { verb: 'watch', resource: 'pods', count: 1 },
      ]),
    );
  });

  test('resourceOf names the resource and subresource of a path, as RBAC does', () => {
    expect(resourceOf('/api/v1/pods')).toBe('pods');
    expect(resourceOf('/api/v1/namespaces/x/pods')).toBe('pods');
    expect(resourceOf('/api/v1/namespaces/x/pods/p')).toBe('pods');
    expect(resourceOf('/api/v1/namespaces/x/pods/p/binding')).toBe('pods/binding');
    expect(resourceOf('/api/v1/watch/namespaces/x/pods')).toBe('pods');
    expect(resourceOf('/apis/kubevisor.io/v1alpha1/namespaces/x/virtualmachines/v/status')).toBe(
      'virtualmachines/status',
    );
    expect(resourceOf('/api/v1/namespaces')).toBe('namespaces');
    expect(resourceOf('/api/v1/namespaces/x')).toBe('namespaces');
    expect(resourceOf('/api/v1/namespaces/x/status')).toBe('namespaces/status');
    expect(resourceOf('/api/v1/nodes/n')).toBe('nodes');
    expect(resourceOf('/apis/kubevisor.io/v1alpha1')).toBe('');
    expect(resourceOf('/version')).toBe('');
  });

  test('verbOf follows the API server: collection vs object, watch, namespaces and subresources', () => {
    expect(verbOf('GET', '/api/v1/pods')).toBe('list');
    expect(verbOf('GET', '/api/v1/namespaces/x/pods')).toBe('list');
    expect(verbOf('GET', '/api/v1/namespaces/x/pods', 'true')).toBe('watch');
    expect(verbOf('GET', '/api/v1/watch/namespaces/x/pods')).toBe('watch');
    expect(verbOf('GET', '/api/v1/namespaces/x/pods/p')).toBe('get');
    expect(verbOf('GET', '/api/v1/namespaces/x/pods/p/status')).toBe('get');
    expect(verbOf('GET', '/api/v1/namespaces')).toBe('list');
    expect(verbOf('GET', '/api/v1/namespaces/x')).toBe('get');
    expect(verbOf('PUT', '/api/v1/namespaces/x/finalize')).toBe('update');
    expect(verbOf('GET', '/apis/kubevisor.io/v1alpha1')).toBe('get');
    expect(verbOf('DELETE', '/apis/g/v/namespaces/x/things')).toBe('deletecollection');
    expect(verbOf('DELETE', '/apis/g/v/namespaces/x/things/t')).toBe('delete');
    expect(verbOf('POST', '/api/v1/namespaces/x/pods')).toBe('create');
    expect(verbOf('PATCH', '/api/v1/namespaces/x/pods/p')).toBe('patch');
  });
});

describe('KubeClient authentication', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kv-token-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('re-reads a token file after the refresh period, and at once after a 401', async () => {
    const { standin: server } = standin();
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'first\n');
    const fresh = new KubeClient({ server: server.url, tokenFile }, { tokenRefreshMs: 0 });
    const cached = new KubeClient({ server: server.url, tokenFile }, { tokenRefreshMs: 3_600_000 });
    standin().cleanup(() => fresh.close());
    standin().cleanup(() => cached.close());
    await fresh.request('GET', '/api/v1');
    await cached.request('GET', '/api/v1');
    writeFileSync(tokenFile, 'second\n');
    await fresh.request('GET', '/api/v1');
    await cached.request('GET', '/api/v1');
    server.failNext({}, 401, 'Unauthorized');
    await expect(cached.request('GET', '/api/v1')).rejects.toMatchObject({ code: 401 });
    await cached.request('GET', '/api/v1');
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([
      'Bearer first',
      'Bearer first',
      'Bearer second',
      'Bearer first', // within the refresh period: still the cached token
      'Bearer first',
      'Bearer second', // after the 401: re-read
    ]);
  });

  test('impersonation sends impersonate headers; withToken drops them and uses the token', async () => {
    const { client, standin: server } = standin();
    const as = client.impersonate({ user: 'system:serviceaccount:x:y', groups: ['g1', 'g2'] });
    standin().cleanup(() => as.close());
    await as.request('GET', '/api/v1');
    const plain = as.withToken('tok');
    standin().cleanup(() => plain.close());
    await plain.request('GET', '/api/v1');
    const [first, second] = server.requests;
    expect(first.headers['impersonate-user']).toBe('system:serviceaccount:x:y');
    expect(first.headers['impersonate-group']).toBe('g1, g2');
    expect(second.headers['impersonate-user']).toBeUndefined();
    expect(second.headers.authorization).toBe('Bearer tok');
  });
});
