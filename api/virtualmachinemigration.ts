/** The VirtualMachineMigration kind: a request to live-migrate one VirtualMachine to another node. */
import type { VirtualMachineMigrationStatus } from './generated/types';
import { integer, object, string } from './schema';
import { conditions, name } from './common';

export const virtualMachineMigrationSpec = object(
  {
    vmName: name('The VirtualMachine to migrate, in the same namespace.'),
    timeoutSeconds: integer({
      description: 'Give up and keep the VM on its source node if the migration has not completed by then.',
      minimum: 1,
      maximum: 86400,
      default: 600,
    }),
  },
  {
    description: 'Desired state of the VirtualMachineMigration.',
    typeName: 'VirtualMachineMigrationSpec',
    required: ['vmName'],
    rules: [{ rule: 'self == oldSelf', message: 'spec is immutable: create a new migration instead' }],
  },
);

export const virtualMachineMigrationStatus = object(
  {
    phase: string({
      description: 'Migration phase.',
      enum: ['Pending', 'Scheduling', 'Scheduled', 'TargetReady', 'Running', 'Sent', 'Succeeded', 'Failed'] as const,
      maxLength: 16,
    }),
    observedGeneration: integer({ description: 'The .metadata.generation this status reflects.', int64: true }),
    sourceNodeName: string({ description: 'Node the VM leaves.', maxLength: 253 }),
    targetNodeName: string({ description: 'Node the VM moves to.', maxLength: 253 }),
    targetVMPodName: string({ description: 'VM pod receiving the VM.', maxLength: 253 }),
    targetVMPodUID: string({
      description:
        'UID of the receiving pod, recorded when the controller created it (no other pod of its name counts).',
      maxLength: 36,
    }),
    targetAddress: string({
      description: 'host:port where the target node daemon receives the VM (mutual TLS with per-node certificates).',
      maxLength: 300,
    }),
    transferredBytes: integer({ description: 'Bytes sent to the target so far.', minimum: 0, int64: true }),
    conditions,
  },
  { description: 'Observed state of the VirtualMachineMigration.', typeName: 'VirtualMachineMigrationStatus' },
);

// Written by `npm run types` from the declarations above (see api/virtualmachine.ts).
export type { VirtualMachineMigrationSpec, VirtualMachineMigrationStatus } from './generated/types';
export type MigrationPhase = NonNullable<VirtualMachineMigrationStatus['phase']>;

/** A migration's spec cannot change (the rule above): the Pulumi component replaces it instead. */
export const MIGRATION_IMMUTABLE_FIELDS = ['spec'] as const;
