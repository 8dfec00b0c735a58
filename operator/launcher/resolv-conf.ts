/** The pod's DNS settings (kubelet writes them into /etc/resolv.conf), handed to the guest by DHCP. */
import { readFileSync } from 'node:fs';
import { LaunchError } from './failure';

export interface DnsSettings {
  readonly servers: readonly string[];
  readonly search: readonly string[];
}

export const RESOLV_CONF = '/etc/resolv.conf';

/**
 * IPv4 nameservers and search domains. Loopback nameservers are dropped: they are the pod's own address space,
 * which the guest cannot reach. IPv6 servers are dropped too: the guest is configured by DHCPv4 only.
 */
export function parseResolvConf(text: string): DnsSettings {
  const servers: string[] = [];
  let search: string[] = [];
  for (const line of text.split('\n')) {
    const [key, ...values] = line
      .replace(/[#;].*/, '')
      .trim()
      .split(/\s+/);
    if (key === 'nameserver' && values[0] && /^\d+\.\d+\.\d+\.\d+$/.test(values[0]) && !values[0].startsWith('127.')) {
      servers.push(values[0]);
    } else if (key === 'search' || key === 'domain') {
      // The last search/domain line wins, as in the resolver.
      search = values.filter(Boolean);
    }
  }
  return { servers, search };
}

export function readResolvConf(path: string = RESOLV_CONF): DnsSettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    // A pod with dnsPolicy None and no dnsConfig has no resolv.conf worth copying; the guest then gets no DNS.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { servers: [], search: [] };
    throw new LaunchError(`read ${path}: ${(e as Error).message}`);
  }
  return parseResolvConf(text);
}
