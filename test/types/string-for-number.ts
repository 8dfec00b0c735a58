// Mistake: a string where a number is expected.
import type { VirtualMachineProps } from '../../constructs/cdk8s';

export const props: VirtualMachineProps = { cpu: { sockets: '2' } };
