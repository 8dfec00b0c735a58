/**
 * core/v1 Affinity, typed by hand with the Kubernetes API's own field names, so a misspelt field (`nodeAfinity`) fails
 * in tsc through the excess property check on object literals. The CRD keeps `affinity` opaque (the VM pod's own
 * validation checks it when the pod is created); these types add no runtime code and need no Kubernetes client library.
 * Type aliases rather than interfaces, so that they are assignable to Record<string, unknown> as manifest JSON.
 * Docs condensed from the Kubernetes API reference.
 */

/** Scheduling constraints of the VM pod. */
export type Affinity = {
  /** Node affinity scheduling rules for the pod. */
  nodeAffinity?: NodeAffinity;
  /** Inter-pod affinity: co-locate the pod with other pods (same node, zone, … as given by the topology key). */
  podAffinity?: PodAffinity;
  /** Inter-pod anti-affinity: keep the pod away from other pods (other node, zone, … as given by the topology key). */
  podAntiAffinity?: PodAntiAffinity;
};

/** Node affinity scheduling rules. */
export type NodeAffinity = {
  /** The pod is not scheduled onto a node that does not meet these requirements (not re-checked while it runs). */
  requiredDuringSchedulingIgnoredDuringExecution?: NodeSelector;
  /** The scheduler prefers nodes that meet these terms, by the sum of the weights of the terms a node matches. */
  preferredDuringSchedulingIgnoredDuringExecution?: PreferredSchedulingTerm[];
};

/** Terms ORed together; a node must match at least one. */
export type NodeSelector = {
  /** Required. A list of node selector terms; the terms are ORed. */
  nodeSelectorTerms: NodeSelectorTerm[];
};

/** Requirements ANDed together; an empty or null term matches no objects. */
export type NodeSelectorTerm = {
  /** Requirements on the node's labels. */
  matchExpressions?: NodeSelectorRequirement[];
  /** Requirements on the node's fields (`metadata.name`). */
  matchFields?: NodeSelectorRequirement[];
};

/** A selector requirement: a key, an operator and values. */
export type NodeSelectorRequirement = {
  /** The label (or field) key the selector applies to. */
  key: string;
  /** How the key relates to the values. */
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  /**
   * For In and NotIn: at least one value. For Exists and DoesNotExist: empty. For Gt and Lt: one value, an integer.
   */
  values?: string[];
};

/** A weighted node selector term. */
export type PreferredSchedulingTerm = {
  /** Weight of this term, 1–100. */
  weight: number;
  /** A node selector term, with the weight. */
  preference: NodeSelectorTerm;
};

/** Inter-pod affinity scheduling rules. */
export type PodAffinity = {
  /** Terms a node must meet for the pod to be scheduled there (ANDed). */
  requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
  /** Terms the scheduler prefers, by the sum of the weights of the terms a node matches. */
  preferredDuringSchedulingIgnoredDuringExecution?: WeightedPodAffinityTerm[];
};

/** Inter-pod anti-affinity scheduling rules. */
export type PodAntiAffinity = {
  /** Terms a node must meet for the pod to be scheduled there (ANDed). */
  requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
  /** Terms the scheduler prefers, by the sum of the weights of the terms a node matches. */
  preferredDuringSchedulingIgnoredDuringExecution?: WeightedPodAffinityTerm[];
};

/** A set of pods the pod should be co-located with (affinity) or kept away from (anti-affinity). */
export type PodAffinityTerm = {
  /** Label query over the pods this term is about. */
  labelSelector?: LabelSelector;
  /** Label query over namespaces; with `namespaces`, the union of both. @default - the pod's own namespace */
  namespaceSelector?: LabelSelector;
  /** Namespaces the term applies to. @default - the pod's own namespace */
  namespaces?: string[];
  /** Required. Node label whose value defines "co-located", e.g. `kubernetes.io/hostname` or `topology.kubernetes.io/zone`. */
  topologyKey: string;
  /** Pod label keys whose values (taken from the incoming pod) are ANDed with `labelSelector`. */
  matchLabelKeys?: string[];
  /** Pod label keys whose values (taken from the incoming pod) must differ, ANDed with `labelSelector`. */
  mismatchLabelKeys?: string[];
};

/** A pod affinity term with a weight. */
export type WeightedPodAffinityTerm = {
  /** Weight of this term, 1–100. */
  weight: number;
  /** Required. A pod affinity term, with the weight. */
  podAffinityTerm: PodAffinityTerm;
};

/** A label query; the requirements of matchLabels and matchExpressions are ANDed. An empty selector matches all. */
export type LabelSelector = {
  /** `{key: value}` pairs, each equal to a matchExpressions element with operator In and that one value. */
  matchLabels?: Record<string, string>;
  /** Label selector requirements, ANDed. */
  matchExpressions?: LabelSelectorRequirement[];
};

/** A label selector requirement: a key, an operator and values. */
export type LabelSelectorRequirement = {
  /** The label key the selector applies to. */
  key: string;
  /** How the key relates to the values. */
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  /** For In and NotIn: at least one value. For Exists and DoesNotExist: empty. */
  values?: string[];
};
