/**
 * What of a VirtualMachine the pod leaves out because the VM was stored before the current rules. The API server keeps
 * such a VM (validation ratcheting: unchanged fields are not checked again), so the renderer must still produce a pod
 * that the API server admits and that stays within the rules, and the controller says what was left out (Event
 * `SpecNotApplied`) instead of failing to create the pod forever.
 */
import type { VirtualMachineSpec } from '../api';
import { probeNotApplied } from './vm-pod-probe';

type Toleration = NonNullable<VirtualMachineSpec['tolerations']>[number];

/**
 * The VM's tolerations that reach its pod: those naming a taint key. A toleration without a key tolerates every taint
 * (operator Exists) — control-plane nodes and nodes other teams dedicated with taints — or is invalid on a pod
 * (operator Equal needs a key).
 */
export function podTolerations(spec: VirtualMachineSpec): Toleration[] | undefined {
  return spec.tolerations?.filter((t) => t.key !== undefined && t.key !== '');
}

/** Each field of the VM the pod leaves out, with why (for the controller's Event); empty for a VM within the rules. */
export function notAppliedToPod(spec: VirtualMachineSpec): string[] {
  const out: string[] = [];
  for (const field of ['livenessProbe', 'readinessProbe'] as const) {
    const probe = spec[field];
    const why = probe && probeNotApplied(probe);
    if (why) out.push(`spec.${field} (${why})`);
  }
  (spec.tolerations ?? []).forEach((t, i) => {
    if (t.key === undefined || t.key === '')
      out.push(`spec.tolerations[${i}] (no taint key: it would tolerate every taint)`);
  });
  return out;
}
