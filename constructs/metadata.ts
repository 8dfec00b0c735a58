/** Object metadata accepted by the constructs and how it is rendered. */

/** Metadata of a kubevisor object. */
export interface ObjectMetadata {
  /**
   * Object name.
   *
   * @default - derived from the construct path (cdk8s) or the resource name (Pulumi)
   */
  readonly name?: string;
  /**
   * Namespace.
   *
   * @default - the namespace of the chart, provider or kubectl context
   */
  readonly namespace?: string;
  /**
   * Labels. A VirtualMachine's labels are copied to its VM pod, except keys whose prefix is, or is a subdomain of, a
   * reserved domain — kubernetes.io (but app.kubernetes.io is copied), k8s.io, kubevisor.io, cni.cncf.io,
   * multus-cni.io, projectcalico.org, ovn.org, cilium.io, istio.io, openshift.io — which are left out without an error
   * (the controller records a `MetadataNotCopied` Event), so a VM cannot change how its pod is networked, confined or
   * admitted. See `constructs/pod-metadata.ts`.
   *
   * @default {}
   */
  readonly labels?: Record<string, string>;
  /**
   * Annotations. Copied to the VM pod by the same rule as labels: keys in a reserved domain, e.g.
   * `k8s.v1.cni.cncf.io/networks` (the VM's `networks` produce it), `container.apparmor.security.beta.kubernetes.io/*`
   * or `kubevisor.io/*`, are left out.
   *
   * @default {}
   */
  readonly annotations?: Record<string, string>;
}

export function renderMetadata(
  defaultName: string,
  m: ObjectMetadata = {},
): {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
} {
  const out: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  } = {
    name: m.name ?? defaultName,
  };
  if (m.namespace) out.namespace = m.namespace;
  if (m.labels && Object.keys(m.labels).length) out.labels = { ...m.labels };
  if (m.annotations && Object.keys(m.annotations).length) out.annotations = { ...m.annotations };
  return out;
}
