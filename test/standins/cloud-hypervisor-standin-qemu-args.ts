/**
 * The QEMU command line of the CH stand-in's QEMU guest (cloud-hypervisor-standin-qemu.ts): a pure function of the
 * VmConfig the stand-in was sent, so the guest that boots is the one the VmConfig describes — its kernel, initramfs
 * and command line (or firmware), its disks, its TAPs and MACs, its vCPUs and memory, its serial port and console.
 *
 * QEMU runs with TCG: the development and CI machines' /dev/kvm cannot run a Linux guest (DESIGN.md). The machine is
 * q35 by default, because Cloud Hypervisor gives its guests virtio-pci devices and ACPI (a power button, an ACPI
 * power-off); `microvm` (virtio-mmio) boots a little faster but differs more.
 *
 * What the mapping does not model fails the boot with a `stand-in:` reason instead of booting a different guest
 * (a field in the API is done only when something acts on it): virtio-fs, pmem, vsock, vdpa, VFIO and vfio-user
 * devices, generic vhost-user, vhost-user disks and NICs, NICs without a TAP (CH would create one), NUMA, TPM,
 * watchdog, pvpanic, IOMMU, memory zones and hotplug, IGVM payloads. Accepted and ignored, like CH's own sandbox
 * flags: CPU affinity, rate limiters, queue sizes, offloads, Landlock, PCI segments and ids.
 */
import type { ConsoleMode, VmConfig } from '../../operator/cloudhypervisor/types';

export type QemuMachineType = 'q35' | 'microvm';

export interface QemuArgsOptions {
  readonly machine: QemuMachineType;
  /** The QMP socket the stand-in drives QEMU through (pause, resume, reset, power button, quit). */
  readonly qmpPath: string;
  /** Maps a path of the VmConfig (a path inside the VM pod) to the path QEMU opens. */
  readonly resolvePath: (pathInPod: string) => string;
  /**
   * The MTU of a TAP, as CH reads it when the VmConfig gives none and tells the guest (VIRTIO_NET_F_MTU);
   * `undefined` when it cannot be read.
   */
  readonly tapMtu: (tap: string) => number | undefined;
  /** TCG's translation cache, which would otherwise reserve up to 1 GiB beside the guest's memory. @default 64 */
  readonly tbSizeMiB?: number;
}

export type QemuArgs = { readonly ok: true; readonly args: string[] } | { readonly ok: false; readonly why: string };

const MIB = 1024 * 1024;

/** QEMU's option syntax separates options with commas; a comma inside a value is written twice. */
export const qemuValue = (value: string): string => value.replace(/,/g, ',,');

class Unsupported extends Error {}

function unsupported(what: string): never {
  throw new Unsupported(`stand-in: the QEMU guest does not model ${what}`);
}

/** A chardev backend for a CH console mode; `Tty` is the stand-in's stdout, shared by every frontend that uses it. */
function chardev(
  id: string,
  mode: ConsoleMode,
  target: { file?: string; socket?: string },
  options: QemuArgsOptions,
): string | undefined {
  switch (mode) {
    case 'Off':
      return undefined;
    case 'Null':
      return `null,id=${id}`;
    case 'Tty':
      return undefined; // the shared stdio chardev
    case 'Pty':
      return `pty,id=${id}`;
    case 'File':
      if (!target.file) unsupported(`${id} mode File without a file`);
      return `file,id=${id},path=${qemuValue(options.resolvePath(target.file))}`;
    case 'Socket':
      if (!target.socket) unsupported(`${id} mode Socket without a socket`);
      // CH listens on the socket and serves one client at a time.
      return `socket,id=${id},path=${qemuValue(options.resolvePath(target.socket))},server=on,wait=off`;
  }
}

function imageFormat(type: string | undefined): string {
  switch (type ?? 'Raw') {
    case 'Raw':
    case 'Unknown':
      // CH's autodetection is deprecated; a kubevisor VmConfig always says Raw.
      return 'raw';
    case 'Qcow2':
      return 'qcow2';
    case 'FixedVhd':
      return 'vpc';
    case 'Vhdx':
      return 'vhdx';
    default:
      return unsupported(`disk image type ${type}`);
  }
}

