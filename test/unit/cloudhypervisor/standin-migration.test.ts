// Snapshot/restore and live migration between two CH stand-ins, driven only through the typed client.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { CloudHypervisorClient } from '../../../operator/cloudhypervisor/client';
import type { VmConfig } from '../../../operator/cloudhypervisor/types';
import {
  startCloudHypervisorStandin,
  type CloudHypervisorStandin,
  type CloudHypervisorStandinOptions,
} from '../../standins/cloud-hypervisor-standin';
import { startMigrationRelay, type MigrationRelay } from './migration-relay';
import { chError, sampleVmConfig, useStandin, waitUntil, type StandinFixture } from './standin-fixture';

const GiB = 1024 * 1024 * 1024;

describe('CH stand-in: snapshot and restore', () => {
  const fixture = useStandin();

  it('snapshots a paused VM into a pod directory that another VMM restores from (Paused, or Running with resume)', async () => {
    const { client, dir, podRoot, resolvePath } = fixture();
    mkdirSync(join(podRoot, 'snapshots'));
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    await client.vm.pause();
    // The URL names a directory inside the pod; the stand-in writes where resolvePath puts it.
    await client.vm.snapshot({ destination_url: 'file:///snapshots' });
    expect(existsSync(join(podRoot, 'snapshots', 'config.json'))).toBe(true);
    const source = (await client.vm.info()).config;

    for (const resume of [false, true]) {
      const other = await startCloudHypervisorStandin({ socketPath: join(dir, `restore-${resume}.sock`), resolvePath });
      try {
        const target = new CloudHypervisorClient({ socketPath: other.socketPath });
        await target.vm.restore({ source_url: 'file:///snapshots', resume });
        const info = await target.vm.info();
        expect(info.state).toBe(resume ? 'Running' : 'Paused');
        expect(info.config).toEqual(source);
      } finally {
        await other.stop();
      }
    }
  });

  it('refuses to restore from a directory without a snapshot', async () => {
    const { client } = fixture();
    const error = await chError(client.vm.restore({ source_url: 'file:///' }));
    expect(error.statusCode).toBe(500);
    expect(error.chain.slice(0, 3)).toEqual(['Error from API', 'The VM could not be restored', 'Cannot restore VM']);
  });

  it('fails a restore whose disk is missing on this host with 500 and leaves NoVM', async () => {
    const { client, dir, podRoot, resolvePath } = fixture();
    mkdirSync(join(podRoot, 'snapshots'));
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    await client.vm.pause();
    await client.vm.snapshot({ destination_url: 'file:///snapshots' });
    rmSync(resolvePath('/var/lib/kubevisor/disks/root.raw'));

    const other = await startCloudHypervisorStandin({ socketPath: join(dir, 'restore.sock'), resolvePath });
    try {
      const target = new CloudHypervisorClient({ socketPath: other.socketPath });
      const error = await chError(target.vm.restore({ source_url: 'file:///snapshots' }));
      expect([error.statusCode, error.chain]).toEqual([
        500,
        [
          'Error from API',
          'The VM could not be restored',
          'Error from device manager',
          'Cannot open disk path',
          'No such file or directory (os error 2)',
        ],
      ]);
      expect(other.state().vm).toBe('NoVM');
    } finally {
      await other.stop();
    }
  });
});

