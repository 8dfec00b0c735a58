// Mistake: `prot` instead of `port` in a probe.
import type { VirtualMachineProps } from '../../constructs/cdk8s';

export const props: VirtualMachineProps = { readinessProbe: { httpGet: { prot: 80 } } };
