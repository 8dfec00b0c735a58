/** The VirtualMachineMigration renderer, shared by every frontend. */
import type { KubevisorObject } from '../api';
import { API_VERSION, defaultObject } from '../api';
import type { ObjectMetadata } from './metadata';
import { renderMetadata } from './metadata';

/** Properties of a VirtualMachineMigration. */
export interface VirtualMachineMigrationProps {
  /**
   * Object metadata; put it in the VM's namespace.
   *
   * @default - a name derived from the construct path or resource name
   */
  readonly metadata?: ObjectMetadata;
  /** Name of the VirtualMachine to migrate (same namespace). */
  readonly vmName: string;
  /**
   * Give up after this many seconds, leaving the VM on its source node.
   *
   * @default 600
   */
  readonly timeoutSeconds?: number;
}

export function renderVirtualMachineMigration(name: string, props: VirtualMachineMigrationProps): KubevisorObject {
  const spec: Record<string, unknown> = { vmName: props.vmName };
  if (props.timeoutSeconds !== undefined) spec.timeoutSeconds = props.timeoutSeconds;
  return defaultObject({
    apiVersion: API_VERSION,
    kind: 'VirtualMachineMigration',
    metadata: renderMetadata(name, props.metadata),
    spec,
  });
}
