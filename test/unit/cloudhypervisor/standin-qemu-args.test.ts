// The QEMU guest of the CH stand-in (--standin-qemu): how a VmConfig becomes QEMU's command line, what it refuses
// rather than boot a different guest, and the executable's flags for it. The guest itself runs in the launch suite
// (test/launch/standin-qemu.launch.test.ts).
import type { VmConfig } from '../../../operator/cloudhypervisor/types';
import {
  qemuArgsForVmConfig,
  qemuValue,
  type QemuArgsOptions,
} from '../../standins/cloud-hypervisor-standin-qemu-args';
import { parseStandinArgs, STANDIN_VERSION_LINE } from '../../standins/cloud-hypervisor-standin-main';
import { sampleVmConfig } from './standin-fixture';

const MIB = 1024 * 1024;

const options = (extra: Partial<QemuArgsOptions> = {}): QemuArgsOptions => ({
  machine: 'q35',
  qmpPath: '/run/kubevisor/ch.sock.standin-qmp',
  resolvePath: (p) => `/pod${p}`,
  tapMtu: (tap) => (tap === 'tap0' ? 1400 : undefined),
  ...extra,
});

/** The args, failing the test when the config was refused. */
function argsOf(config: VmConfig, extra: Partial<QemuArgsOptions> = {}): string[] {
  const built = qemuArgsForVmConfig(config, options(extra));
  if (!built.ok) throw new Error(built.why);
  return built.args;
}

/** Every value given to `flag`, in order. */
function values(args: readonly string[], flag: string): string[] {
  return args.flatMap((arg, i) => (arg === flag ? [args[i + 1]] : []));
}

/** What buildVmConfig makes for a VM pod: direct kernel boot, serial Tty, console Off, a raw disk, a TAP. */
function podVmConfig(): VmConfig {
  return {
    payload: { kernel: '/mnt/kernel/vmlinux', initramfs: '/mnt/kernel/initrd', cmdline: 'console=ttyS0 quiet' },
    cpus: {
      boot_vcpus: 2,
      max_vcpus: 2,
      topology: { packages: 1, dies_per_package: 1, cores_per_die: 2, threads_per_core: 1 },
    },
    memory: { size: 1024 * MIB },
    serial: { mode: 'Tty' },
    console: { mode: 'Off' },
    rng: { src: '/dev/urandom' },
    disks: [
      { id: 'root', path: '/var/run/kubevisor/disks/root.raw', image_type: 'Raw', readonly: false },
      { id: 'cloudinit', path: '/var/run/kubevisor/cloud-init.iso', image_type: 'Raw', readonly: true },
    ],
    net: [{ id: 'net-pod', tap: 'tap0', mac: '52:54:00:12:34:56' }],
  };
}

