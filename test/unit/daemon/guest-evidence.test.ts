/**
 * What the daemon reads about a guest from files the pod or the guest influences: CH's event monitor stream, the
 * DHCP leases, and CH's log lines in the container log. Each parser keeps only well-formed, bounded values.
 */
import { EventMonitorParser, emptyHistory, foldEvent } from '../../../operator/daemon/event-monitor';
import { crashLine, parseLeases } from '../../../operator/daemon/guest-evidence';
import { formatEventMonitorRecord } from '../../standins/cloud-hypervisor-standin';

const record = (source: 'vm' | 'vmm', event: string, properties?: Record<string, string>) =>
  formatEventMonitorRecord({ source, event, timestamp: { secs: 1, nanos: 5 }, ...(properties ? { properties } : {}) });

describe('event monitor', () => {
  test('parses CH records fed in arbitrary pieces, and folds them into the VMM history', () => {
    const stream =
      record('vmm', 'starting') + record('vm', 'booting') + record('vm', 'booted') + record('vm', 'rebooted');
    const parser = new EventMonitorParser();
    const events = [];
    for (let i = 0; i < stream.length; i += 7) events.push(...parser.push(stream.slice(i, i + 7)));
    expect(events.map((e) => `${e.source} ${e.event}`)).toEqual([
      'vmm starting',
      'vm booting',
      'vm booted',
      'vm rebooted',
    ]);
    const h = events.reduce(foldEvent, emptyHistory());
    expect(h).toEqual(expect.objectContaining({ booted: true, reboots: 1, vmmShutdown: false }));
  });

  test('skips garbage and over-long records, keeps going', () => {
    const parser = new EventMonitorParser();
    const events = parser.push(`not json\n\n{"source":1}\n\n${'x'.repeat(5000)}\n\n${record('vmm', 'shutdown')}`);
    expect(events.map((e) => e.event)).toEqual(['shutdown']);
    expect(parser.skipped).toBe(3);
  });

  test('a record that never ends is dropped instead of held without bound', () => {
    const parser = new EventMonitorParser();
    parser.push('{'.repeat(10_000));
    expect(parser.skipped).toBe(1);
    expect(parser.push(record('vm', 'paused')).map((e) => e.event)).toEqual(['paused']);
  });

  test('migration outcome is part of the history', () => {
    const h = [
      { source: 'vm', event: 'migration-started' },
      { source: 'vm', event: 'migration-failed', properties: { error: 'connection reset' } },
    ].reduce(foldEvent, emptyHistory());
    expect(h.migrationFailed).toBe('connection reset');
    expect(foldEvent(h, { source: 'vm', event: 'migration-finished' }).migratedAway).toBe(true);
  });
});

describe('leases', () => {
  test("reads dnsmasq's lines, only well-formed MACs and IPv4 addresses", () => {
    const text = [
      '0 52:54:00:AA:bb:01 10.0.2.2 web *',
      '0 52:54:00:aa:bb:02 999.1.1.1 bad-ip *',
      '0 not-a-mac 10.0.2.3 x *',
      'garbage',
      '1732900000 52:54:00:aa:bb:03 10.244.1.7 db 01:52:54:00:aa:bb:03',
    ].join('\n');
    expect(parseLeases(text)).toEqual([
      { mac: '52:54:00:aa:bb:01', ip: '10.0.2.2' },
      { mac: '52:54:00:aa:bb:03', ip: '10.244.1.7' },
    ]);
  });
});

describe('crash line', () => {
  const cri = (stream: string, text: string) => `2026-11-29T12:00:00.000000000Z ${stream} F ${text}`;
  test("finds CH's vCPU error on stderr", () => {
    const log = [
      cri('stdout', '[    0.000000] Linux version 6.1.0'),
      cri('stderr', 'cloud-hypervisor: 12.3s: <vcpu0> ERROR:vmm/src/cpu.rs:1460 -- VCPU generated error: VcpuRun(…)'),
    ].join('\n');
    expect(crashLine(log)).toMatch(/VCPU generated error/);
  });

  test('ignores the same words on the serial console (stdout): the guest writes that', () => {
    expect(crashLine(cri('stdout', 'VCPU generated error'))).toBeUndefined();
  });

  test("ignores the words in another program's stderr line (dnsmasq logging a guest's DHCP option text)", () => {
    expect(
      crashLine(cri('stderr', 'dnsmasq-dhcp[12]: 93 vendor class: VCPU generated error: the guest wrote this')),
    ).toBeUndefined();
  });

  test('a Rust panic at the start of a stderr line counts', () => {
    expect(crashLine(cri('stderr', "thread 'vcpu0' panicked at vmm/src/cpu.rs:1:1"))).toMatch(/panicked/);
  });

  test('nothing for a clean log', () => {
    expect(crashLine(cri('stderr', 'cloud-hypervisor: 0.1s: <vmm> WARN: something'))).toBeUndefined();
  });
});
