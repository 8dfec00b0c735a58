// Snapshot/restore and live migration between two CH stand-ins, driven only through the typed client.
import { existsSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { CloudHypervisorClient } from '../../../operator/cloudhypervisor/client';
import { startCloudHypervisorStandin, type CloudHypervisorStandin } from '../../standins/cloud-hypervisor-standin';
import { chError, sampleVmConfig, useStandin, waitUntil } from './standin-fixture';

describe('CH stand-in: snapshot and restore', () => {
  const fixture = useStandin();

  it('snapshots a paused VM into a directory that another VMM restores from (Paused, or Running with resume)', async () => {
    const { client, dir } = fixture();
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    await client.vm.pause();
    await client.vm.snapshot({ destination_url: `file://${dir}` });
    expect(existsSync(join(dir, 'config.json'))).toBe(true);
    const source = (await client.vm.info()).config;

    for (const resume of [false, true]) {
      const other = await startCloudHypervisorStandin({ socketPath: join(dir, `restore-${resume}.sock`) });
      try {
        const target = new CloudHypervisorClient({ socketPath: other.socketPath });
        await target.vm.restore({ source_url: `file://${dir}`, resume });
        const info = await target.vm.info();
        expect(info.state).toBe(resume ? 'Running' : 'Paused');
        expect(info.config).toEqual(source);
      } finally {
        await other.stop();
      }
    }
  });

  it('refuses to restore from a directory without a snapshot', async () => {
    const { client, dir } = fixture();
    const error = await chError(client.vm.restore({ source_url: `file://${dir}` }));
    expect(error.statusCode).toBe(500);
    expect(error.chain.slice(0, 3)).toEqual(['Error from API', 'The VM could not be restored', 'Cannot restore VM']);
  });
});

describe('CH stand-in: live migration between two stand-ins', () => {
  const fixture = useStandin();
  let destination: CloudHypervisorStandin | undefined;
  const blackholes: { close(): void }[] = [];

  afterEach(async () => {
    for (const b of blackholes.splice(0)) b.close();
    await destination?.stop();
    destination = undefined;
  });

  async function startDestination(dir: string): Promise<CloudHypervisorClient> {
    destination = await startCloudHypervisorStandin({ socketPath: join(dir, 'dest.sock') });
    return new CloudHypervisorClient({ socketPath: destination.socketPath });
  }

  it.each(['Running', 'Paused'] as const)(
    'moves a %s VM: the destination ends in that state and the source VMM exits',
    async (state) => {
      const { client: source, standin, dir } = fixture();
      const target = await startDestination(dir);
      await source.vm.create(sampleVmConfig());
      await source.vm.boot();
      if (state === 'Paused') await source.vm.pause();
      const config = (await source.vm.info()).config;

      const url = `unix:${join(dir, 'migration.sock')}`;
      // receive-migration answers only when the migration is over (reference §3): start it, then send.
      const received = target.vm.receiveMigration({ receiver_url: url }, { timeoutMs: 30_000 });
      await waitUntil(() => existsSync(join(dir, 'migration.sock')), 'the migration listener');
      await source.vm.sendMigration({ destination_url: url });

      await expect(received).resolves.toBeUndefined();
      const info = await target.vm.info();
      expect(info.state).toBe(state);
      expect(info.config).toEqual(config);
      await expect(standin.exited).resolves.toBe('migrated');
    },
  );

  it('serves no other call while receive-migration is pending (one control thread)', async () => {
    const { client: source, dir } = fixture();
    const target = await startDestination(dir);
    await source.vm.create(sampleVmConfig());
    await source.vm.boot();
    const url = `unix:${join(dir, 'migration.sock')}`;
    const received = target.vm.receiveMigration({ receiver_url: url }, { timeoutMs: 30_000 });
    await waitUntil(() => existsSync(join(dir, 'migration.sock')), 'the migration listener');

    const blocked = await chError(target.vmm.ping({ timeoutMs: 200 }));
    expect(blocked.kind).toBe('timeout');

    await source.vm.sendMigration({ destination_url: url });
    await received;
    expect((await target.vmm.ping()).version).toBe('53.0.0');
  });

  it('while the migration is under way the VM refuses changes and vm.info shows the VM as it was', async () => {
    const { client: source, standin, dir } = fixture();
    await source.vm.create(sampleVmConfig());
    await source.vm.boot();
    // A destination that accepts the connection and never acknowledges keeps the migration in flight.
    const path = join(dir, 'blackhole.sock');
    const held = new Set<Socket>();
    const blackhole = createServer((s) => held.add(s));
    await new Promise<void>((resolve) => blackhole.listen(path, resolve));
    blackholes.push({ close: () => blackhole.close() });

    await source.vm.sendMigration({ destination_url: `unix:${path}` });
    await waitUntil(() => held.size === 1, 'the sender to connect');
    const refused = await chError(source.vm.pause());
    expect([refused.statusCode, refused.chain.at(-1)]).toEqual([500, 'VM is currently migrating']);
    expect((await source.vm.info()).state).toBe('Running');
    expect(standin.state().migrating).toBe(true);

    // The destination goes away: the migration fails and the source keeps its VM (reference §9).
    for (const s of held) s.destroy();
    await waitUntil(() => !standin.state().migrating, 'the migration to fail');
    expect(standin.events.map((e) => e.event)).toContain('migration-failed');
    await source.vm.pause();
    expect((await source.vm.info()).state).toBe('Paused');
  });

  it('refuses to send without a VM, to an unknown URL scheme, or locally without shared memory', async () => {
    const { client, dir } = fixture();
    const url = `unix:${join(dir, 'm.sock')}`;
    expect((await chError(client.vm.sendMigration({ destination_url: url }))).chain.at(-1)).toBe('VM is not running');
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    const scheme = await chError(client.vm.sendMigration({ destination_url: 'http://x' }));
    expect(scheme.chain.at(-1)).toBe('Invalid send migration configuration');
    const local = await chError(client.vm.sendMigration({ destination_url: url, local: true }));
    expect(local.chain.at(-1)).toBe('Local migration requires shared memory or hugepages enabled');
  });
});