describe('CH stand-in QEMU guest: VmConfig → QEMU arguments', () => {
  it('maps a VM pod`s VmConfig: payload, vCPUs, memory, disks, TAP and MAC, serial to stdout, QMP', () => {
    const args = argsOf(podVmConfig());
    expect(values(args, '-M')).toEqual(['q35']);
    expect(values(args, '-accel')).toEqual(['tcg,tb-size=64']);
    expect(values(args, '-smp')).toEqual(['cpus=2,maxcpus=2,sockets=1,cores=2,threads=1']);
    expect(values(args, '-m')).toEqual(['1024M']);
    expect(values(args, '-kernel')).toEqual(['/pod/mnt/kernel/vmlinux']);
    expect(values(args, '-initrd')).toEqual(['/pod/mnt/kernel/initrd']);
    expect(values(args, '-append')).toEqual(['console=ttyS0 quiet']);
    expect(values(args, '-bios')).toEqual([]);
    expect(values(args, '-drive')).toEqual([
      'file=/pod/var/run/kubevisor/disks/root.raw,if=none,id=drive0,format=raw,readonly=off',
      'file=/pod/var/run/kubevisor/cloud-init.iso,if=none,id=drive1,format=raw,readonly=on',
    ]);
    expect(values(args, '-netdev')).toEqual(['tap,id=net0,ifname=tap0,script=no,downscript=no,vhost=off']);
    // The TAP's MTU reaches the guest through the device, as CH tells it (VIRTIO_NET_F_MTU).
    expect(values(args, '-device')).toEqual([
      'virtio-blk-pci,drive=drive0',
      'virtio-blk-pci,drive=drive1',
      'virtio-net-pci,netdev=net0,romfile=,mac=52:54:00:12:34:56,host_mtu=1400',
      'virtio-rng-pci,rng=rng0',
    ]);
    expect(values(args, '-object')).toEqual(['rng-random,id=rng0,filename=/pod/dev/urandom']);
    expect(values(args, '-chardev')).toEqual(['stdio,id=tty0,signal=off']);
    expect(values(args, '-serial')).toEqual(['chardev:tty0']);
    expect(values(args, '-qmp')).toEqual(['unix:/run/kubevisor/ch.sock.standin-qmp,server=on,wait=off']);
    // Started paused and kept after a guest power-off: the stand-in hears every event and decides when QEMU ends.
    expect(args).toEqual(expect.arrayContaining(['-S', '-no-shutdown', '-nodefaults', '-no-user-config']));
    expect(args).not.toContain('-no-reboot');
    expect(values(args, '-name')).toEqual(['cloud-hypervisor-standin-guest,process=ch-standin-qemu']);
  });

  it('uses virtio-mmio devices on microvm', () => {
    const args = argsOf(podVmConfig(), { machine: 'microvm' });
    expect(values(args, '-M')).toEqual(['microvm,x-option-roms=off']);
    expect(values(args, '-device')).toEqual([
      'virtio-blk-device,drive=drive0',
      'virtio-blk-device,drive=drive1',
      'virtio-net-device,netdev=net0,mac=52:54:00:12:34:56,host_mtu=1400',
      'virtio-rng-device,rng=rng0',
    ]);
  });

  it('boots firmware with -bios, and takes the VmConfig`s MTU over the TAP`s', () => {
    const config: VmConfig = {
      ...podVmConfig(),
      payload: { firmware: '/usr/share/cloud-hypervisor/hypervisor-fw' },
      net: [{ tap: 'tap7', mac: '52:54:00:00:00:07', mtu: 9000 }],
    };
    const args = argsOf(config);
    expect(values(args, '-bios')).toEqual(['/pod/usr/share/cloud-hypervisor/hypervisor-fw']);
    expect(values(args, '-kernel')).toEqual([]);
    expect(values(args, '-append')).toEqual([]);
    expect(values(args, '-device')).toContain(
      'virtio-net-pci,netdev=net0,romfile=,mac=52:54:00:00:00:07,host_mtu=9000',
    );
  });

  it('leaves host_mtu out when the TAP`s MTU cannot be read, and maps queue pairs, image types, serials, direct I/O', () => {
    const config: VmConfig = {
      ...podVmConfig(),
      disks: [
        { path: '/a.qcow2', image_type: 'Qcow2', direct: true, serial: 'a-serial-longer-than-twenty' },
        { path: '/b.vhdx', image_type: 'Vhdx' },
        { path: '/c,d.vhd', image_type: 'FixedVhd' },
      ],
      net: [{ tap: 'tap9', mac: '52:54:00:00:00:09', num_queues: 4 }],
    };
    const args = argsOf(config);
    expect(values(args, '-drive')).toEqual([
      'file=/pod/a.qcow2,if=none,id=drive0,format=qcow2,readonly=off,cache.direct=on',
      'file=/pod/b.vhdx,if=none,id=drive1,format=vhdx,readonly=off',
      'file=/pod/c,,d.vhd,if=none,id=drive2,format=vpc,readonly=off',
    ]);
    expect(values(args, '-device')).toContain('virtio-blk-pci,drive=drive0,serial=a-serial-longer-than');
    expect(values(args, '-netdev')).toEqual(['tap,id=net0,ifname=tap9,script=no,downscript=no,vhost=off,queues=2']);
    expect(values(args, '-device')).toContain(
      'virtio-net-pci,netdev=net0,romfile=,mac=52:54:00:00:00:09,mq=on,vectors=6',
    );
  });

  it('shares stdout between a Tty serial port and a Tty console, and maps the other console modes', () => {
    const both = argsOf({ ...podVmConfig(), serial: { mode: 'Tty' }, console: { mode: 'Tty' } });
    expect(values(both, '-chardev')).toEqual(['stdio,id=tty0,signal=off,mux=on']);
    expect(values(both, '-serial')).toEqual(['chardev:tty0']);
    expect(values(both, '-device')).toEqual(
      expect.arrayContaining(['virtio-serial-pci,id=vser0', 'virtconsole,chardev=tty0,bus=vser0.0']),
    );

    // The stand-in fixture's sample: serial on a socket CH listens on, console off.
    const socket = argsOf(sampleVmConfig());
    expect(values(socket, '-chardev')).toEqual([
      'socket,id=serial0,path=/pod/run/kubevisor/serial.sock,server=on,wait=off',
    ]);
    expect(values(socket, '-serial')).toEqual(['chardev:serial0']);

    const other = argsOf({
      ...podVmConfig(),
      serial: { mode: 'File', file: '/var/log/serial.log' },
      console: { mode: 'Null' },
      debug_console: { mode: 'Pty' },
    });
    expect(values(other, '-chardev')).toEqual([
      'file,id=serial0,path=/pod/var/log/serial.log',
      'null,id=console0',
      'pty,id=debugcon0',
    ]);
    expect(values(other, '-device')).toContain('isa-debugcon,iobase=0xe9,chardev=debugcon0');

    const off = argsOf({ ...podVmConfig(), serial: { mode: 'Off' }, console: { mode: 'Off' } });
    expect(values(off, '-serial')).toEqual([]);
    expect(values(off, '-chardev')).toEqual([]);
  });

  it('gives shared or hugepage memory a memfd backend', () => {
    const args = argsOf({
      ...podVmConfig(),
      memory: { size: 2048 * MIB, hugepages: true, hugepage_size: 2 * MIB, shared: true, prefault: true },
    });
    expect(values(args, '-M')).toEqual(['q35,memory-backend=ram0']);
    expect(values(args, '-object')).toContain(
      'memory-backend-memfd,id=ram0,size=2048M,share=on,hugetlb=on,hugetlbsize=2097152,prealloc=on',
    );
  });

  it('maps the platform`s uuid, serial number and OEM strings, and a balloon', () => {
    const args = argsOf({
      ...podVmConfig(),
      platform: { uuid: '2f1c0e2a-3d6b-4c1e-9a4b-1f2e3d4c5b6a', serial_number: 'kv-1', oem_strings: ['a,b'] },
      balloon: { size: 0, deflate_on_oom: true },
    });
    expect(values(args, '-uuid')).toEqual(['2f1c0e2a-3d6b-4c1e-9a4b-1f2e3d4c5b6a']);
    expect(values(args, '-smbios')).toEqual(['type=1,serial=kv-1', 'type=11,value=a,,b']);
    expect(values(args, '-device')).toContain('virtio-balloon-pci,deflate-on-oom=on');
  });

  it.each([
    [{ fs: [{ tag: 'data', socket: '/v.sock', num_queues: 1, queue_size: 1024 }] }, 'virtio-fs (fs)'],
    [{ vsock: { cid: 3, socket: '/vsock' } }, 'vsock'],
    [{ vdpa: [{ path: '/dev/vhost-vdpa-0', num_queues: 1 }] }, 'vdpa'],
    [{ devices: [{ path: '/sys/bus/pci/devices/0000:00:01.0' }] }, 'VFIO devices (devices)'],
    [{ watchdog: true }, 'the watchdog'],
    [{ iommu: true }, 'an IOMMU'],
    [
      { net: [{ mac: '52:54:00:00:00:01' }] },
      'a NIC without a tap (net 0): CH would create a TAP, which needs CAP_NET_ADMIN',
    ],
    [{ net: [{ vhost_user: true, vhost_socket: '/vu.sock', id: 'net-x' }] }, 'vhost-user NICs (net-x)'],
    [{ disks: [{ vhost_user: true, vhost_socket: '/vu.sock', id: 'data' }] }, 'vhost-user disks (data)'],
    [{ serial: { mode: 'File' } }, 'serial0 mode File without a file'],
  ] as [Partial<VmConfig>, string][])('refuses what it does not model: %j', (extra, what) => {
    expect(qemuArgsForVmConfig({ ...podVmConfig(), ...extra }, options())).toEqual({
      ok: false,
      why: `stand-in: the QEMU guest does not model ${what}`,
    });
  });

  it('doubles commas in values, as QEMU`s option syntax needs', () => {
    expect(qemuValue('/a,b,,c')).toBe('/a,,b,,,,c');
  });
});

