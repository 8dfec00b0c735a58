// The command line of the executable CH stand-in, which launcher tests exec in place of `cloud-hypervisor`.
import { parseStandinArgs } from '../../standins/cloud-hypervisor-standin-main';

describe('cloud-hypervisor-standin command line', () => {
  it.each([
    [['--api-socket', '/run/ch.sock']],
    [['--api-socket', 'path=/run/ch.sock']],
    [['--api-socket=path=/run/ch.sock']],
    [['--api-socket=/run/ch.sock', '-vv', '--log-file', '/tmp/ch.log', '--seccomp', 'true']],
  ])('takes CH`s --api-socket forms and ignores its logging flags: %j', (argv) => {
    expect(parseStandinArgs(argv)).toEqual({ socketPath: '/run/ch.sock', noShutdown: false, powerButton: 'ignore' });
  });

  it('reads --no-shutdown, --event-monitor and the stand-in`s guest behaviour', () => {
    expect(
      parseStandinArgs([
        '--api-socket',
        '/s',
        '--no-shutdown',
        '--event-monitor',
        'fd=3',
        '--standin-power-button',
        'poweroff',
      ]),
    ).toEqual({ socketPath: '/s', noShutdown: true, eventMonitor: { fd: 3 }, powerButton: 'poweroff' });
    expect(parseStandinArgs(['--api-socket', '/s', '--event-monitor', 'path=/e.json']).eventMonitor).toEqual({
      path: '/e.json',
    });
  });

  it.each([
    [[], '--api-socket <path> is required'],
    [['--api-socket'], '--api-socket needs a value'],
    [['--api-socket', 'fd=3'], 'not supported by the stand-in'],
    [['--api-socket', '/s', '--kernel', '/vmlinux'], "unexpected argument '--kernel'"],
    [['--api-socket', '/s', '--event-monitor', 'stdout'], '--event-monitor expects path=<file> or fd=<n>'],
  ])('refuses %j', (argv, message) => {
    expect(() => parseStandinArgs(argv)).toThrow(message);
  });
});
