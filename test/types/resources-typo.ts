// Mistake: `request` instead of `requests` (Pulumi args are the same props).
import type { VirtualMachineArgs } from '../../constructs/pulumi';

export const args: VirtualMachineArgs = { resources: { request: { cpu: '2' } } };
