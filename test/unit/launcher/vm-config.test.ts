// buildVmConfig: the VmConfig the launcher writes, checked field by field and against CH's official v53.0 schema
// (the stand-in's ajv compilation of the spec), including keys a real CH would silently ignore.
import type { VmVolume } from '../../../api';
import { renderVirtualMachine, type VirtualMachineProps } from '../../../constructs/virtual-machine';
import { LaunchError } from '../../../operator/launcher/failure';
import { buildVmConfig, type PreparedInterface, type PreparedVm } from '../../../operator/launcher/vm-config';
import type { LaunchVm } from '../../../operator/launcher/vm-env';
import {
  CLOUD_INIT_ISO,
  FIRMWARE_PATH,
  KERNEL_PATH,
  blockDevice,
  containerDiskImage,
  containerRootfsImage,
  pvcDiskImage,
  tapName,
  virtiofsSocket,
} from '../../../operator/pod-layout';
import { EXAMPLES } from '../../../stacks/examples';
import { CloudHypervisorStandinSchemas } from '../../standins/cloud-hypervisor-standin-schemas';

const schemas = new CloudHypervisorStandinSchemas();

const launchVm = (name: string, props: VirtualMachineProps): LaunchVm =>
  renderVirtualMachine(name, props) as unknown as LaunchVm;

function diskPath(v: VmVolume): string {
  if (v.containerDisk) return containerDiskImage(v.name);
  if (v.containerRootfs) return containerRootfsImage(v.name);
  if (v.cloudInit) return CLOUD_INIT_ISO;
  return v.name.startsWith('block') ? blockDevice(v.name) : pvcDiskImage(v.name);
}

/** What the launcher would have prepared for a VM: the pod-layout paths and TAPs on eth0/net<i>. */
function plausiblePrepared(vm: LaunchVm): PreparedVm {
  const volumes = vm.spec.volumes ?? [];
  const networks = vm.spec.networks ?? [];
  const interfaces: Record<string, PreparedInterface> = {};
  for (const iface of vm.spec.instance.interfaces ?? []) {
    const i = networks.findIndex((n) => n.name === iface.name);
    const link = networks[i].pod ? 'eth0' : `net${i}`;
    if (iface.sriov) interfaces[iface.name] = { kind: 'vfio', path: `/sys/bus/pci/devices/0000:18:02.${i}` };
    else if (iface.vdpa) interfaces[iface.name] = { kind: 'vdpa', path: `/dev/vhost-vdpa-${i}` };
    else if (iface.vhostUser) {
      interfaces[iface.name] = {
        kind: 'vhostUser',
        socket: `/var/run/vhost/${link}.sock`,
        mode: 'Client',
        mac: iface.mac!,
      };
    } else interfaces[iface.name] = { kind: 'tap', tap: tapName(link), mac: iface.mac!, mtu: 1450 };
  }
  return {
    disks: Object.fromEntries(
      volumes.map((v) => [v.name, { path: diskPath(v), ...(v.cloudInit ? { forceReadOnly: true } : {}) }]),
    ),
    interfaces,
    fileSystems: Object.fromEntries((vm.spec.instance.fileSystems ?? []).map((f) => [f.name, virtiofsSocket(f.name)])),
  };
}

function expectValidForCh(config: unknown): void {
  expect(schemas.check('VmConfig', config)).toEqual({ errors: [], ignoredKeys: [] });
}

