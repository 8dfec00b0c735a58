// Mistake: `nodeAfinity` instead of `nodeAffinity`.
import type { VirtualMachineProps } from '../../constructs/cdk8s';

export const props: VirtualMachineProps = {
  affinity: {
    nodeAfinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }],
      },
    },
  },
};
