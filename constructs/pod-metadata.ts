/**
 * Which of a VirtualMachine's labels and annotations reach its VM pod. Many keys are instructions to whoever runs the
 * pod — Multus networks and the network-status the launcher trusts, AppArmor and seccomp profiles, Pod Security,
 * Calico or OVN addresses, mesh sidecars, kubevisor's own bookkeeping — so a tenant who may create VMs must not be able
 * to set them on a pod through the VM. The rule is by domain, because these systems own whole domains:
 *
 * a key is copied when it has no prefix, when its prefix is `app.kubernetes.io` (the recommended, purely descriptive
 * labels), or when its prefix is neither one of {@link RESERVED_DOMAINS} nor a subdomain of one.
 *
 * Left-out keys are dropped, not refused: the API server cannot check metadata with CEL, so refusing them at synth time
 * would make synth and the API server disagree. The controller says what it left out in an Event.
 */

/** Domains whose keys on a pod change how it is run, networked, confined or admitted (and their subdomains). */
export const RESERVED_DOMAINS: readonly string[] = [
  // Kubernetes itself: AppArmor, seccomp, Pod Security, node roles, bandwidth, … (k8s.io likewise).
  'kubernetes.io',
  'k8s.io',
  // kubevisor's own labels and annotations (VM, run, volumes).
  'kubevisor.io',
  // Multus and other CNI meta-plugins: networks, network-status, default network.
  'cni.cncf.io',
  'multus-cni.io',
  // CNI plugins that take addresses or pools from pod annotations, and service meshes that inject sidecars.
  'projectcalico.org',
  'ovn.org',
  'cilium.io',
  'istio.io',
  // OpenShift: security context constraint selection.
  'openshift.io',
];

/** Descriptive labels Kubernetes recommends for every object; nothing reads them to decide how a pod runs. */
const DESCRIPTIVE_PREFIX = 'app.kubernetes.io';

const inDomain = (prefix: string, domain: string) => prefix === domain || prefix.endsWith(`.${domain}`);

/** Whether a VM's label or annotation key may be copied to its VM pod. */
export function podMetadataKeyAllowed(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash < 0) return true;
  const prefix = key.slice(0, slash).toLowerCase();
  if (prefix === DESCRIPTIVE_PREFIX) return true;
  return !RESERVED_DOMAINS.some((d) => inDomain(prefix, d));
}

/** The entries whose keys may be copied to the VM pod. */
export function podMetadataFrom(entries: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(entries ?? {}).filter(([k]) => podMetadataKeyAllowed(k)));
}

/** The keys of a VM's labels and annotations that are not copied to its pod (for the controller's Event). */
export function podMetadataLeftOut(metadata: {
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}): string[] {
  const keys = new Set([...Object.keys(metadata.labels ?? {}), ...Object.keys(metadata.annotations ?? {})]);
  return [...keys].filter((k) => !podMetadataKeyAllowed(k));
}
