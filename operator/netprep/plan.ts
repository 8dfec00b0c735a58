/**
 * Which VM interfaces need the pod network rebuilt — bridge and masquerade, each a bridge and a TAP in the pod — and
 * what each is made of. Read from the VirtualMachine alone (the daemon's copy from the API server, the launcher's from
 * its environment), so both sides agree on names without asking the pod.
 */
import type { VmInterface } from '../../api';
import { stableMac } from '../../constructs/virtual-machine';
import { LaunchError } from '../launcher/failure';
import { parseCidr, type Ipv4Cidr } from '../launcher/ipv4';
import type { LaunchVm } from '../launcher/vm-env';
import { bridgeName, podLinkName, tapName } from '../pod-layout';

export type Binding = 'bridge' | 'masquerade' | 'sriov' | 'vdpa' | 'vhostUser';

/** No binding means bridge (API contract). */
export function bindingOf(iface: VmInterface): Binding {
  if (iface.masquerade) return 'masquerade';
  if (iface.sriov) return 'sriov';
  if (iface.vdpa) return 'vdpa';
  if (iface.vhostUser) return 'vhostUser';
  return 'bridge';
}

/** Bindings whose guest NIC is a TAP on a bridge in the pod, built by netprep. */
export const isTapBinding = (b: Binding): b is 'bridge' | 'masquerade' => b === 'bridge' || b === 'masquerade';

/**
 * The API's default of `masquerade.cidr`. It repeats the schema's `default` (api/virtualmachine.ts declares it inline,
 * exporting no constant): the API server applies that default to what the daemon reads, so this one serves a VM object
 * that never went through it (a test's). Change both together.
 */
export const DEFAULT_MASQUERADE_CIDR = '10.0.2.0/30';

interface PlanCommon {
  /** Interface name (the key in NETWORK_READY). */
  readonly name: string;
  /** `spec.instance.interfaces[i] (name)`, for messages. */
  readonly what: string;
  /** The pod link of the interface's network (eth0, net<i>). */
  readonly link: string;
  readonly bridge: string;
  readonly tap: string;
}

export interface BridgePlan extends PlanCommon {
  readonly binding: 'bridge';
  readonly networkIndex: number;
}

export interface MasqueradePlan extends PlanCommon {
  readonly binding: 'masquerade';
  /** The guest's MAC: the spec's, or the stable one derived from the VM and interface names. */
  readonly mac: string;
  readonly cidr: Ipv4Cidr;
  readonly ports: NonNullable<NonNullable<VmInterface['masquerade']>['ports']>;
}

export type TapPlan = BridgePlan | MasqueradePlan;

/** The interface's network and pod link; fails naming the interface when the spec pairs it with nothing. */
export function networkOf(vm: LaunchVm, iface: VmInterface, i: number): { what: string; link: string; index: number } {
  const what = `spec.instance.interfaces[${i}] (${iface.name})`;
  const networks = vm.spec.networks ?? [];
  const index = networks.findIndex((n) => n.name === iface.name);
  if (index < 0) throw new LaunchError(`${what}: no network named ${iface.name} in spec.networks`);
  return { what, link: podLinkName(networks[index], index), index };
}

export function planTapInterfaces(vm: LaunchVm): TapPlan[] {
  return (vm.spec.instance.interfaces ?? []).flatMap((iface, i): TapPlan[] => {
    const binding = bindingOf(iface);
    if (!isTapBinding(binding)) return [];
    const { what, link, index } = networkOf(vm, iface, i);
    const common = { name: iface.name, what, link, bridge: bridgeName(link), tap: tapName(link) };
    if (binding === 'bridge') return [{ ...common, binding, networkIndex: index }];
    const cidrText = iface.masquerade?.cidr ?? DEFAULT_MASQUERADE_CIDR;
    let cidr: Ipv4Cidr;
    try {
      cidr = parseCidr(cidrText);
    } catch {
      throw new LaunchError(`${what}: masquerade.cidr ${cidrText} is not an IPv4 CIDR`);
    }
    // Network, gateway, guest and broadcast: a /30 is the smallest network that holds them.
    if (cidr.prefix > 30) throw new LaunchError(`${what}: masquerade.cidr ${cidrText} is smaller than a /30`);
    const mac = iface.mac ?? stableMac(vm.metadata.name, iface.name);
    return [{ ...common, binding, mac: mac.toLowerCase(), cidr, ports: iface.masquerade?.ports ?? [] }];
  });
}
