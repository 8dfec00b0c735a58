// What vm.info reports, as a real v53.0 binary was measured to (reference/cloud-hypervisor.md §14): every field sent,
// plus CH's defaults for what was omitted, and the device tree with PCI addresses on the virtio transport nodes.
import type { VmConfig } from '../../../operator/cloudhypervisor/types';
import { addPodFiles, sampleVmConfig, useStandin } from './standin-fixture';

/** JSON paths of the leaves in `reported` that `sent` does not have. */
function addedLeaves(sent: unknown, reported: unknown, path = ''): string[] {
  if (reported === null || typeof reported !== 'object') return sent === undefined ? [path] : [];
  return Object.entries(reported as Record<string, unknown>).flatMap(([key, value]) =>
    addedLeaves((sent as Record<string, unknown> | undefined)?.[key], value, `${path}/${key}`),
  );
}

/** Shaped like the launcher's output (operator/launcher/vm-config.ts) for a VM with two disks and a tap NIC. */
function kubevisorVmConfig(): VmConfig {
  return {
    payload: { kernel: '/var/lib/kubevisor/vmlinux', cmdline: 'console=ttyS0' },
    cpus: {
      boot_vcpus: 2,
      max_vcpus: 2,
      topology: { packages: 1, dies_per_package: 1, cores_per_die: 2, threads_per_core: 1 },
    },
    memory: { size: 1 << 30 },
    serial: { mode: 'Tty' },
    console: { mode: 'Off' },
    rng: { src: '/dev/urandom' },
    disks: [
      { id: 'root', path: '/var/lib/kubevisor/disks/root.raw', image_type: 'Raw', readonly: false },
      { id: 'cloudinit', path: '/var/run/kubevisor/cloud-init.iso', image_type: 'Raw', readonly: true },
    ],
    net: [{ id: 'net-default', tap: 'tap-eth0', mac: '52:54:00:12:34:56', mtu: 1500 }],
  };
}

