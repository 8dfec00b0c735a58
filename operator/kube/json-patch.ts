// JSON Patch (RFC 6902) documents for guarded finalizer changes. The `test` op on resourceVersion
// makes the server apply the patch only to the exact object the caller looked at: removing
// "index 2" of a list is only right if the list is still the one we read (Pepr's unguarded
// replace of the whole array can drop a finalizer another controller just added).
import type { KubeObject } from './object';

export type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

/** Escapes one JSON Pointer (RFC 6901) segment: `~` → `~0`, `/` → `~1`. */
export function pointerSegment(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Removes finalizer `name` from `object` as read: test resourceVersion, test that the entry at its
 * index is still `name`, remove that index. Undefined when the object does not carry the finalizer.
 */
export function removeFinalizerPatch(object: KubeObject, name: string): JsonPatchOperation[] | undefined {
  const finalizers = object.metadata.finalizers ?? [];
  const index = finalizers.indexOf(name);
  if (index < 0) return undefined;
  return [
    { op: 'test', path: '/metadata/resourceVersion', value: requireResourceVersion(object) },
    { op: 'test', path: `/metadata/finalizers/${index}`, value: name },
    { op: 'remove', path: `/metadata/finalizers/${index}` },
  ];
}

/** Adds finalizer `name` to `object` as read. Undefined when it is already there. */
export function addFinalizerPatch(object: KubeObject, name: string): JsonPatchOperation[] | undefined {
  const finalizers = object.metadata.finalizers;
  if (finalizers?.includes(name)) return undefined;
  const test: JsonPatchOperation = {
    op: 'test',
    path: '/metadata/resourceVersion',
    value: requireResourceVersion(object),
  };
  // `-` appends; with no list yet the whole list is added (appending to a missing list fails).
  return finalizers && finalizers.length > 0
    ? [test, { op: 'add', path: '/metadata/finalizers/-', value: name }]
    : [test, { op: 'add', path: '/metadata/finalizers', value: [name] }];
}

function requireResourceVersion(object: KubeObject): string {
  const rv = object.metadata.resourceVersion;
  if (!rv) {
    throw new Error(
      `guarded patch of ${object.kind} ${object.metadata.name ?? ''}: the object has no resourceVersion (read it from the API first)`,
    );
  }
  return rv;
}
