/**
 * How the node daemon finds a VM pod's processes from the host: by the pod UID in their cgroup paths, with the
 * kubelet's cgroupfs and systemd drivers alike.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memlockBytes } from '../../../operator/daemon/memlock';
import { chProcess, inPodCgroup, podNetns, podProcesses } from '../../../operator/daemon/pod-processes';

const UID = '7c9e6679-7425-40de-944b-e07fc1f90ae7';

test.each([
  [
    'cgroupfs (v1)',
    `12:memory:/kubepods/burstable/pod${UID}/0123abcd\n11:cpu:/kubepods/burstable/pod${UID}/0123abcd`,
    true,
  ],
  ['cgroupfs (v2)', `0::/kubepods/besteffort/pod${UID}/0123abcd`, true],
  [
    'systemd',
    `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-0123.scope`,
    true,
  ],
  ['another pod', `0::/kubepods/besteffort/pod${UID.replace('7c9e', '8c9e')}/0123abcd`, false],
  ['a host process', '0::/system.slice/containerd.service', false],
])('%s', (_name, text, expected) => {
  expect(inPodCgroup(text, UID)).toBe(expected);
});

test("finds the pod's processes, its network namespace and its CH in a /proc tree", () => {
  const proc = mkdtempSync(join(tmpdir(), 'proc-'));
  try {
    const add = (pid: number, comm: string, cgroup: string) => {
      mkdirSync(join(proc, String(pid)));
      writeFileSync(join(proc, String(pid), 'comm'), `${comm}\n`);
      writeFileSync(join(proc, String(pid), 'cgroup'), `${cgroup}\n`);
    };
    add(1, 'systemd', '0::/init.scope');
    add(311, 'cloud-hypervisor', `0::/kubepods/burstable/pod${UID}/launcher`);
    add(207, 'pause', `0::/kubepods/burstable/pod${UID}/sandbox`);
    add(412, 'dnsmasq', `0::/kubepods/burstable/pod${UID}/launcher`);
    mkdirSync(join(proc, 'self'));
    expect(podProcesses(UID, proc).map((p) => p.pid)).toEqual([207, 311, 412]);
    expect(podNetns(UID, proc)).toBe(join(proc, '207', 'ns', 'net'));
    // A process a tenant exec'd may have a lower PID; the pause process still wins.
    add(150, 'sh', `0::/kubepods/burstable/pod${UID}/launcher`);
    expect(podNetns(UID, proc)).toBe(join(proc, '207', 'ns', 'net'));
    expect(chProcess(UID, proc)).toBe(311);
    expect(podNetns('not-a-uid', proc)).toBeUndefined();
  } finally {
    rmSync(proc, { recursive: true, force: true });
  }
});

test('VFIO and vDPA VMs get guest memory + 1 GiB of memlock, others none', () => {
  expect(memlockBytes({ payload: {}, memory: { size: 2 * 1024 ** 3 } })).toBeUndefined();
  expect(
    memlockBytes({ payload: {}, memory: { size: 2 * 1024 ** 3 }, devices: [{ path: '/sys/bus/pci/devices/x' }] }),
  ).toBe(3 * 1024 ** 3);
  expect(memlockBytes({ payload: {}, vdpa: [{ path: '/dev/vhost-vdpa-0', num_queues: 1 }] })).toBe(
    512 * 1024 ** 2 + 1024 ** 3,
  );
});
