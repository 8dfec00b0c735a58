/**
 * Which of a VirtualMachine's labels and annotations reach its VM pod. Many keys are instructions to whoever runs the
 * pod — Multus networks and the network-status the launcher trusts, AppArmor and seccomp profiles, Pod Security,
 * Calico or OVN addresses, mesh and secret-agent sidecar injection, container-runtime options, kubevisor's own
 * bookkeeping — so a tenant who may create VMs must not be able to set them on a pod through the VM.
 *
 * The filter is a deny-list of domains, because these systems own whole domains: every key is copied except those
 * whose domain is one of {@link RESERVED_DOMAINS} or a subdomain of one. A key's domain is its prefix (before `/`);
 * `app.kubernetes.io`, the recommended and purely descriptive labels, is the one reserved subdomain that is copied. A
 * key without a prefix is copied unless it is a dotted name in or under a reserved domain, written forwards
 * (`cpu-quota.crio.io`) or reversed (`io.katacontainers.config.hypervisor.path`): container runtimes read such
 * unprefixed pod annotations. A deny-list cannot know every system a cluster runs; what it misses reaches the pod as a
 * label or annotation only, never as a field of its spec.
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
  // CNI plugins that take addresses or pools from pod annotations.
  'projectcalico.org',
  'ovn.org',
  'cilium.io',
  // Sidecar injectors: a container added to the VM pod would share its network and intercept the guest's traffic.
  // Istio (sidecar.istio.io included), Linkerd, HashiCorp's Vault agent and Consul Connect, Dapr, OpenTelemetry, Kuma.
  'istio.io',
  'linkerd.io',
  'hashicorp.com',
  'dapr.io',
  'opentelemetry.io',
  'kuma.io',
  // Container runtimes that take options from pod annotations (devices, user namespaces, the hypervisor of Kata).
  'crio.io',
  'katacontainers.io',
  'containerd.io',
  'containers.io',
  // OpenShift: security context constraint selection.
  'openshift.io',
];

/** Descriptive labels Kubernetes recommends for every object; nothing reads them to decide how a pod runs. */
const DESCRIPTIVE_PREFIX = 'app.kubernetes.io';

const inDomain = (name: string, domain: string) => name === domain || name.endsWith(`.${domain}`);
const reserved = (name: string) => RESERVED_DOMAINS.some((d) => inDomain(name, d));

/** Whether a label or annotation key is in a reserved domain, so that it is not copied from a VM to its pod. */
export function isReservedMetadataKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash >= 0) {
    const prefix = key.slice(0, slash).toLowerCase();
    return prefix !== DESCRIPTIVE_PREFIX && reserved(prefix);
  }
  const name = key.toLowerCase();
  return name.includes('.') && (reserved(name) || reserved(name.split('.').reverse().join('.')));
}

/** The entries whose keys are copied to the VM pod (all but the reserved ones). */
export function podMetadataFrom(entries: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(entries ?? {}).filter(([k]) => !isReservedMetadataKey(k)));
}

/** The keys of a VM's labels and annotations that are not copied to its pod (for the controller's Event). */
export function podMetadataLeftOut(metadata: {
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}): string[] {
  const keys = new Set([...Object.keys(metadata.labels ?? {}), ...Object.keys(metadata.annotations ?? {})]);
  return [...keys].filter(isReservedMetadataKey);
}
