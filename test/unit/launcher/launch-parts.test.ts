// The launcher's pure parts: DHCP options, resolv.conf, cloud-init documents, failure lines, and the entrypoint's
// socket path. The node daemon's rulesets and the network handshake's files: netprep-*.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cloudInitDocument, metaData } from '../../../operator/launcher/cloud-init';
import { parseCpuList } from '../../../operator/launcher/cpu-affinity';
import { classlessRoutes, dnsmasqConfig } from '../../../operator/launcher/dhcp';
import { LaunchError, failureLine } from '../../../operator/launcher/failure';
import { parseResolvConf } from '../../../operator/launcher/resolv-conf';
import { CH_EVENTS, CH_SOCKET } from '../../../operator/pod-layout';

describe('launcher parts', () => {
  it('orders classless routes most specific first, default last, on-link as 0.0.0.0', () => {
    expect(
      classlessRoutes([
        { destination: '0.0.0.0/0', gateway: '169.254.1.1' },
        { destination: '10.0.0.0/8', gateway: '169.254.1.1' },
        { destination: '169.254.1.1/32' },
      ]),
    ).toEqual(['169.254.1.1/32', '0.0.0.0', '10.0.0.0/8', '169.254.1.1', '0.0.0.0/0', '169.254.1.1']);
  });

  it('configures dnsmasq for one host, unprivileged, no DNS, shared-network only when the bridge is off-subnet', () => {
    const lease = {
      bridge: 'br-eth0',
      bridgeAddress: { address: '169.254.200.1', prefix: 30 },
      mac: '0a:58:0a:f4:01:05',
      ip: '10.244.1.5',
      prefix: 24,
      router: '10.244.1.1',
      routes: [{ destination: '0.0.0.0/0', gateway: '10.244.1.1' }],
      mtu: 1450,
      dns: { servers: ['10.96.0.10'], search: ['ns.svc.cluster.local', 'svc.cluster.local'] },
      hostname: 'vm1',
    };
    const conf = dnsmasqConfig(lease).split('\n');
    expect(conf).toEqual(
      expect.arrayContaining([
        'port=0',
        'dhcp-range=10.244.1.5,static,255.255.255.0,infinite',
        'dhcp-host=0a:58:0a:f4:01:05,10.244.1.5,vm1,infinite',
        'shared-network=br-eth0,10.244.1.5',
        'dhcp-option=option:domain-name,ns.svc.cluster.local',
        'dhcp-option=option:domain-search,ns.svc.cluster.local,svc.cluster.local',
        'dhcp-ignore=tag:!known',
        // Only CAP_NET_BIND_SERVICE: broadcast answers (no ARP-cache injection), no ICMP probe, no user switch.
        'dhcp-broadcast',
        'no-ping',
        'user=root',
        'group=',
      ]),
    );
    const masq = dnsmasqConfig({
      ...lease,
      bridgeAddress: { address: '10.0.2.1', prefix: 30 },
      ip: '10.0.2.2',
      prefix: 30,
    });
    expect(masq).not.toContain('shared-network');
    expect(dnsmasqConfig({ ...lease, dns: { servers: [], search: [] } })).not.toContain('dns-server');
  });

  it('copies IPv4 nameservers except loopback, and the last search line', () => {
    expect(
      parseResolvConf(
        '# kubelet\nnameserver 10.96.0.10\nnameserver 127.0.0.53\nnameserver fd00::10\nsearch a b\nsearch c d\noptions ndots:5\n',
      ),
    ).toEqual({ servers: ['10.96.0.10'], search: ['c', 'd'] });
  });

  it('reads cloud-init documents inline, base64 or from the Secret file, naming the field on errors', () => {
    const field = 'spec.volumes[1].cloudInit';
    expect(cloudInitDocument({ userData: 'a' }, 'userData', field)).toBe('a');
    expect(
      cloudInitDocument({ userDataBase64: Buffer.from('#cloud-config\n').toString('base64') }, 'userData', field),
    ).toBe('#cloud-config\n');
    expect(cloudInitDocument({ networkDataSecretName: 's' }, 'networkData', field, () => 'net')).toBe('net');
    expect(cloudInitDocument({}, 'networkData', field)).toBeUndefined();
    expect(() => cloudInitDocument({ userDataBase64: 'not base64!' }, 'userData', field)).toThrow(
      'spec.volumes[1].cloudInit.userDataBase64 is not valid base64',
    );
    expect(() => cloudInitDocument({ userDataSecretName: 'ud' }, 'userData', field, () => undefined)).toThrow(
      'spec.volumes[1].cloudInit.userDataSecretName: Secret ud has no key "value" (expected at /var/run/kubevisor-secrets/userdata/value)',
    );
    expect(metaData({ metadata: { name: 'vm1', uid: 'u-1' }, spec: { instance: {} } })).toBe(
      'instance-id: "u-1"\nlocal-hostname: "vm1"\n',
    );
  });

  it('parses cpuset lists', () => {
    expect(parseCpuList('2-3,6\n')).toEqual([2, 3, 6]);
    expect(() => parseCpuList('3-1')).toThrow('bad cpu list');
  });

  it('reports one line, folding multi-line tool output', () => {
    expect(failureLine(new LaunchError('ip failed:\n  RTNETLINK answers: File exists\n'))).toBe(
      'launcher: ip failed: | RTNETLINK answers: File exists',
    );
    expect(failureLine(new TypeError('x is undefined'))).toBe('launcher: unexpected error: x is undefined');
  });

  it('entrypoint.sh hands CH the socket pod-layout names', () => {
    const script = readFileSync(join(__dirname, '../../../operator/launcher/entrypoint.sh'), 'utf8');
    expect(script).toContain(`CH_SOCKET=${CH_SOCKET}\n`);
    expect(script).toContain(`CH_EVENTS=${CH_EVENTS}\n`);
    expect(script).toContain(
      'exec "${KUBEVISOR_CH:-cloud-hypervisor}" --api-socket "path=$CH_SOCKET" --event-monitor "path=$CH_EVENTS"',
    );
  });
});
