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
   * Labels; copied to the VM pod.
   *
   * @default {}
   */
  readonly labels?: Record<string, string>;
  /**
   * Annotations; copied to the VM pod.
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