describe('buildVmConfig', () => {
  it.each(Object.entries(EXAMPLES))('example %s gives a VmConfig valid against the CH v53.0 spec', (name, props) => {
    const vm = launchVm(name, props);
    expectValidForCh(buildVmConfig(vm, plausiblePrepared(vm)));
  });

  it('web (containerDisk + cloud-init, masquerade): firmware, topology, raw disks, read-only seed, TAP', () => {
    const vm = launchVm('web', EXAMPLES.web);
    expect(buildVmConfig(vm, plausiblePrepared(vm))).toEqual({
      payload: { firmware: FIRMWARE_PATH },
      cpus: {
        boot_vcpus: 2,
        max_vcpus: 2,
        topology: { packages: 1, dies_per_package: 1, cores_per_die: 2, threads_per_core: 1 },
      },
      memory: { size: 2 * 1024 ** 3 },
      serial: { mode: 'Tty' },
      console: { mode: 'Off' },
      rng: { src: '/dev/urandom' },
      disks: [
        { id: 'root', path: '/mnt/root/disk.raw', image_type: 'Raw', readonly: false },
        { id: 'cloudinit', path: CLOUD_INIT_ISO, image_type: 'Raw', readonly: true },
      ],
      net: [{ id: 'net-pod', tap: 'tap-eth0', mac: vm.spec.instance.interfaces![0].mac }],
    });
  });

  it('kernel-boot: the kernel and cmdline as payload', () => {
    const vm = launchVm('kernel-boot', EXAMPLES['kernel-boot']);
    expect(buildVmConfig(vm, plausiblePrepared(vm)).payload).toEqual({
      kernel: KERNEL_PATH,
      cmdline: 'console=ttyS0 root=/dev/vda rw',
    });
  });

  it('kernel-boot with initrd: the initramfs the init container copied goes with the kernel', () => {
    const props = { ...EXAMPLES['kernel-boot'], kernel: { ...EXAMPLES['kernel-boot'].kernel!, initrd: true } };
    const vm = launchVm('kernel-boot', props);
    expect(buildVmConfig(vm, plausiblePrepared(vm)).payload).toEqual({
      kernel: KERNEL_PATH,
      cmdline: 'console=ttyS0 root=/dev/vda rw',
      initramfs: '/mnt/kernel/initrd',
    });
  });

  const everything: VirtualMachineProps = {
    cpu: { sockets: 2, coresPerSocket: 2, dedicatedCPUPlacement: true },
    memory: { size: '4Gi', hugepages: { pageSize: '1Gi' } },
    kernel: { image: 'k', cmdline: 'console=ttyS0' },
    disks: [{ name: 'block-root' }, { name: 'data', readOnly: true }],
    fileSystems: [{ name: 'share' }],
    volumes: [
      { name: 'block-root', persistentVolumeClaim: { claimName: 'root' } },
      { name: 'data', dataVolume: { volumeName: 'data' } },
      { name: 'share', persistentVolumeClaim: { claimName: 'share' } },
    ],
    interfaces: [
      { name: 'fast', vhostUser: {} },
      { name: 'vf', sriov: {} },
      { name: 'vd', vdpa: { numQueues: 2, iommu: true } },
    ],
    networks: [
      { name: 'fast', multus: { networkName: 'ovs-dpdk' } },
      { name: 'vf', multus: { networkName: 'sriov' } },
      { name: 'vd', multus: { networkName: 'vdpa' } },
    ],
  };

  it('hugepages, dedicated CPUs, vhost-user, virtio-fs, SR-IOV and vDPA map to their CH fields', () => {
    const vm = launchVm('all', everything);
    const config = buildVmConfig(vm, { ...plausiblePrepared(vm), vcpuHostCpus: [4, 5, 6, 7] });
    expectValidForCh(config);
    expect(config.cpus).toMatchObject({
      boot_vcpus: 4,
      max_vcpus: 4,
      topology: { packages: 2, cores_per_die: 2 },
      affinity: [4, 5, 6, 7].map((cpu, vcpu) => ({ vcpu, host_cpus: [cpu] })),
    });
    // vhost-user backends map guest memory: shared.
    expect(config.memory).toEqual({ size: 4 * 1024 ** 3, hugepages: true, hugepage_size: 1024 ** 3, shared: true });
    expect(config.disks).toEqual([
      { id: 'block-root', path: '/dev/kubevisor/block-root', image_type: 'Raw', readonly: false },
      { id: 'data', path: '/mnt/data/disk.img', image_type: 'Raw', readonly: true },
    ]);
    expect(config.net).toEqual([
      {
        id: 'net-fast',
        vhost_user: true,
        vhost_socket: '/var/run/vhost/net0.sock',
        vhost_mode: 'Client',
        mac: vm.spec.instance.interfaces![0].mac,
      },
    ]);
    expect(config.devices).toEqual([{ id: 'net-vf', path: '/sys/bus/pci/devices/0000:18:02.1' }]);
    expect(config.vdpa).toEqual([{ id: 'net-vd', path: '/dev/vhost-vdpa-2', num_queues: 2, iommu: true }]);
    expect(config.fs).toEqual([
      { id: 'share', tag: 'share', socket: '/var/run/kubevisor/virtiofsd/share.sock', num_queues: 1, queue_size: 1024 },
    ]);
  });

  it('fails naming the field when something was not prepared', () => {
    const vm = launchVm('all', everything);
    const ready = plausiblePrepared(vm);
    expect(() => buildVmConfig(vm, ready)).toThrow(
      new LaunchError(
        'spec.instance.cpu.dedicatedCPUPlacement: 4 vCPUs need 4 dedicated host CPUs, the launcher found 0',
      ),
    );
    const noDisk = { ...ready, vcpuHostCpus: [0, 1, 2, 3], disks: {} };
    expect(() => buildVmConfig(vm, noDisk)).toThrow(
      'spec.instance.disks[0]: the launcher prepared no disk for block-root',
    );
  });
});
