/**
 * DHCP for the guest of a bridge or masquerade interface: one dnsmasq per bridge, DHCP only, serving exactly one
 * address to exactly one MAC with an infinite lease. dnsmasq is native and small, so it stays resident beside
 * Cloud Hypervisor after the launcher exits; nothing else in the pod answers DHCP.
 *
 * It runs with the VM pod's capabilities only — CAP_NET_BIND_SERVICE for port 67, no NET_ADMIN, no NET_RAW — which
 * shapes its options (dnsmasqConfig). The node daemon's rules keep it to the guest's side of the bridge
 * (operator/netprep/nft-guest.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { NetworkLease } from '../netprep/network-ready';
import { dnsmasqFile } from '../pod-layout';
import { startDaemon } from './command';
import type { DnsSettings } from './resolv-conf';
import { netmask, parseCidr } from './ipv4';

/** The lease the daemon prepared, with what only the pod knows: its DNS settings and the VM's name. */
export interface GuestLease extends NetworkLease {
  readonly dns: DnsSettings;
  /** Host name offered to the guest (option 12): the VM name. */
  readonly hostname: string;
}

/** RFC 3442 order: the most specific destination first, the default route last. */
export function classlessRoutes(routes: GuestLease['routes']): string[] {
  return [...routes]
    .sort((a, b) => Number(b.destination.split('/')[1]) - Number(a.destination.split('/')[1]))
    .flatMap((r) => [r.destination, r.gateway ?? '0.0.0.0']);
}

function sameNetwork(a: string, b: string, prefix: number): boolean {
  return parseCidr(`${a}/${prefix}`).network === parseCidr(`${b}/${prefix}`).network;
}

/** dnsmasq's configuration for one guest (a pure function, so the options can be tested without dnsmasq). */
export function dnsmasqConfig(lease: GuestLease): string {
  const lines = [
    `# kubevisor launcher: DHCP for the guest behind ${lease.bridge}`,
    'port=0',
    'no-resolv',
    'no-hosts',
    `interface=${lease.bridge}`,
    'bind-interfaces',
    'dhcp-authoritative',
    // The range serves only the guest's address and only to the fixed host entry below; any other MAC is ignored.
    `dhcp-range=${lease.ip},static,${netmask(lease.prefix)},infinite`,
    `dhcp-host=${lease.mac},${lease.ip},${lease.hostname},infinite`,
    'dhcp-ignore=tag:!known',
    // Without NET_ADMIN dnsmasq cannot put the guest's MAC into the ARP cache (SIOCSARP) to unicast an offer to an
    // address the guest does not hold yet; broadcast replies need no ARP at all.
    'dhcp-broadcast',
    // The address is the guest's alone; probing it first with ICMP would need NET_RAW and only delay the offer.
    'no-ping',
  ];
  if (!sameNetwork(lease.ip, lease.bridgeAddress.address, lease.bridgeAddress.prefix)) {
    // Bridge binding: the guest's subnet is not configured on the bridge (it holds only a link-local address), so
    // dnsmasq is told that the subnet lives on this link.
    lines.push(`shared-network=${lease.bridge},${lease.ip}`);
  }
  if (lease.router) lines.push(`dhcp-option=option:router,${lease.router}`);
  if (lease.routes.length) {
    lines.push(`dhcp-option=option:classless-static-route,${classlessRoutes(lease.routes).join(',')}`);
  }
  lines.push(`dhcp-option=option:mtu,${lease.mtu}`);
  if (lease.dns.servers.length) lines.push(`dhcp-option=option:dns-server,${lease.dns.servers.join(',')}`);
  if (lease.dns.search.length) {
    lines.push(`dhcp-option=option:domain-name,${lease.dns.search[0]}`);
    lines.push(`dhcp-option=option:domain-search,${lease.dns.search.join(',')}`);
  }
  lines.push(
    `dhcp-leasefile=${dnsmasqFile(lease.bridge, 'leases')}`,
    `pid-file=${dnsmasqFile(lease.bridge, 'pid')}`,
    // The VM pod drops CAP_SETUID/CAP_SETGID, so dnsmasq must not switch user or group (Debian's defaults are
    // nobody/dip; even setgroups fails): it stays root with only CAP_NET_BIND_SERVICE (as another user it switches
    // nothing anyway). An empty group skips the group change.
    'user=root',
    'group=',
    // Log to the container's stderr: the lease then shows in `kubectl logs`, the first place to look. Only dnsmasq's
    // default lines (start-up, one per DHCP message with the MAC and address): no `log-dhcp`, whose option dump would
    // copy text the guest chooses (vendor class, client name) into the log.
    'log-facility=-',
  );
  return `${lines.join('\n')}\n`;
}

/**
 * Writes the configuration and starts dnsmasq. dnsmasq daemonises only after it has bound its socket and read its
 * configuration, and reports failures through its exit status, so a zero exit means it is serving.
 */
export async function startDnsmasq(lease: GuestLease, what: string): Promise<string> {
  const conf = dnsmasqFile(lease.bridge, 'conf');
  mkdirSync(dirname(conf), { recursive: true });
  writeFileSync(conf, dnsmasqConfig(lease));
  await startDaemon(['dnsmasq', `--conf-file=${conf}`], {
    what: `${what}: start dnsmasq`,
    meaning: dnsmasqExitMeaning,
  });
  return conf;
}

/** dnsmasq's documented exit codes, with what they mean in a VM pod. */
export function dnsmasqExitMeaning(code: number): string | undefined {
  return {
    1: 'configuration problem',
    2: 'network access problem (port 67 in use, the bridge missing, or no CAP_NET_BIND_SERVICE)',
    3: 'filesystem problem (missing file or permission)',
    4: 'memory allocation failure',
    // Exit 5 is dnsmasq's "miscellaneous" code; here it is the one such failure the pod causes: before 2.91, dnsmasq
    // refuses DHCP without CAP_NET_ADMIN ("process is missing required capability NET_ADMIN"), which the pod lacks.
    5: 'missing capability: dnsmasq ≥ 2.91 is required to serve DHCP without CAP_NET_ADMIN, which the VM pod does not have',
  }[code];
}
