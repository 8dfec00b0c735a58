/**
 * The pod network, per interface, inside the pod's network namespace (the launcher already runs in it): bridge
 * and masquerade build a bridge + TAP and serve DHCP; sriov, vdpa and vhostUser hand CH the device Multus
 * reported. Interfaces and networks pair by name; the pod link of network i is eth0 or net<i> (pod-layout).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { VmInterface } from '../../api';
import { stableMac } from '../../constructs/virtual-machine';
import { NFT_RULESET, podLinkName } from '../pod-layout';
import { setupBridgeBinding, type BindingResult } from './bridge-binding';
import { run } from './command';
import { startDnsmasq } from './dhcp';
import { LaunchError } from './failure';
import { linkExists } from './links';
import { setupMasqueradeBinding } from './masquerade-binding';
import { deviceInfoFor, readNetworkStatus, type NetworkStatusEntry } from './network-status';
import { masqueradeRuleset, type MasqueradeNat } from './nftables';
import { readResolvConf } from './resolv-conf';
import type { PreparedInterface } from './vm-config';
import type { LaunchVm } from './vm-env';

export interface PreparedNetwork {
  readonly interfaces: Record<string, PreparedInterface>;
  /** dnsmasq configuration files written (one per bridge with DHCP). */
  readonly dnsmasqConfigs: readonly string[];
}

export async function setupNetwork(vm: LaunchVm, env: NodeJS.ProcessEnv = process.env): Promise<PreparedNetwork> {
  const interfaces: Record<string, PreparedInterface> = {};
  const dnsmasqConfigs: string[] = [];
  const nats: MasqueradeNat[] = [];
  const networks = vm.spec.networks ?? [];
  const ifaces = vm.spec.instance.interfaces ?? [];
  if (!ifaces.length) return { interfaces, dnsmasqConfigs };
  const dns = readResolvConf();
  let statuses: readonly NetworkStatusEntry[] | undefined;
  const networkStatus = () => (statuses ??= readNetworkStatus(env));

  for (const [i, iface] of ifaces.entries()) {
    const what = `spec.instance.interfaces[${i}] (${iface.name})`;
    const networkIndex = networks.findIndex((n) => n.name === iface.name);
    if (networkIndex < 0) throw new LaunchError(`${what}: no network named ${iface.name} in spec.networks`);
    const link = podLinkName(networks[networkIndex], networkIndex);
    const mac = iface.mac ?? stableMac(vm.metadata.name, iface.name);
    const binding = bindingOf(iface);

    if (binding === 'bridge' || binding === 'masquerade') {
      if (!(await linkExists(link))) {
        throw new LaunchError(`${what}: pod link ${link} does not exist (is the network attached to the pod?)`);
      }
      const common = { link, what, hostname: vm.metadata.name, dns };
      let result: BindingResult;
      if (binding === 'bridge') {
        result = await setupBridgeBinding({ ...common, networkIndex });
      } else {
        const m = await setupMasqueradeBinding({ ...common, iface, mac });
        nats.push(m.nat);
        result = m;
      }
      interfaces[iface.name] = result.nic;
      if (result.lease) dnsmasqConfigs.push(await startDnsmasq(result.lease, what));
    } else if (binding === 'sriov') {
      const info = deviceInfoFor(networkStatus(), link, what, 'PCI address of the SR-IOV VF');
      const address = info.pci?.['pci-address'];
      if (!address) throw new LaunchError(`${what}: device-info of link ${link} has no pci.pci-address`);
      interfaces[iface.name] = { kind: 'vfio', path: `/sys/bus/pci/devices/${address}` };
    } else if (binding === 'vdpa') {
      const info = deviceInfoFor(networkStatus(), link, what, 'vhost-vdpa device path');
      const path = info.vdpa?.path;
      if (!path) {
        throw new LaunchError(
          `${what}: device-info of link ${link} has no vdpa.path (driver ${info.vdpa?.driver ?? 'unknown'}); CH needs a vhost-vdpa device`,
        );
      }
      interfaces[iface.name] = { kind: 'vdpa', path };
    } else {
      const info = deviceInfoFor(networkStatus(), link, what, 'vhost-user socket');
      const vu = info['vhost-user'];
      if (!vu?.path) throw new LaunchError(`${what}: device-info of link ${link} has no vhost-user.path`);
      // device-info's mode is the role the consumer of the socket takes, which is CH here.
      const mode = vu.mode === 'server' ? 'Server' : 'Client';
      interfaces[iface.name] = { kind: 'vhostUser', socket: vu.path, mode, mac };
    }
  }

  if (nats.length) {
    mkdirSync(dirname(NFT_RULESET), { recursive: true });
    writeFileSync(NFT_RULESET, masqueradeRuleset(nats));
    await run(['nft', '-f', NFT_RULESET], { what: 'masquerade NAT: load nftables rules' });
  }
  return { interfaces, dnsmasqConfigs };
}

type Binding = 'bridge' | 'masquerade' | 'sriov' | 'vdpa' | 'vhostUser';

/** No binding means bridge (API contract). */
function bindingOf(iface: VmInterface): Binding {
  if (iface.masquerade) return 'masquerade';
  if (iface.sriov) return 'sriov';
  if (iface.vdpa) return 'vdpa';
  if (iface.vhostUser) return 'vhostUser';
  return 'bridge';
}