/** The destination side of migration tests: a second stand-in, relays, and their teardown after each test. */
function useMigration(fixture: () => StandinFixture) {
  let destination: CloudHypervisorStandin | undefined;
  const cleanups: (() => Promise<void> | void)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await destination?.stop();
    destination = undefined;
  });

  return {
    destination: () => destination as CloudHypervisorStandin,
    cleanups,
    /** The destination VMM, on the same "host" (the same pod paths) as the source unless told otherwise. */
    async startDestination(options: Partial<CloudHypervisorStandinOptions> = {}): Promise<CloudHypervisorClient> {
      const { dir, resolvePath } = fixture();
      destination = await startCloudHypervisorStandin({ socketPath: join(dir, 'dest.sock'), resolvePath, ...options });
      return new CloudHypervisorClient({ socketPath: destination.socketPath });
    },
    /**
     * Starts receive-migration on a pod socket and waits for its listener, as upstream's tests do (§9); `done` is
     * the pending call (wrapped: an async function would wait for a returned promise).
     */
    async receive(target: CloudHypervisorClient, podSocket: string): Promise<{ done: Promise<void> }> {
      const { resolvePath } = fixture();
      mkdirSync(join(resolvePath(podSocket), '..'), { recursive: true });
      // receive-migration answers only when the migration is over (reference §3): start it, then send.
      const received = target.vm.receiveMigration({ receiver_url: `unix:${podSocket}` }, { timeoutMs: 30_000 });
      received.catch(() => undefined);
      await waitUntil(() => existsSync(resolvePath(podSocket)), 'the migration listener');
      return { done: received };
    },
    /** A relay from the pod socket `listen` to the pod socket `target` (unix → TLS → unix). */
    async relay(listen: string, target: string): Promise<MigrationRelay> {
      const { resolvePath } = fixture();
      const started = await startMigrationRelay(resolvePath(listen), resolvePath(target));
      cleanups.push(() => started.kill());
      return started;
    },
  };
}

