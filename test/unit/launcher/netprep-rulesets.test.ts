// The node daemon's nftables rules for a VM pod (operator/netprep): anti-spoofing per guest TAP, DHCP kept on the
// guest's side of a bridge binding, masquerade NAT and its forward filter, and the record of a pod link netprep took
// over. The launch suite loads them into real namespaces and attacks them with a real guest; this pins their text.
import type { BridgeFacts } from '../../../operator/netprep/bridge';
import { DROP, guestRules } from '../../../operator/netprep/nft-guest';
import { dnatRules, type MasqueradeNat } from '../../../operator/netprep/nft-masquerade';
import { parseRecord, parseRecords, recordChainText, recordLines } from '../../../operator/netprep/nft-record';
import { podRuleset } from '../../../operator/netprep/nftables';

const POD_MAC = '0a:58:0a:f4:01:05';
const eth0: BridgeFacts = {
  name: 'eth0',
  mac: POD_MAC,
  mtu: 1450,
  ipv4: { address: '10.244.1.5', prefix: 24 },
  routes: [
    { destination: '0.0.0.0/0', gateway: '10.244.1.1' },
    { destination: '10.96.0.0/12', gateway: '10.244.1.1' },
    { destination: '169.254.1.1/32' },
  ],
};
const bridgePort = { tap: 'tap-eth0', mac: POD_MAC, ip: '10.244.1.5', podLink: 'eth0' };
/** The rules every guest TAP starts with: its MAC, then ARP and DHCP within their rates. */
const macAndRates = (mac: string) => [
  `ether saddr != ${mac} counter drop comment "${DROP.mac}"`,
  `ether type arp limit rate over 50/second burst 100 packets counter drop comment "${DROP.arpRate}"`,
  `udp dport 67 limit rate over 20/second burst 40 packets counter drop comment "${DROP.dhcpRate}"`,
];
/** The rest for a guest with an IPv4 address. */
const addressRules = (mac: string, ip: string) => [
  `ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp saddr ether ${mac} arp saddr ip { ${ip}, 0.0.0.0 } accept`,
  `ether type arp counter drop comment "${DROP.arp}"`,
  `ip daddr 169.254.169.254 counter drop comment "${DROP.metadata}"`,
  `ip saddr ${ip} accept`,
  'ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept',
  `counter drop comment "${DROP.ip}"`,
];
const nat: MasqueradeNat = {
  link: 'eth0',
  podIp: '10.244.1.5',
  bridge: 'br-eth0',
  guestIp: '10.0.2.2',
  ports: [{ port: 80, protocol: 'TCP' }, { port: 22 }, { port: 53, protocol: 'UDP' }],
};

/** The rules of one chain of one table in a ruleset, trimmed. */
function chain(ruleset: string, family: string, name: string): string[] {
  const from = ruleset.indexOf(`table ${family} kubevisor {`);
  if (from < 0) throw new Error(`no table ${family}`);
  // The table ends at the first closing brace in column 0 (chains close indented).
  const table = ruleset.slice(from, ruleset.indexOf('\n}', from));
  const start = table.indexOf(`  chain ${name} {\n`);
  if (start < 0) throw new Error(`no chain ${name} in table ${family}`);
  const body = table.slice(start).split('\n');
  return body.slice(1, body.indexOf('  }')).map((l) => l.trim());
}

