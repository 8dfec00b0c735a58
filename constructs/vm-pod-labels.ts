/**
 * The labels every VM pod carries, for users who put a Service or a NetworkPolicy in front of a VM. Re-exported by
 * operator/pod-layout.ts (the operator's one list of pod conventions) and by every entry point.
 */

/** Label on every VM pod naming its VM. */
export const VM_LABEL = 'kubevisor.io/vm';
/**
 * Label on every VM pod with the VM run it belongs to (status.restarts when it was created). The controller never
 * deletes a pod of a run newer than the VM status it reads, so a stale cache cannot make it kill a fresh pod.
 */
export const RUN_LABEL = 'kubevisor.io/run';

/**
 * The label selector of a VM's pods (any run, and a migration's receiving pod): a Service with it reaches the VM
 * wherever it runs. Only the pod of the running VM is Ready (readiness follows the guest), so a Service sends
 * traffic to the guest that answers.
 */
export const vmPodSelector = (vmName: string): Record<string, string> => ({ [VM_LABEL]: vmName });
