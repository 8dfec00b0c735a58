/**
 * The VirtualMachine the launcher prepares, read from the file the pod's Secret volume provides (see
 * {@link VM_FILE}). The API server stored it with defaults applied; they are applied again here so a hand-written pod
 * behaves the same.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { VirtualMachineSpec } from '../../api';
import { defaultObject } from '../../api';
import { VM_ENV, VM_FILE } from '../pod-layout';
import { LaunchError } from './failure';

/** What the launcher needs of the VM object. */
export interface LaunchVm {
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly uid?: string };
  readonly spec: VirtualMachineSpec;
}

/** A Secret holds at most 1 MiB; anything larger was not written by the controller. */
const MAX_VM_BYTES = 1024 * 1024;

/**
 * Reads the VM from {@link VM_FILE}, or — for a launcher run by hand or by a test, never in a pod the controller
 * made — from the environment variable {@link VM_ENV} when that file does not exist.
 */
export function readVm(env: NodeJS.ProcessEnv = process.env, file: string = VM_FILE): LaunchVm {
  if (existsSync(file)) {
    // The kubelet's Secret volume links the key to its current version, so this path is followed on purpose: the
    // volume is the kubelet's, not the workload's.
    const size = statSync(file).size;
    if (size > MAX_VM_BYTES) throw new LaunchError(`${file} holds ${size} bytes, more than a Secret can`);
    return parseVm(readFileSync(file, 'utf8'), file);
  }
  const raw = env[VM_ENV];
  if (!raw) {
    throw new LaunchError(
      `${file} is missing: the VM pod must mount the VirtualMachine from the Secret the controller creates for it`,
    );
  }
  return parseVm(raw, VM_ENV);
}

/** Parses and defaults the VM JSON; `source` names where it came from in errors. */
export function parseVm(raw: string, source: string): LaunchVm {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new LaunchError(`${source} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const vm = parsed as { kind?: unknown; metadata?: { name?: unknown }; spec?: { instance?: unknown } };
  if (vm?.kind !== 'VirtualMachine') throw new LaunchError(`${source}: kind must be VirtualMachine`);
  if (typeof vm.metadata?.name !== 'string') throw new LaunchError(`${source}: metadata.name is missing`);
  if (typeof vm.spec?.instance !== 'object') throw new LaunchError(`${source}: spec.instance is missing`);
  return defaultObject(parsed as Parameters<typeof defaultObject>[0]) as unknown as LaunchVm;
}