describe('netprep rulesets', () => {
  it('lets out of a guest TAP only the guest MAC, its ARP, its IPv4 and its first DHCP broadcast', () => {
    expect(guestRules(bridgePort)).toEqual([
      `ether saddr != ${POD_MAC} counter drop comment "${DROP.mac}"`,
      // ARP and DHCP beyond their rates, before any rule accepts them (a DHCP renewal comes from the guest's address).
      `ether type arp limit rate over 50/second burst 100 packets counter drop comment "guest: ARP over its rate"`,
      `udp dport 67 limit rate over 20/second burst 40 packets counter drop comment "guest: DHCP over its rate"`,
      `ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp saddr ether ${POD_MAC} arp saddr ip { 10.244.1.5, 0.0.0.0 } accept`,
      `ether type arp counter drop comment "${DROP.arp}"`,
      `ip daddr 169.254.169.254 counter drop comment "${DROP.metadata}"`,
      'ip saddr 10.244.1.5 accept',
      'ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept',
      `counter drop comment "${DROP.ip}"`,
    ]);
    // A network without IPv4 (an L2-only Multus network): only the MAC is known, so only it and the rates are enforced.
    expect(guestRules({ tap: 'tap-net1', mac: POD_MAC })).toEqual([...macAndRates(POD_MAC), 'accept']);
  });

  it('replaces both tables whole; a bridge binding gets its record, its TAP guard and DHCP kept off the pod link', () => {
    const ruleset = podRuleset({ records: [eth0], guests: [bridgePort], nats: [] });
    expect(ruleset.split('\n').slice(1, 5)).toEqual([
      'table bridge kubevisor',
      'delete table bridge kubevisor',
      'table ip kubevisor',
      'delete table ip kubevisor',
    ]);
    expect(ruleset).not.toContain('table ip kubevisor {');
    expect(chain(ruleset, 'bridge', 'record-eth0')).toEqual([
      `continue comment "link mac=${POD_MAC} mtu=1450 ipv4=10.244.1.5/24"`,
      'continue comment "route 0.0.0.0/0 via 10.244.1.1"',
      'continue comment "route 10.96.0.0/12 via 10.244.1.1"',
      'continue comment "route 169.254.1.1/32"',
    ]);
    expect(chain(ruleset, 'bridge', 'prerouting')).toEqual([
      'type filter hook prerouting priority filter; policy accept;',
      'iifname "tap-eth0" jump guest-tap-eth0',
    ]);
    expect(chain(ruleset, 'bridge', 'guest-tap-eth0')).toEqual([
      ...macAndRates(POD_MAC),
      ...addressRules(POD_MAC, '10.244.1.5'),
    ]);
    expect(chain(ruleset, 'bridge', 'input')).toEqual([
      'type filter hook input priority filter; policy accept;',
      'iifname "eth0" udp dport 67 drop',
    ]);
    expect(chain(ruleset, 'bridge', 'output')).toEqual([
      'type filter hook output priority filter; policy accept;',
      'oifname "eth0" udp sport 67 drop',
    ]);
    expect(chain(ruleset, 'bridge', 'forward')).toEqual([
      'type filter hook forward priority filter; policy accept;',
      'iifname "tap-eth0" oifname "eth0" udp dport 67 drop',
      'iifname "eth0" oifname "tap-eth0" udp sport 67 drop',
    ]);
  });

  it('masquerade: listed ports in (none without a list), the guest alone out, forward policy drop, no link-local', () => {
    expect(dnatRules(nat)).toEqual([
      'iifname "eth0" ip daddr 10.244.1.5 tcp dport { 80, 22 } dnat to 10.0.2.2',
      'iifname "eth0" ip daddr 10.244.1.5 udp dport { 53 } dnat to 10.0.2.2',
    ]);
    expect(dnatRules({ ...nat, ports: [] })).toEqual([]);

    const guest = { tap: 'tap-eth0', mac: '52:54:00:6b:76:10', ip: '10.0.2.2' };
    const ruleset = podRuleset({ records: [], guests: [guest], nats: [{ ...nat, ports: [] }] });
    // The guest's own MAC and its private address, not the pod's.
    expect(chain(ruleset, 'bridge', 'guest-tap-eth0')).toEqual([
      ...macAndRates('52:54:00:6b:76:10'),
      ...addressRules('52:54:00:6b:76:10', '10.0.2.2'),
    ]);
    // No bridge binding: DHCP has no pod link to be kept off.
    for (const hook of ['input', 'output', 'forward']) {
      expect(() => chain(ruleset, 'bridge', hook)).toThrow(`no chain ${hook} in table bridge`);
    }
    expect(chain(ruleset, 'ip', 'prerouting')).toEqual(['type nat hook prerouting priority dstnat; policy accept;']);
    expect(chain(ruleset, 'ip', 'postrouting')).toEqual([
      'type nat hook postrouting priority srcnat; policy accept;',
      'ip saddr 10.0.2.2 oifname "eth0" masquerade',
    ]);
    expect(chain(ruleset, 'ip', 'forward')).toEqual([
      'type filter hook forward priority filter; policy drop;',
      'ct state established,related accept',
      'iifname "br-eth0" ip daddr 169.254.0.0/16 counter drop comment "guest: link-local"',
      'iifname "br-eth0" oifname "eth0" ip saddr 10.0.2.2 accept',
      'iifname "eth0" oifname "br-eth0" ip daddr 10.0.2.2 ct status dnat accept',
    ]);
    expect(chain(ruleset, 'ip', 'input')).toEqual([
      'type filter hook input priority filter; policy accept;',
      'iifname "br-eth0" ct state established,related accept',
      'iifname "br-eth0" udp dport 67 accept',
      'iifname "br-eth0" icmp type echo-request accept',
      'iifname "br-eth0" counter drop comment "guest: the pod\'s own services"',
    ]);
  });

  it('accepts a bridge binding’s own bridged traffic in the ip forward chain (br_netfilter) when both kinds meet', () => {
    const net1: BridgeFacts = {
      ...eth0,
      name: 'net1',
      mac: '0a:58:0a:f4:02:07',
      ipv4: { address: '10.9.0.7', prefix: 24 },
    };
    const ruleset = podRuleset({
      records: [net1],
      guests: [
        { tap: 'tap-eth0', mac: '52:54:00:6b:76:10', ip: '10.0.2.2' },
        { tap: 'tap-net1', mac: net1.mac, ip: '10.9.0.7', podLink: 'net1' },
      ],
      nats: [nat],
    });
    expect(chain(ruleset, 'ip', 'forward')).toContain('iifname "br-net1" oifname "br-net1" accept');
    expect(chain(ruleset, 'bridge', 'prerouting')).toEqual([
      'type filter hook prerouting priority filter; policy accept;',
      'iifname "tap-eth0" jump guest-tap-eth0',
      'iifname "tap-net1" jump guest-tap-net1',
    ]);
  });

  it('reads the record of a pod link back from nft’s JSON, and refuses a damaged one', () => {
    expect(recordChainText(eth0).split('\n')[0]).toBe('  chain record-eth0 {');
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { table: { family: 'bridge', name: 'kubevisor', handle: 1 } },
        { chain: { family: 'bridge', table: 'kubevisor', name: 'record-eth0', handle: 1 } },
        ...recordLines(eth0).map((comment, handle) => ({
          rule: {
            family: 'bridge',
            table: 'kubevisor',
            chain: 'record-eth0',
            handle,
            comment,
            expr: [{ continue: null }],
          },
        })),
        {
          rule: {
            family: 'bridge',
            table: 'kubevisor',
            chain: 'guest-tap-eth0',
            handle: 9,
            comment: DROP.mac,
            expr: [],
          },
        },
      ],
    });
    expect(parseRecords(json)).toEqual(new Map([['eth0', eth0]]));
    const noIp = { name: 'net1', mac: POD_MAC, mtu: 1500, routes: [] };
    expect(parseRecord('net1', recordLines(noIp))).toEqual(noIp);
    expect(() => parseRecord('eth0', ['link mac=0a:58 mtu=1450'])).toThrow(
      "the pod's nftables record of link eth0 is damaged: link mac=0a:58 mtu=1450",
    );
    expect(() => parseRecord('eth0', [recordLines(eth0)[0], 'route 10.0.0.0/8 via "x"'])).toThrow('damaged');
  });
});
