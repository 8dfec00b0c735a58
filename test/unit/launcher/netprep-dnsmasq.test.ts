// The guest's DHCP server behind the rules netprep loads (operator/launcher/dhcp.ts): what it logs and how its
// failures read. Its options: launch-parts.test.ts; the rules that rate-limit the guest's DHCP: netprep-rulesets.
import { dnsmasqConfig, dnsmasqExitMeaning } from '../../../operator/launcher/dhcp';

const lease = {
  bridge: 'br-eth0',
  bridgeAddress: { address: '10.0.2.1', prefix: 30 },
  mac: '52:54:00:6b:76:10',
  ip: '10.0.2.2',
  prefix: 30,
  router: '10.0.2.1',
  routes: [{ destination: '0.0.0.0/0', gateway: '10.0.2.1' }],
  mtu: 1500,
  dns: { servers: [], search: [] },
  hostname: 'vm1',
};

describe('dnsmasq for the guest', () => {
  it('logs to the container log without the option dump of log-dhcp (text the guest chooses)', () => {
    const conf = dnsmasqConfig(lease).split('\n');
    expect(conf).toContain('log-facility=-');
    expect(conf.filter((l) => l.startsWith('log-'))).toEqual(['log-facility=-']);
  });

  it('explains exit 5: a dnsmasq older than 2.91 needs a capability the pod does not have', () => {
    expect(dnsmasqExitMeaning(5)).toMatch(/^missing capability: dnsmasq ≥ 2\.91 is required /);
    expect(dnsmasqExitMeaning(5)).toContain('CAP_NET_ADMIN');
    expect(dnsmasqExitMeaning(2)).toMatch(/^network access problem/);
    expect(dnsmasqExitMeaning(9)).toBeUndefined();
  });
});
