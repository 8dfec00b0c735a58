// Mistake: `operater` instead of `operator` in a toleration.
import type { VirtualMachineProps } from '../../constructs/cdk8s';

export const props: VirtualMachineProps = { tolerations: [{ key: 'dedicated', operater: 'Exists' }] };