function refuseUnmodelled(config: VmConfig): void {
  const present = (value: unknown): boolean => (Array.isArray(value) ? value.length > 0 : value !== undefined);
  const lists: [unknown, string][] = [
    [config.fs, 'virtio-fs (fs)'],
    [config.pmem, 'pmem'],
    [config.vsock, 'vsock'],
    [config.vdpa, 'vdpa'],
    [config.devices, 'VFIO devices (devices)'],
    [config.user_devices, 'vfio-user devices (user_devices)'],
    [config.generic_vhost_user, 'generic vhost-user devices'],
    [config.numa, 'NUMA nodes (numa)'],
    [config.tpm, 'a TPM'],
    [config.memory?.zones, 'memory zones'],
    [config.payload.igvm, 'IGVM payloads'],
  ];
  for (const [value, what] of lists) if (present(value)) unsupported(what);
  if (config.watchdog) unsupported('the watchdog');
  if (config.pvpanic) unsupported('pvpanic');
  if (config.iommu) unsupported('an IOMMU');
  if (config.memory?.hotplug_size) unsupported('memory hotplug (memory.hotplug_size)');
}

/**
 * The QEMU arguments (without the binary) for `config`, which the stand-in already validated as CH would; a
 * `stand-in:` reason when the config asks for something the QEMU guest does not model. QEMU starts paused (`-S`)
 * and keeps running after a guest power-off (`-no-shutdown`), so that the stand-in sees every event on QMP before
 * it lets the guest run, and decides itself when QEMU ends.
 */
export function qemuArgsForVmConfig(config: VmConfig, options: QemuArgsOptions): QemuArgs {
  try {
    return { ok: true, args: buildArgs(config, options) };
  } catch (error) {
    if (error instanceof Unsupported) return { ok: false, why: error.message };
    throw error;
  }
}

