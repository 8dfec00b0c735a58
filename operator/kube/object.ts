// The shape every Kubernetes object shares, and the namespace/name keys the caches and the work
// queue use. Kept apart from the client so that pure code (renderers, reconcile logic) can import
// it without pulling in node:https.

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  /** Opaque: compare for equality only, never order (API conventions forbid parsing it). */
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  [key: string]: unknown;
}

/** Any Kubernetes object; callers narrow it with their own types. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** A list answer (`PodList`, …): items carry no apiVersion/kind of their own. */
export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

/**
 * The work-queue and cache key of an object: `namespace/name`, or `name` for cluster-scoped
 * objects (the same convention as client-go's MetaNamespaceKeyFunc, so logs read the same).
 */
export function objectKey(object: { metadata: ObjectMeta }): string {
  return keyOf(object.metadata.namespace, object.metadata.name ?? '');
}

export function keyOf(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** Inverse of objectKey. */
export function splitObjectKey(key: string): { namespace?: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/**
 * True when `a` and `b` are the same JSON document: key order does not matter (the API server returns the keys of a
 * custom resource sorted, while the controller builds them in its own order) and undefined members count as absent.
 * A write decided by comparing serialisations would change nothing but still cost a request.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((v, i) => sameJson(v === undefined ? null : v, other[i] ?? null));
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
  for (const k of keys) {
    const u = x[k];
    const v = y[k];
    if (u === undefined && v === undefined) continue;
    if (!sameJson(u, v)) return false;
  }
  return true;
}
