/**
 * The Cloud Hypervisor stand-in with a real guest (`--standin-qemu`): the executable stand-in runs in a "VM pod"
 * network namespace with only the pod's capabilities, is driven through the project's own CH client exactly as the
 * node daemon drives CH, and boots the launch suite's guest under QEMU TCG from the VmConfig alone — its kernel,
 * initramfs and command line, its cloud-init disk, its TAP and MAC. Everything asserted is what the guest did: its
 * console lines, its DHCP lease, its answers over HTTP (port 80, the guest's own web server), its silence
 * while paused, one more boot per reboot, and the stand-in's exit when the guest powers off.
 *
 * Needs root (namespaces, taps) and the fixture: tools/guest/build.sh.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CloudHypervisorClient } from '../../operator/cloudhypervisor/client';
import type { VmConfig } from '../../operator/cloudhypervisor/types';
import { waitForSocket } from '../../operator/cloudhypervisor/wait-for-socket';
import {
  deleteNetns,
  guestFixture,
  httpGetInNetns,
  makeCidataIso,
  makeNetns,
  parseGuestSerial,
  startInNetns,
  type NetnsProcess,
} from './guest';
import { CH_STANDIN, POD_CAPABILITIES } from './pod-netns';

const podNs = `kvsq-pod-${process.pid}`;
const tap = 'tap0';
const tapMtu = 1400;
const bridgeIp = '10.97.0.1';
const guestIp = '10.97.0.2';
const guestMac = '52:54:00:6b:76:31';
const instanceId = 'iid-kv-standin-0001';
const hostname = 'kv-standin-guest';
const qemu = '/usr/bin/qemu-system-x86_64';

function run(file: string, args: readonly string[], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')}: ${(stderr || error.message).trim()}`));
      else resolve(stdout);
    });
  });
}
const ipIn = (...args: string[]): Promise<string> => run('ip', ['-n', podNs, ...args]);

/** A running stand-in: its log holds its stdout (the guest's serial console) and its stderr. */
interface RunningStandin {
  readonly process: NetnsProcess;
  readonly client: CloudHypervisorClient;
  readonly log: string;
  readonly events: string;
  read(): string;
  /** The CH events written so far, as `source:event`. */
  eventNames(): string[];
  /** Counts `KV-GUEST <kind>` lines so far. */
  count(kind: string): number;
  /** Waits until `KV-GUEST <kind>` has appeared `times` times; fails with the log's end after timeoutMs. */
  waitFor(kind: string, times: number, timeoutMs: number): Promise<number>;
}

