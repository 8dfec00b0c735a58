/**
 * The pod network, per interface. Bridge and masquerade interfaces need the pod's links rebuilt, which takes
 * CAP_NET_ADMIN the VM pod does not have: the launcher asks the node daemon (network-handshake.ts), which builds
 * bridges, TAPs and rules from outside the pod (operator/netprep) and answers with the TAPs and DHCP leases; the
 * launcher then serves DHCP, unprivileged. sriov, vdpa and vhostUser hand CH the device Multus reported, and need
 * nothing from the daemon. Interfaces and networks pair by name; the pod link of network i is eth0 or net<i>.
 */
import type { VmInterface } from '../../api';
import { stableMac } from '../../constructs/virtual-machine';
import type { NetworkPrepared } from '../netprep/network-ready';
import { bindingOf, isTapBinding, networkOf } from '../netprep/plan';
import { tapName } from '../pod-layout';
import { startDnsmasq } from './dhcp';
import { LaunchError } from './failure';
import { requestNetwork } from './network-handshake';
import {
  deviceInfoFor,
  readNetworkStatus,
  vdpaDevice,
  vfioPath,
  vhostUserSocket,
  type NetworkStatusEntry,
} from './network-status';
import { readResolvConf } from './resolv-conf';
import type { PreparedInterface } from './vm-config';
import type { LaunchVm } from './vm-env';

export interface PreparedNetwork {
  readonly interfaces: Record<string, PreparedInterface>;
  /** dnsmasq configuration files written (one per bridge with DHCP). */
  readonly dnsmasqConfigs: readonly string[];
  /** How long the node daemon took to answer, when it was asked. */
  readonly daemonMs?: number;
}

export async function setupNetwork(vm: LaunchVm, env: NodeJS.ProcessEnv = process.env): Promise<PreparedNetwork> {
  const interfaces: Record<string, PreparedInterface> = {};
  const dnsmasqConfigs: string[] = [];
  const ifaces = vm.spec.instance.interfaces ?? [];
  if (!ifaces.length) return { interfaces, dnsmasqConfigs };
  let statuses: readonly NetworkStatusEntry[] | undefined;
  const networkStatus = () => (statuses ??= readNetworkStatus(env));
  // Asked once, at the first interface that needs it, so failures keep the order of the interfaces.
  let ready: NetworkPrepared | undefined;
  let daemonMs: number | undefined;
  const prepared = async () => {
    if (!ready) {
      const asked = Date.now();
      ready = await requestNetwork(env);
      daemonMs = Date.now() - asked;
    }
    return ready;
  };

  for (const [i, iface] of ifaces.entries()) {
    const { what, link } = networkOf(vm, iface, i);
    const binding = bindingOf(iface);
    if (isTapBinding(binding)) {
      const entry = (await prepared()).interfaces[iface.name];
      if (!entry) throw new LaunchError(`${what}: the node daemon prepared no TAP for it`);
      if (entry.nic.tap !== tapName(link)) {
        throw new LaunchError(`${what}: the node daemon prepared ${entry.nic.tap}, expected ${tapName(link)}`);
      }
      interfaces[iface.name] = entry.nic;
      if (entry.dhcp) {
        const lease = { ...entry.dhcp, dns: readResolvConf(), hostname: vm.metadata.name };
        dnsmasqConfigs.push(await startDnsmasq(lease, what));
      }
    } else {
      interfaces[iface.name] = passthrough(iface, binding, link, what, networkStatus(), vm.metadata.name);
    }
  }
  return { interfaces, dnsmasqConfigs, ...(daemonMs !== undefined ? { daemonMs } : {}) };
}

/** sriov, vdpa, vhostUser: the device the CNI attached, from Multus' network-status. */
function passthrough(
  iface: VmInterface,
  binding: 'sriov' | 'vdpa' | 'vhostUser',
  link: string,
  what: string,
  statuses: readonly NetworkStatusEntry[],
  vmName: string,
): PreparedInterface {
  if (binding === 'sriov') {
    const info = deviceInfoFor(statuses, link, what, 'PCI address of the SR-IOV VF');
    const address = info.pci?.['pci-address'];
    if (!address) throw new LaunchError(`${what}: device-info of link ${link} has no pci.pci-address`);
    return { kind: 'vfio', path: vfioPath(address, what, link) };
  }
  if (binding === 'vdpa') {
    const info = deviceInfoFor(statuses, link, what, 'vhost-vdpa device path');
    const path = info.vdpa?.path;
    if (!path) {
      throw new LaunchError(
        `${what}: device-info of link ${link} has no vdpa.path (driver ${info.vdpa?.driver ?? 'unknown'}); CH needs a vhost-vdpa device`,
      );
    }
    return { kind: 'vdpa', path: vdpaDevice(path, what, link) };
  }
  const info = deviceInfoFor(statuses, link, what, 'vhost-user socket');
  const vu = info['vhost-user'];
  if (!vu?.path) throw new LaunchError(`${what}: device-info of link ${link} has no vhost-user.path`);
  // device-info's mode is the role the consumer of the socket takes, which is CH here.
  const mode = vu.mode === 'server' ? 'Server' : 'Client';
  const socket = vhostUserSocket(vu.path, what, link);
  return { kind: 'vhostUser', socket, mode, mac: iface.mac ?? stableMac(vmName, iface.name) };
}