describe('cloud-hypervisor-standin command line: the QEMU guest', () => {
  it('reads --standin-qemu and --standin-qemu-machine', () => {
    expect(parseStandinArgs(['--api-socket', '/s', '--standin-qemu', '/usr/bin/qemu-system-x86_64']).qemu).toEqual({
      binary: '/usr/bin/qemu-system-x86_64',
      machine: 'q35',
    });
    expect(
      parseStandinArgs(['--api-socket', '/s', '--standin-qemu-machine=microvm', '--standin-qemu', '/q']).qemu,
    ).toEqual({ binary: '/q', machine: 'microvm' });
    expect(parseStandinArgs(['--api-socket', '/s']).qemu).toBeUndefined();
  });

  it.each([
    [['--api-socket', '/s', '--standin-qemu-machine', 'pc', '--standin-qemu', '/q'], 'expects q35 or microvm, got pc'],
    [['--api-socket', '/s', '--standin-qemu-machine', 'q35'], '--standin-qemu-machine needs --standin-qemu'],
    [
      ['--api-socket', '/s', '--standin-qemu', '/q', '--standin-control', '/c'],
      'with --standin-qemu the guest is real',
    ],
  ])('refuses %j', (argv, message) => {
    expect(() => parseStandinArgs(argv)).toThrow(message);
  });

  it('names itself a stand-in in its version line, with the CH version it models', () => {
    expect(STANDIN_VERSION_LINE).toMatch(
      /^cloud-hypervisor-standin v53\.0 \(kubevisor test stand-in for Cloud Hypervisor v53\.0/,
    );
  });
});