describe('CH stand-in: live migration between two stand-ins', () => {
  const fixture = useStandin();
  const { startDestination, receive, relay, cleanups, destination } = useMigration(fixture);

  it.each(['Running', 'Paused'] as const)(
    'moves a %s VM: the destination ends in that state and the source VMM exits with 0',
    async (state) => {
      const { client: source, standin } = fixture();
      const target = await startDestination();
      await source.vm.create(sampleVmConfig());
      await source.vm.boot();
      if (state === 'Paused') await source.vm.pause();
      const config = (await source.vm.info()).config;

      const { done: received } = await receive(target, '/run/migration.sock');
      await source.vm.sendMigration({ destination_url: 'unix:/run/migration.sock' });

      await expect(received).resolves.toBeUndefined();
      const info = await target.vm.info();
      expect(info.state).toBe(state);
      expect(info.config).toEqual(config);
      await expect(standin.exited).resolves.toEqual({ reason: 'migrated', code: 0 });
      expect(standin.events.map((e) => e.event)).toEqual(expect.arrayContaining(['migration-finished']));
    },
  );

  it('moves memory-sized bytes through a unix → TLS → unix relay, which it does not notice', async () => {
    const { client: source, standin } = fixture();
    const target = await startDestination();
    await source.vm.create(sampleVmConfig());
    await source.vm.boot();
    const { done: received } = await receive(target, '/run/migration.sock');
    const hop = await relay('/run/relay.sock', '/run/migration.sock');

    await source.vm.sendMigration({ destination_url: 'unix:/run/relay.sock' });
    await received;
    expect((await target.vm.info()).state).toBe('Running');
    await expect(standin.exited).resolves.toEqual({ reason: 'migrated', code: 0 });
    // A 1 GiB guest streams 1 GiB / 256 = 4 MiB of "memory" plus the config.
    expect(hop.forwardedBytes).toBeGreaterThan(4 * 1024 * 1024);
  });

  it('streams no memory for a local migration, which hands over memory FDs instead (§9)', async () => {
    const { client: source, standin } = fixture();
    const target = await startDestination();
    const big: VmConfig = { ...sampleVmConfig(), memory: { size: 64 * GiB, shared: true } };
    await source.vm.create(big);
    await source.vm.boot();
    const { done: received } = await receive(target, '/run/migration.sock');
    const hop = await relay('/run/relay.sock', '/run/migration.sock');

    await source.vm.sendMigration({ destination_url: 'unix:/run/relay.sock', local: true });
    await received;
    await expect(standin.exited).resolves.toEqual({ reason: 'migrated', code: 0 });
    expect(hop.forwardedBytes).toBeLessThan(64 * 1024);
  });

  it('fails when the destination cannot open the VM`s disk: both sides report it, the source keeps the VM', async () => {
    const { client: source, standin, dir } = fixture();
    // The destination "host" has its own, empty pod file system.
    const elsewhere = join(dir, 'other-node');
    const target = await startDestination({ resolvePath: (path) => join(elsewhere, path) });
    await source.vm.create(sampleVmConfig());
    await source.vm.boot();
    mkdirSync(join(elsewhere, 'run'), { recursive: true });
    const received = target.vm.receiveMigration({ receiver_url: 'unix:/run/migration.sock' }, { timeoutMs: 30_000 });
    received.catch(() => undefined);
    await waitUntil(() => existsSync(join(elsewhere, 'run/migration.sock')), 'the migration listener');
    const hop = await startMigrationRelay(join(dir, 'pod/relay.sock'), join(elsewhere, 'run/migration.sock'));
    cleanups.push(() => hop.kill());

    await source.vm.sendMigration({ destination_url: 'unix:/relay.sock' });
    const refused = await chError(received);
    expect(refused.chain.at(-1)).toBe(
      'Migration was aborted: Error from device manager: Cannot open disk path: No such file or directory (os error 2)',
    );
    expect(destination().state().vm).toBe('NoVM');
    await waitUntil(() => !standin.state().migrating, 'the source to give up');
    const failed = standin.events.find((e) => e.event === 'migration-failed');
    expect(failed?.properties?.error).toContain('destination refused the migration: Error from device manager');
    expect(standin.state().vm).toBe('Running');
  });

  it('refuses a stream that is not a stand-in migration with 500', async () => {
    const { resolvePath } = fixture();
    const target = await startDestination();
    const { done: received } = await receive(target, '/run/migration.sock');
    const garbage = createConnection(resolvePath('/run/migration.sock'));
    garbage.on('error', () => undefined);
    garbage.end('GET / HTTP/1.1\r\n\r\n');
    const refused = await chError(received);
    expect(refused.statusCode).toBe(500);
    expect(refused.chain.at(-1)).toBe('Migration was aborted: not a stand-in migration stream');
    expect(destination().state().vm).toBe('NoVM');
  });

  it('serves no other call while receive-migration is pending (one control thread)', async () => {
    const { client: source } = fixture();
    const target = await startDestination();
    await source.vm.create(sampleVmConfig());
    await source.vm.boot();
    const { done: received } = await receive(target, '/run/migration.sock');

    const blocked = await chError(target.vmm.ping({ timeoutMs: 200 }));
    expect(blocked.kind).toBe('timeout');

    await source.vm.sendMigration({ destination_url: 'unix:/run/migration.sock' });
    await received;
    expect((await target.vmm.ping()).version).toBe('53.0.0');
  });

  it('while the migration is under way the VM refuses changes and vm.info shows the VM as it was', async () => {
    const { client: source, standin, resolvePath } = fixture();
    await source.vm.create(sampleVmConfig());
    await source.vm.boot();
    // A destination that accepts the connection and never acknowledges keeps the migration in flight.
    const path = resolvePath('/blackhole.sock');
    const held = new Set<Socket>();
    const blackhole = createServer((s) => held.add(s));
    await new Promise<void>((resolve) => blackhole.listen(path, resolve));
    cleanups.push(() => void blackhole.close());

    await source.vm.sendMigration({ destination_url: 'unix:/blackhole.sock' });
    await waitUntil(() => held.size === 1, 'the sender to connect');
    const refused = await chError(source.vm.pause());
    expect([refused.statusCode, refused.chain.at(-1)]).toEqual([500, 'VM is currently migrating']);
    expect((await source.vm.info()).state).toBe('Running');
    expect(standin.state().migrating).toBe(true);
    // The guest cannot act either while the migration owns the VM.
    expect(standin.guest.powerOff()).toEqual({ ok: false, why: 'the VM is migrating' });

    // The destination goes away: the migration fails and the source keeps its VM (reference §9).
    for (const s of held) s.destroy();
    await waitUntil(() => !standin.state().migrating, 'the migration to fail');
    expect(standin.events.map((e) => e.event)).toContain('migration-failed');
    await source.vm.pause();
    expect((await source.vm.info()).state).toBe('Paused');
  });

  it('refuses to send without a VM, to an unknown URL scheme, or locally without shared memory', async () => {
    const { client } = fixture();
    const url = 'unix:/m.sock';
    expect((await chError(client.vm.sendMigration({ destination_url: url }))).chain.at(-1)).toBe('VM is not running');
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    const scheme = await chError(client.vm.sendMigration({ destination_url: 'http://x' }));
    expect(scheme.chain.at(-1)).toBe('Invalid send migration configuration');
    const local = await chError(client.vm.sendMigration({ destination_url: url, local: true }));
    expect(local.chain.at(-1)).toBe('Local migration requires shared memory or hugepages enabled');
  });
});

