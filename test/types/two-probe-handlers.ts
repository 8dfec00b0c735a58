// Mistake: a probe with both httpGet and tcpSocket.
import type { VirtualMachineProps } from '../../constructs/cdk8s';

export const props: VirtualMachineProps = { livenessProbe: { httpGet: { port: 80 }, tcpSocket: { port: 22 } } };