describe('CH stand-in: vm.info reports CH`s defaults (reference §14)', () => {
  const fixture = useStandin();

  it('echoes every field sent and fills in 30–48 defaulted ones, for the sample and a launcher-shaped config', async () => {
    for (const config of [sampleVmConfig(), kubevisorVmConfig()]) {
      const { client } = fixture();
      await client.vm.create(config);
      const reported = (await client.vm.info()).config;
      expect(reported).toMatchObject(config);
      const added = addedLeaves(config, reported);
      expect(added.length).toBeGreaterThanOrEqual(30);
      expect(added.length).toBeLessThanOrEqual(48);
      await client.vm.delete();
    }
  });

  it('fills in memory, CPU, disk, NIC and top-level defaults with CH`s values', async () => {
    const { client } = fixture();
    await client.vm.create(kubevisorVmConfig());
    const { config } = await client.vm.info();
    expect(config.memory).toEqual({
      size: 1 << 30,
      mergeable: false,
      hotplug_method: 'Acpi',
      shared: false,
      hugepages: false,
      prefault: false,
      reserve: false,
      thp: true,
    });
    expect(config.cpus).toMatchObject({ kvm_hyperv: false, max_phys_bits: 46, nested: true, core_scheduling: 'Vm' });
    expect(config.disks?.[1]).toEqual({
      id: 'cloudinit',
      path: '/var/run/kubevisor/cloud-init.iso',
      image_type: 'Raw',
      readonly: true,
      direct: false,
      iommu: false,
      num_queues: 1,
      queue_size: 128,
      vhost_user: false,
      backing_files: false,
      sparse: true,
      lock_granularity: 'ByteRange',
    });
    expect(config.net?.[0]).toEqual({
      id: 'net-default',
      tap: 'tap-eth0',
      mac: '52:54:00:12:34:56',
      mtu: 1500,
      iommu: false,
      num_queues: 2,
      queue_size: 256,
      vhost_user: false,
      vhost_mode: 'Client',
      offload_tso: true,
      offload_ufo: true,
      offload_csum: true,
    });
    expect(config).toMatchObject({ iommu: false, watchdog: false, pvpanic: false, landlock_enable: false });
    // The spec's stale ip/mask defaults are not applied (reference §6).
    expect(config.net?.[0]).not.toHaveProperty('ip');
    expect(config.net?.[0]).not.toHaveProperty('mask');
  });

  it('gives the omitted sections CH`s defaults', async () => {
    const { client } = fixture();
    await client.vm.create({ payload: { kernel: '/var/lib/kubevisor/vmlinux' } });
    const { config } = await client.vm.info();
    expect(config.cpus).toEqual({
      boot_vcpus: 1,
      max_vcpus: 1,
      kvm_hyperv: false,
      max_phys_bits: 46,
      nested: true,
      core_scheduling: 'Vm',
    });
    expect(config.memory?.size).toBe(512 * 1024 * 1024);
    expect(config.rng).toEqual({ src: '/dev/urandom', iommu: false });
    expect(config.serial).toEqual({ mode: 'Null' });
    expect(config.console).toEqual({ mode: 'Tty', iommu: false });
  });

  it('reports a vdpa device without `iommu: false`, as v53.0 does, but keeps `iommu: true`', async () => {
    const { client } = fixture();
    await client.vm.create({
      ...sampleVmConfig(),
      vdpa: [
        { id: 'vdpa0', path: '/dev/vhost-vdpa-0', num_queues: 1, iommu: false },
        { id: 'vdpa1', path: '/dev/vhost-vdpa-1', num_queues: 2, iommu: true },
      ],
    });
    expect((await client.vm.info()).config.vdpa).toEqual([
      { id: 'vdpa0', path: '/dev/vhost-vdpa-0', num_queues: 1 },
      { id: 'vdpa1', path: '/dev/vhost-vdpa-1', num_queues: 2, iommu: true },
    ]);
  });

  it('gives a NIC that came without a MAC a random locally administered one', async () => {
    const { client } = fixture();
    await client.vm.create({ ...sampleVmConfig(), net: [{ tap: 'tap0' }] });
    const mac = (await client.vm.info()).config.net?.[0].mac ?? '';
    expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(parseInt(mac.slice(0, 2), 16) & 0x03).toBe(0x02);
  });

  it('fills in a cold-added device too', async () => {
    const { client } = fixture();
    await client.vm.create(sampleVmConfig());
    await client.vm.addDisk({ id: 'data', path: '/data.raw', image_type: 'Raw' });
    expect((await client.vm.info()).config.disks?.[1]).toMatchObject({ id: 'data', num_queues: 1, sparse: true });
  });
});

describe('CH stand-in: vm.info.device_tree (reference §14)', () => {
  const fixture = useStandin();

  it('puts a virtio device`s PCI address on its `_virtio-pci-<id>` parent and a VFIO device`s on itself', async () => {
    const { client, podRoot } = fixture();
    addPodFiles(podRoot, '/dev/vhost-vdpa-0');
    await client.vm.create({
      ...kubevisorVmConfig(),
      disks: [{ id: 'root', path: '/var/lib/kubevisor/disks/root.raw', image_type: 'Raw' }],
      vdpa: [{ id: 'net-vdpa', path: '/dev/vhost-vdpa-0', num_queues: 1 }],
      devices: [{ id: 'net-sriov', path: '/sys/bus/pci/devices/0000:3b:02.0' }],
    });
    await client.vm.boot();
    const tree = (await client.vm.info()).device_tree ?? {};
    for (const id of ['root', 'net-default', 'net-vdpa']) {
      expect(tree[`_virtio-pci-${id}`]).toEqual({
        id: `_virtio-pci-${id}`,
        resources: [],
        children: [id],
        pci_bdf: expect.stringMatching(/^0000:00:[0-9a-f]{2}\.0$/),
      });
      expect(tree[id]).toEqual({ id, resources: [], parent: `_virtio-pci-${id}`, children: [] });
    }
    expect(tree['net-sriov']).toEqual({
      id: 'net-sriov',
      resources: [],
      children: [],
      pci_bdf: expect.stringMatching(/^0000:00:/),
    });
    const addresses = Object.values(tree).flatMap((node) => (node.pci_bdf ? [node.pci_bdf] : []));
    expect(new Set(addresses).size).toBe(4);
  });
});
