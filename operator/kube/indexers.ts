// Ready-made informer indexers: functions from an object to the index values it is filed under.
import type { KubeObject } from './object';

export type Indexer<T> = (object: T) => string[];

/** Objects by the UID of each owner, e.g. VM pods by their VirtualMachine's UID. */
export function byOwnerUid<T extends KubeObject>(object: T): string[] {
  return (object.metadata.ownerReferences ?? []).map((ref) => ref.uid);
}

/** Objects by the UID of their controller owner only. */
export function byControllerUid<T extends KubeObject>(object: T): string[] {
  const ref = (object.metadata.ownerReferences ?? []).find((r) => r.controller === true);
  return ref ? [ref.uid] : [];
}

/** Objects by the value of one label (objects without the label are not indexed). */
export function byLabel<T extends KubeObject>(label: string): Indexer<T> {
  return (object) => {
    const value = object.metadata.labels?.[label];
    return value === undefined ? [] : [value];
  };
}

/** Objects by namespace. */
export function byNamespace<T extends KubeObject>(object: T): string[] {
  return [object.metadata.namespace ?? ''];
}