function buildArgs(config: VmConfig, options: QemuArgsOptions): string[] {
  refuseUnmodelled(config);
  const q35 = options.machine === 'q35';
  // virtio-pci on q35, as CH gives its guests; virtio-mmio on microvm.
  const virtio = (device: string): string => `virtio-${device}-${q35 ? 'pci' : 'device'}`;
  const path = (p: string): string => qemuValue(options.resolvePath(p));

  // ---- machine, CPUs, memory ----
  const memory = config.memory ?? { size: 512 * MIB };
  const memoryMiB = Math.ceil(memory.size / MIB);
  const backend = memory.shared || memory.hugepages;
  const machine = [q35 ? 'q35' : 'microvm,x-option-roms=off', ...(backend ? ['memory-backend=ram0'] : [])].join(',');
  const cpus = config.cpus ?? { boot_vcpus: 1, max_vcpus: 1 };
  const smp = [`cpus=${cpus.boot_vcpus}`, `maxcpus=${cpus.max_vcpus}`];
  const topology = cpus.topology;
  if (topology) {
    smp.push(`sockets=${topology.packages ?? 1}`);
    // microvm knows no dies; one die is what CH means without them too.
    if ((topology.dies_per_package ?? 1) > 1) smp.push(`dies=${topology.dies_per_package}`);
    smp.push(`cores=${topology.cores_per_die ?? 1}`, `threads=${topology.threads_per_core ?? 1}`);
  }
  const args = [
    // `process=` names QEMU's thread (at most 15 characters), so a process census tells it is the stand-in's guest.
    '-name',
    'cloud-hypervisor-standin-guest,process=ch-standin-qemu',
    '-M',
    machine,
    '-accel',
    `tcg,tb-size=${options.tbSizeMiB ?? 64}`,
    '-cpu',
    'max',
    '-smp',
    smp.join(','),
    '-m',
    `${memoryMiB}M`,
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-S',
    '-no-shutdown',
    '-qmp',
    `unix:${qemuValue(options.qmpPath)},server=on,wait=off`,
  ];
  if (backend) {
    const ram = [`memory-backend-memfd,id=ram0,size=${memoryMiB}M,share=${memory.shared ? 'on' : 'off'}`];
    if (memory.hugepages) {
      ram.push('hugetlb=on');
      if (memory.hugepage_size) ram.push(`hugetlbsize=${memory.hugepage_size}`);
    }
    if (memory.prefault) ram.push('prealloc=on');
    args.push('-object', ram.join(','));
  }

  // ---- payload ----
  const { payload } = config;
  if (payload.firmware) args.push('-bios', path(payload.firmware));
  if (payload.kernel) args.push('-kernel', path(payload.kernel));
  if (payload.initramfs) args.push('-initrd', path(payload.initramfs));
  if (payload.cmdline !== undefined) args.push('-append', payload.cmdline);

  // ---- serial port and console: `Tty` is CH's stdout, i.e. the container log ----
  const serial = config.serial ?? { mode: 'Null' };
  const console = config.console ?? { mode: 'Tty' };
  const debugConsole = config.debug_console ?? { mode: 'Off' };
  const ttyUsers = [serial, console, debugConsole].filter((c) => c.mode === 'Tty').length;
  if (ttyUsers > 0) args.push('-chardev', `stdio,id=tty0,signal=off${ttyUsers > 1 ? ',mux=on' : ''}`);
  const frontendChardev = (id: string, c: { mode: ConsoleMode; file?: string; socket?: string }): string => {
    if (c.mode === 'Tty') return 'tty0';
    const backendSpec = chardev(id, c.mode, c, options);
    if (backendSpec) args.push('-chardev', backendSpec);
    return id;
  };
  if (serial.mode !== 'Off') args.push('-serial', `chardev:${frontendChardev('serial0', serial)}`);
  if (console.mode !== 'Off') {
    const id = frontendChardev('console0', console);
    args.push('-device', `${virtio('serial')},id=vser0`, '-device', `virtconsole,chardev=${id},bus=vser0.0`);
  }
  if (debugConsole.mode !== 'Off') {
    const id = frontendChardev('debugcon0', debugConsole);
    const iobase = config.debug_console?.iobase ?? 0xe9;
    args.push('-device', `isa-debugcon,iobase=0x${iobase.toString(16)},chardev=${id}`);
  }

  // ---- disks ----
  (config.disks ?? []).forEach((disk, i) => {
    const name = disk.id ?? `disk ${i}`;
    if (disk.vhost_user) unsupported(`vhost-user disks (${name})`);
    if (!disk.path) unsupported(`a disk without a path (${name})`);
    const drive = [
      `file=${path(disk.path)}`,
      'if=none',
      `id=drive${i}`,
      `format=${imageFormat(disk.image_type)}`,
      `readonly=${disk.readonly ? 'on' : 'off'}`,
      ...(disk.direct ? ['cache.direct=on'] : []),
    ];
    const device = [virtio('blk'), `drive=drive${i}`];
    // virtio-blk serial numbers are at most 20 bytes, as in CH.
    if (disk.serial) device.push(`serial=${qemuValue(disk.serial.slice(0, 20))}`);
    args.push('-drive', drive.join(','), '-device', device.join(','));
  });

  // ---- NICs: the TAP the VM pod holds, opened by name as CH opens it ----
  (config.net ?? []).forEach((net, i) => {
    const name = net.id ?? `net ${i}`;
    if (net.vhost_user) unsupported(`vhost-user NICs (${name})`);
    if (!net.tap) unsupported(`a NIC without a tap (${name}): CH would create a TAP, which needs CAP_NET_ADMIN`);
    // CH opens num_queues / 2 queue pairs (default 2 queues: one pair).
    const pairs = Math.max(1, Math.floor((net.num_queues ?? 2) / 2));
    // No /dev/vhost-net on the test machines: QEMU moves the packets itself.
    const netdev = [`tap,id=net${i}`, `ifname=${qemuValue(net.tap)}`, 'script=no', 'downscript=no', 'vhost=off'];
    if (pairs > 1) netdev.push(`queues=${pairs}`);
    // romfile= : no iPXE option ROM; the guest boots from its kernel or disk, never from the network.
    const device = [virtio('net'), `netdev=net${i}`, ...(q35 ? ['romfile='] : [])];
    if (net.mac) device.push(`mac=${net.mac}`);
    const mtu = net.mtu ?? options.tapMtu(net.tap);
    if (mtu !== undefined) device.push(`host_mtu=${mtu}`);
    if (pairs > 1) device.push('mq=on', `vectors=${2 * pairs + 2}`);
    args.push('-netdev', netdev.join(','), '-device', device.join(','));
  });

  // ---- the rest CH gives every guest ----
  const rng = config.rng ?? { src: '/dev/urandom' };
  args.push('-object', `rng-random,id=rng0,filename=${path(rng.src)}`, '-device', `${virtio('rng')},rng=rng0`);
  if (config.balloon) {
    const balloon = [virtio('balloon')];
    if (config.balloon.deflate_on_oom) balloon.push('deflate-on-oom=on');
    if (config.balloon.free_page_reporting) balloon.push('free-page-reporting=on');
    args.push('-device', balloon.join(','));
  }
  const platform = config.platform;
  if (platform?.uuid) args.push('-uuid', platform.uuid);
  if (platform?.serial_number) args.push('-smbios', `type=1,serial=${qemuValue(platform.serial_number)}`);
  for (const oem of platform?.oem_strings ?? []) args.push('-smbios', `type=11,value=${qemuValue(oem)}`);
  return args;
}
