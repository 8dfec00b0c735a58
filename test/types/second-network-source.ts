// Mistake: a network that is both the pod network and a Multus network.
import type { VirtualMachineProps } from '../../constructs/cdk8s';

export const props: VirtualMachineProps = {
  networks: [{ name: 'net', pod: {}, multus: { networkName: 'sriov-net' } }],
};
