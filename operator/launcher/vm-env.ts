/**
 * The VirtualMachine the launcher prepares, read from the environment variable the pod renderer sets. The API
 * server stored it with defaults applied; they are applied again here so a hand-written pod behaves the same.
 */
import type { VirtualMachineSpec } from '../../api';
import { defaultObject } from '../../api';
import { VM_ENV } from '../pod-layout';
import { LaunchError } from './failure';

/** What the launcher needs of the VM object. */
export interface LaunchVm {
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly uid?: string };
  readonly spec: VirtualMachineSpec;
}

export function readVm(env: NodeJS.ProcessEnv = process.env): LaunchVm {
  const raw = env[VM_ENV];
  if (!raw) throw new LaunchError(`${VM_ENV} is not set: the VM pod must carry the VirtualMachine as JSON`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new LaunchError(`${VM_ENV} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const vm = parsed as { kind?: unknown; metadata?: { name?: unknown }; spec?: { instance?: unknown } };
  if (vm?.kind !== 'VirtualMachine') throw new LaunchError(`${VM_ENV}: kind must be VirtualMachine`);
  if (typeof vm.metadata?.name !== 'string') throw new LaunchError(`${VM_ENV}: metadata.name is missing`);
  if (typeof vm.spec?.instance !== 'object') throw new LaunchError(`${VM_ENV}: spec.instance is missing`);
  return defaultObject(parsed as Parameters<typeof defaultObject>[0]) as unknown as LaunchVm;
}