describe('the CH stand-in running its guest under QEMU (--standin-qemu)', () => {
  let tmp = '';
  let iso = '';
  let dnsmasq: NetnsProcess | undefined;
  const standins: NetnsProcess[] = [];

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('the launch suite needs root (network namespaces and taps)');
    guestFixture(); // fails first, with how to build it
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-standin-qemu-'));
    iso = makeCidataIso(tmp, {
      'user-data': '#cloud-config\n',
      'meta-data': `instance-id: ${instanceId}\nlocal-hostname: ${hostname}\n`,
    });
    // The "VM pod": the guest's TAP on a bridge holding the gateway address, at the pod's MTU.
    await makeNetns(podNs);
    await ipIn('link', 'add', 'br0', 'mtu', String(tapMtu), 'type', 'bridge');
    await ipIn('addr', 'add', `${bridgeIp}/24`, 'dev', 'br0');
    await ipIn('tuntap', 'add', 'dev', tap, 'mode', 'tap');
    await ipIn('link', 'set', tap, 'mtu', String(tapMtu), 'master', 'br0', 'up');
    await ipIn('link', 'set', 'br0', 'up');
    // No MTU option: the guest's NIC can only get the TAP's MTU from the device (VIRTIO_NET_F_MTU), as CH sets it.
    const conf = path.join(tmp, 'dnsmasq.conf');
    fs.writeFileSync(
      conf,
      [
        'port=0',
        'interface=br0',
        'bind-interfaces',
        'dhcp-authoritative',
        `dhcp-range=${guestIp},static,255.255.255.0`,
        `dhcp-host=${guestMac},${guestIp},infinite`,
        `dhcp-option=option:router,${bridgeIp}`,
        `dhcp-leasefile=${path.join(tmp, 'dnsmasq.leases')}`,
        `pid-file=${path.join(tmp, 'dnsmasq.pid')}`,
        'log-facility=-',
        '',
      ].join('\n'),
    );
    const log = path.join(tmp, 'dnsmasq.log');
    const binary = fs.existsSync('/usr/sbin/dnsmasq') ? '/usr/sbin/dnsmasq' : 'dnsmasq';
    dnsmasq = startInNetns(podNs, [binary, `--conf-file=${conf}`, '--no-daemon'], log);
    const deadline = Date.now() + 10_000;
    while (!/sockets bound exclusively to interface br0/.test(fs.readFileSync(log, 'utf8'))) {
      if (Date.now() > deadline) throw new Error(`dnsmasq did not start:\n${fs.readFileSync(log, 'utf8')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 120_000);

  // A failed test leaves no stand-in (nor its QEMU, which holds the TAP) to the next one.
  afterEach(async () => {
    for (const standin of standins.splice(0)) await standin.stop();
  }, 30_000);

  afterAll(async () => {
    await dnsmasq?.stop();
    await deleteNetns(podNs);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  /** The VmConfig the launcher would write for this guest (buildVmConfig's choices), plus the fixture's initramfs. */
  function vmConfig(then: 'stay' | 'reboot' | 'poweroff'): VmConfig {
    const { kernel, initramfs } = guestFixture();
    return {
      payload: {
        kernel,
        initramfs,
        cmdline: `console=ttyS0 tsc_early_khz=2000000 tsc=reliable panic=-1 quiet kv.then=${then}`,
      },
      cpus: {
        boot_vcpus: 1,
        max_vcpus: 1,
        topology: { packages: 1, dies_per_package: 1, cores_per_die: 1, threads_per_core: 1 },
      },
      memory: { size: 256 * 1024 * 1024 },
      serial: { mode: 'Tty' },
      console: { mode: 'Off' },
      rng: { src: '/dev/urandom' },
      disks: [{ id: 'cloudinit', path: iso, image_type: 'Raw', readonly: true }],
      net: [{ id: 'net-pod', tap, mac: guestMac }],
    };
  }

  async function startStandin(name: string, extra: readonly string[] = []): Promise<RunningStandin> {
    const dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
    const socket = path.join(dir, 'ch.sock');
    const log = path.join(dir, 'standin.log');
    const events = path.join(dir, 'ch-events');
    const argv = [CH_STANDIN, '--api-socket', `path=${socket}`, '--event-monitor', `path=${events}`];
    // As the VM pod's container runs CH: in the pod's namespace, with only the pod's capabilities.
    const child = startInNetns(podNs, ['sh', ...argv, '--standin-qemu', qemu, ...extra], log, POD_CAPABILITIES);
    standins.push(child);
    await waitForSocket(socket, 30_000);
    const read = () => fs.readFileSync(log, 'utf8');
    const count = (kind: string) => (read().match(new RegExp(`^KV-GUEST ${kind}\\b`, 'gm')) ?? []).length;
    return {
      process: child,
      client: new CloudHypervisorClient({ socketPath: socket, timeoutMs: 30_000 }),
      log,
      events,
      read,
      eventNames: () =>
        fs.existsSync(events)
          ? [...fs.readFileSync(events, 'utf8').matchAll(/"source": "(\w+)",\s*"event": "([\w-]+)"/g)].map(
              (m) => `${m[1]}:${m[2]}`,
            )
          : [],
      count,
      waitFor: async (kind, times, timeoutMs) => {
        const deadline = Date.now() + timeoutMs;
        while (count(kind) < times) {
          if (Date.now() > deadline) {
            const tail = read().split('\n').slice(-30).join('\n');
            throw new Error(
              `no ${times}× "KV-GUEST ${kind}" within ${timeoutMs} ms; the stand-in's log ends:\n${tail}`,
            );
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return Date.now();
      },
    };
  }

  /** The processes left in the pod namespace besides dnsmasq (the stand-in, QEMU). */
  async function podPids(): Promise<number[]> {
    const pids = (await run('ip', ['netns', 'pids', podNs])).split(/\s+/).filter((p) => p !== '');
    return pids.map(Number).filter((pid) => pid !== dnsmasq?.pid);
  }

  it('boots the VmConfig`s guest, which answers; pauses it silent, resumes it, reboots it once, and ends with it on the power button', async () => {
    const standin = await startStandin('lifecycle');
    const { client } = standin;
    await client.vm.create(vmConfig('stay'));
    const booting = Date.now();
    await client.vm.boot();
    expect((await client.vm.info()).state).toBe('Running');

    const leased = await standin.waitFor('dhcp', 1, 60_000);
    // The NIC's MTU line follows the lease and its routes.
    await standin.waitFor('link', 1, 60_000);
    const report = parseGuestSerial(standin.read());
    expect(report.nic).toEqual({ name: 'eth0', mac: guestMac });
    expect(report.dhcp).toMatchObject({ ip: guestIp, prefixLength: 24, router: bridgeIp });
    expect(report.linkMtu).toBe(tapMtu);
    await standin.waitFor('stay', 1, 60_000);
    const page = `kv-guest hostname=${hostname} instance-id=${instanceId} ip=${guestIp}\n`;
    expect(await httpGetInNetns(podNs, `http://${guestIp}/`)).toBe(page);
    const answered = Date.now();
    expect(parseGuestSerial(standin.read())).toMatchObject({
      web: { port: 80 },
      disks: [expect.objectContaining({ name: 'vda', readOnly: true, label: 'cidata' })],
      metadata: { instanceId, localHostname: hostname },
      errors: [],
    });

    // Paused: the vCPUs stop, so nothing answers until it resumes.
    await client.vm.pause();
    expect((await client.vm.info()).state).toBe('Paused');
    await expect(httpGetInNetns(podNs, `http://${guestIp}/`, 2_000)).rejects.toThrow();
    await client.vm.resume();
    expect((await client.vm.info()).state).toBe('Running');
    expect(await httpGetInNetns(podNs, `http://${guestIp}/`)).toBe(page);

    // vm.reboot: the guest boots once more (QEMU's firmware reset after it is the same reboot, not a second one);
    // its page names it again once it has read its meta-data.
    const rebooting = Date.now();
    await client.vm.reboot();
    await standin.waitFor('metadata', 2, 60_000);
    const rebooted = Date.now();
    expect(await httpGetInNetns(podNs, `http://${guestIp}/`)).toBe(page);
    expect(standin.count('init')).toBe(2);
    expect(standin.eventNames().filter((e) => e === 'vm:rebooting')).toHaveLength(1);

    // The ACPI power button: the guest powers itself off, and the VMM ends with it (exit code 0, §14).
    const pressed = Date.now();
    await client.vm.powerButton();
    await expect(standin.process.exited).resolves.toEqual({ code: 0, signal: null });
    const ended = Date.now();
    expect(standin.count('power-button')).toBe(1);
    expect(standin.count('init')).toBe(2);
    expect(standin.eventNames()).toEqual([
      'vmm:starting',
      'vm:booting',
      'vm:booted',
      'vm:pausing',
      'vm:paused',
      'vm:resuming',
      'vm:resumed',
      'vm:rebooting',
      'vm:rebooted',
      'vm:shutdown',
      'vm:deleted',
      'vmm:shutdown',
    ]);
    expect(await podPids()).toEqual([]);
    console.log(
      `standin-qemu: guest booted from the VmConfig: DHCP lease ${leased - booting} ms and HTTP 200 ${answered - booting} ms ` +
        `after vm.boot; paused (no answer), resumed; rebooted once (${rebooted - rebooting} ms to serving again); ` +
        `power button → stand-in exited 0 after ${ended - pressed} ms`,
    );
  }, 240_000);

  it('follows the guest`s own reboot and power-off, ends QEMU on vm.shutdown, and reports QEMU dying', async () => {
    const standin = await startStandin('self', ['--no-shutdown']);
    const { client } = standin;
    const qemuPid = async (): Promise<number> => {
      const pids = (await podPids()).filter((pid) => pid !== standin.process.pid);
      expect(pids).toHaveLength(1);
      return pids[0];
    };

    // kv.then=reboot: the guest reboots by itself after each run; each reboot is CH's rebooting/rebooted.
    await client.vm.create(vmConfig('reboot'));
    await client.vm.boot();
    await standin.waitFor('init', 2, 90_000);
    expect(standin.eventNames()).toEqual(expect.arrayContaining(['vm:rebooting', 'vm:rebooted']));
    expect((await client.vm.info()).state).toBe('Running');
    await qemuPid();
    await client.vm.shutdown();
    expect((await client.vm.info()).state).toBe('Created');
    expect(await podPids()).toEqual([standin.process.pid]);

    // kv.then=poweroff: the guest powers itself off; with --no-shutdown the VMM keeps the config (§2).
    await client.vm.delete();
    await client.vm.create(vmConfig('poweroff'));
    const before = standin.eventNames().length;
    await client.vm.boot();
    await standin.waitFor('done', 2, 90_000);
    const deadline = Date.now() + 20_000;
    while ((await client.vm.info()).state !== 'Created') {
      if (Date.now() > deadline) throw new Error('the guest powered off, but the VM is still booted');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(standin.eventNames().slice(before)).toEqual(['vm:booting', 'vm:booted', 'vm:shutdown']);
    expect(await podPids()).toEqual([standin.process.pid]);

    // QEMU killed under the VM: CH's VM is gone with an error in the log, like a guest that crashed.
    await client.vm.boot();
    await standin.waitFor('init', 4, 90_000);
    process.kill(await qemuPid(), 'SIGKILL');
    const gone = Date.now() + 20_000;
    while ((await client.vm.info()).state !== 'Created') {
      if (Date.now() > gone) throw new Error('QEMU was killed, but the VM is still booted');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(standin.read()).toMatch(/ERROR:stand-in -- QEMU ended by itself \(signal SIGKILL\)/);

    await client.vmm.shutdown();
    await expect(standin.process.exited).resolves.toEqual({ code: 0, signal: null });
    expect(await podPids()).toEqual([]);
  }, 300_000);
});
