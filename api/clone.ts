/**
 * Deep copy of JSON data. Not `structuredClone`: that builds its result in Node's main realm, so arrays it returns
 * fail `instanceof Array` inside sandboxes such as jest's, where Pulumi's serializer then sends them as objects.
 */
export function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}