describe('CH stand-in: migration pace', () => {
  // The default pace, 1 GiB/s: a 1 GiB guest takes about a second, so its migration can be watched part-way.
  const fixture = useStandin({ migrationBytesPerSecond: undefined });
  const { startDestination, receive, relay, destination } = useMigration(fixture);

  it('spreads the memory over the transfer: half-way through, the rest is still to come', async () => {
    const { client: source, standin } = fixture();
    const target = await startDestination();
    await source.vm.create(sampleVmConfig());
    await source.vm.boot();
    const { done: received } = await receive(target, '/run/migration.sock');
    const hop = await relay('/run/relay.sock', '/run/migration.sock');

    await source.vm.sendMigration({ destination_url: 'unix:/run/relay.sock' });
    await waitUntil(() => hop.forwardedBytes > 2 * 1024 * 1024, 'half the memory', 1000);
    expect(hop.forwardedBytes).toBeLessThan(4 * 1024 * 1024);
    expect(standin.state().migrating).toBe(true);
    await received;
    await expect(standin.exited).resolves.toEqual({ reason: 'migrated', code: 0 });
  });

  it.each(['Running', 'Paused'] as const)(
    'a relay killed mid-way fails the migration: the %s source keeps its VM, the destination answers 500 and stays empty',
    async (state) => {
      const { client: source, standin } = fixture();
      const target = await startDestination();
      await source.vm.create(sampleVmConfig());
      await source.vm.boot();
      if (state === 'Paused') await source.vm.pause();
      const { done: received } = await receive(target, '/run/migration.sock');
      const hop = await relay('/run/relay.sock', '/run/migration.sock');

      await source.vm.sendMigration({ destination_url: 'unix:/run/relay.sock' });
      // The stream is paced, so the relay sees it part-way: 1 MiB of the 4 MiB that stand for 1 GiB of memory.
      await waitUntil(() => hop.forwardedBytes > 1024 * 1024, 'the migration to be part-way', 1000);
      expect(standin.state().migrating).toBe(true);
      await hop.kill();

      const refused = await chError(received);
      expect([refused.statusCode, refused.chain.slice(0, 2)]).toEqual([
        500,
        ['Error from API', 'Error starting migration receiver'],
      ]);
      expect(refused.chain.at(-1)).toMatch(
        /^Migration was aborted: connection closed after \d+ of 4194304 memory bytes$/,
      );
      expect(destination().state().vm).toBe('NoVM');

      await waitUntil(() => !standin.state().migrating, 'the source to give up');
      expect(standin.events.map((e) => e.event)).toContain('migration-failed');
      expect(standin.state().vm).toBe(state);
      // The source VM is still usable: it runs on (or stays paused) and takes calls again.
      expect((await source.vm.info()).state).toBe(state);
      if (state === 'Paused') await source.vm.resume();
      await source.vm.pause();
      expect((await source.vm.info()).state).toBe('Paused');
    },
  );
});

describe('CH stand-in: migration of a big guest', () => {
  // 64 GiB at 1 TiB/s: about 60 ms.
  const fixture = useStandin({ migrationBytesPerSecond: 1024 * GiB });
  const { startDestination, receive, relay } = useMigration(fixture);

  it('streams at most 16 MiB of memory, however big the guest', async () => {
    const { client: source, standin } = fixture();
    const target = await startDestination();
    await source.vm.create({ ...sampleVmConfig(), memory: { size: 64 * GiB } });
    await source.vm.boot();
    const { done: received } = await receive(target, '/run/migration.sock');
    const hop = await relay('/run/relay.sock', '/run/migration.sock');

    await source.vm.sendMigration({ destination_url: 'unix:/run/relay.sock' });
    await received;
    await expect(standin.exited).resolves.toEqual({ reason: 'migrated', code: 0 });
    // 64 GiB / 256 would be 256 MiB; the config and framing add a few KiB.
    expect(hop.forwardedBytes).toBeGreaterThan(16 * 1024 * 1024);
    expect(hop.forwardedBytes).toBeLessThan(16 * 1024 * 1024 + 64 * 1024);
  });
});
