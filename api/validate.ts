/**
 * Synth-time validation with the API server's semantics: structural OpenAPI checks (types, enums, patterns,
 * bounds, required fields, list-map key uniqueness, unknown fields as with `fieldValidation=Strict`) and then
 * every CEL rule in `x-kubernetes-validations`, including transition rules when an old object is given.
 * Errors carry the same field paths the API server reports.
 */
import type { OpenAPISchema, Rule } from './schema';
import { compile } from './cel/library';

/** One validation error, shaped like the API server's `field.Error`. */
export interface FieldError {
  /** Field path, e.g. `spec.instance.cpu.sockets` or `spec.volumes[1]`. */
  readonly field: string;
  /** The kind of error, as the API server names it. */
  readonly type:
    | 'Required value'
    | 'Invalid value'
    | 'Unsupported value'
    | 'Duplicate value'
    | 'Too long'
    | 'Too many'
    | 'Forbidden'
    | 'Unknown field';
  /** What is wrong and what to do. */
  readonly detail: string;
  /**
   * Set on errors of CEL rules: the value at `field`. The API server words a rule's failure with the kind of the
   * object the rule sits on (`Invalid value: "object"`); synth-time messages show this value instead (explain.ts).
   */
  readonly rule?: {
    readonly value: unknown;
    /**
     * For a rule that asks something of every item of a list or map (`<list>.all(x, …)`): the items that fail it,
     * as paths (`spec.instance.disks[1]`, `…requests[memory]`) with the item's name when it has one. The API server
     * names none of them; synth-time messages do.
     */
    readonly offenders?: readonly string[];
  };
}

/** `field: Type: detail`, the format `kubectl` prints. */
export function formatFieldError(e: FieldError): string {
  if (e.type === 'Unknown field') return `unknown field "${e.field}"`;
  return `${e.field || '<root>'}: ${e.type}${e.detail ? `: ${e.detail}` : ''}`;
}

const json = (v: unknown) => JSON.stringify(v);
const kindOf = (v: unknown) =>
  Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v === 'object' ? 'object' : typeof v;

/** Validates `value` (already defaulted) against `schema`; `old` enables transition rules. */
export function validateValue(schema: OpenAPISchema, value: unknown, path: string, old?: unknown): FieldError[] {
  const errors: FieldError[] = [];
  structural(schema, value, path, errors);
  // As in the API server, errors that leave values of the wrong shape (wrong type, unsupported enum value,
  // missing required field, too long, too many) stop CEL from running; other schema errors do not.
  if (errors.some((e) => BLOCKING.has(e.type) || e.detail.includes(' in body must be of type '))) {
    errors.push({
      field: path,
      type: 'Invalid value',
      detail:
        '"null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation',
    });
  } else {
    cel(schema, value, old, path, errors);
  }
  return errors;
}

const BLOCKING = new Set<FieldError['type']>(['Unsupported value', 'Required value', 'Too long', 'Too many']);

function structural(s: OpenAPISchema, v: unknown, path: string, errors: FieldError[]): void {
  if (s['x-kubernetes-int-or-string']) {
    if (!(typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v)))) {
      errors.push({
        field: path,
        type: 'Invalid value',
        detail: `${json(kindOf(v))}: ${path} in body must be of type integer,string: ${json(kindOf(v))}`,
      });
      return;
    }
    if (typeof v === 'string') stringChecks(s, v, path, errors);
    // As in the API server, numeric bounds apply to the integer form only, string checks to the string form.
    else numberChecks(s, v, path, errors);
    return;
  }
  switch (s.type) {
    case 'object': {
      if (kindOf(v) !== 'object') return typeError(s, v, path, errors);
      const o = v as Record<string, unknown>;
      for (const r of s.required ?? []) {
        if (o[r] === undefined) errors.push({ field: join(path, r), type: 'Required value', detail: '' });
      }
      if (s.maxProperties !== undefined && Object.keys(o).length > s.maxProperties) {
        errors.push({
          field: path,
          type: 'Too many',
          detail: `${Object.keys(o).length}: must have at most ${s.maxProperties} items`,
        });
      }
      for (const [k, x] of Object.entries(o)) {
        // The API server validates metadata itself (see kinds.ts); the CRD schema only says it is an object.
        if (x === undefined || (path === '' && k === 'metadata')) continue;
        const ps = s.properties?.[k] ?? s.additionalProperties;
        if (ps) structural(ps, x, join(path, k), errors);
        else if (!s['x-kubernetes-preserve-unknown-fields'])
          errors.push({ field: join(path, k), type: 'Unknown field', detail: '' });
      }
      return;
    }
    case 'array': {
      if (!Array.isArray(v)) return typeError(s, v, path, errors);
      if (s.maxItems !== undefined && v.length > s.maxItems) {
        errors.push({ field: path, type: 'Too many', detail: `${v.length}: must have at most ${s.maxItems} items` });
        return;
      }
      if (s.minItems !== undefined && v.length < s.minItems) {
        errors.push({
          field: path,
          type: 'Invalid value',
          detail: `${v.length}: ${path} in body should have at least ${s.minItems} items`,
        });
      }
      v.forEach((x, i) => s.items && structural(s.items, x, `${path}[${i}]`, errors));
      uniqueness(s, v, path, errors);
      return;
    }
    case 'string':
      if (typeof v !== 'string') return typeError(s, v, path, errors);
      stringChecks(s, v, path, errors);
      return;
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v)) return typeError(s, v, path, errors);
      numberChecks(s, v, path, errors);
      return;
    case 'number':
      if (typeof v !== 'number') return typeError(s, v, path, errors);
      numberChecks(s, v, path, errors);
      return;
    case 'boolean':
      if (typeof v !== 'boolean') return typeError(s, v, path, errors);
      return;
  }
}

function typeError(s: OpenAPISchema, v: unknown, path: string, errors: FieldError[]): void {
  errors.push({
    field: path,
    type: 'Invalid value',
    detail: `${json(kindOf(v))}: ${path} in body must be of type ${s.type}: ${json(kindOf(v))}`,
  });
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function stringChecks(s: OpenAPISchema, v: string, path: string, errors: FieldError[]): void {
  if (s.enum && !s.enum.includes(v)) {
    errors.push({
      field: path,
      type: 'Unsupported value',
      detail: `${json(v)}: supported values: ${s.enum.map(json).join(', ')}`,
    });
    return;
  }
  // The API server measures maxLength in characters (runes) and reports it as "Too long".
  if (s.maxLength !== undefined && [...v].length > s.maxLength) {
    errors.push({ field: path, type: 'Too long', detail: `may not be more than ${s.maxLength} bytes` });
    return;
  }
  if (s.minLength !== undefined && [...v].length < s.minLength) {
    errors.push({
      field: path,
      type: 'Invalid value',
      detail: `${json(v)}: ${path} in body should be at least ${s.minLength} chars long`,
    });
    return;
  }
  if (s.pattern && !new RegExp(s.pattern, 'u').test(v)) {
    errors.push({
      field: path,
      type: 'Invalid value',
      detail: `${json(v)}: ${path} in body should match '${s.pattern}'`,
    });
    return;
  }
  if (s.format === 'byte' && !BASE64.test(v)) {
    errors.push({
      field: path,
      type: 'Invalid value',
      detail: `${json(v)}: ${path} in body must be of type byte: ${json(v)}`,
    });
  }
}

function numberChecks(s: OpenAPISchema, v: number, path: string, errors: FieldError[]): void {
  if (s.minimum !== undefined && v < s.minimum) {
    errors.push({
      field: path,
      type: 'Invalid value',
      detail: `${v}: ${path} in body should be greater than or equal to ${s.minimum}`,
    });
  }
  if (s.maximum !== undefined && v > s.maximum) {
    errors.push({
      field: path,
      type: 'Invalid value',
      detail: `${v}: ${path} in body should be less than or equal to ${s.maximum}`,
    });
  }
  if (s.format === 'int32' && (v > 2147483647 || v < -2147483648)) {
    errors.push({ field: path, type: 'Invalid value', detail: `${v}: ${path} in body must be of type int32` });
  }
}

function uniqueness(s: OpenAPISchema, v: unknown[], path: string, errors: FieldError[]): void {
  const type = s['x-kubernetes-list-type'];
  if (type !== 'map' && type !== 'set') return;
  const keys = s['x-kubernetes-list-map-keys'] ?? [];
  const seen = new Set<string>();
  v.forEach((x, i) => {
    const id = type === 'map' ? json(keys.map((k) => (x as Record<string, unknown>)[k])) : json(x);
    if (seen.has(id)) {
      const shown = type === 'map' ? Object.fromEntries(keys.map((k) => [k, (x as Record<string, unknown>)[k]])) : x;
      errors.push({ field: `${path}[${i}]`, type: 'Duplicate value', detail: json(shown) });
    }
    seen.add(id);
  });
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** Converts JSON to CEL values following the schema: integers become bigint, objects Maps. */
export function toCel(s: OpenAPISchema | undefined, v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => toCel(s?.items, x));
  if (v !== null && typeof v === 'object') {
    const m = new Map<string, unknown>();
    for (const [k, x] of Object.entries(v)) {
      if (x !== undefined) m.set(k, toCel(s?.properties?.[k] ?? s?.additionalProperties, x));
    }
    return m;
  }
  if (typeof v === 'number' && Number.isInteger(v) && s?.type !== 'number') return BigInt(v);
  return v;
}

function cel(s: OpenAPISchema, v: unknown, old: unknown, path: string, errors: FieldError[]): void {
  if (v === undefined || v === null) return;
  const rules = s['x-kubernetes-validations'];
  if (rules) {
    for (const r of rules) {
      const transition = /\boldSelf\b/.test(r.rule);
      if (transition && old === undefined) continue;
      const bindings: Record<string, unknown> = { self: toCel(s, v) };
      if (transition) bindings.oldSelf = toCel(s, old);
      const res = compile(r.rule)(bindings);
      if ('value' in res && res.value === true) continue;
      errors.push(ruleError(r, bindings, path, v, 'error' in res ? res.error : undefined));
    }
  }
  if (s.properties && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const oo = old as Record<string, unknown> | undefined;
    for (const [k, ps] of Object.entries(s.properties)) {
      if (o[k] !== undefined) cel(ps, o[k], oo?.[k], join(path, k), errors);
    }
  } else if (s.additionalProperties && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      cel(s.additionalProperties, x, (old as Record<string, unknown> | undefined)?.[k], join(path, k), errors);
    }
  } else if (s.items && Array.isArray(v)) {
    // Old items are correlated only for map-lists (by key), as in the API server.
    const keys = s['x-kubernetes-list-type'] === 'map' ? (s['x-kubernetes-list-map-keys'] ?? []) : undefined;
    const olds = Array.isArray(old) ? (old as Record<string, unknown>[]) : [];
    v.forEach((x, i) => {
      const ox = keys ? olds.find((o) => keys.every((k) => o?.[k] === (x as Record<string, unknown>)[k])) : undefined;
      cel(s.items!, x, ox, `${path}[${i}]`, errors);
    });
  }
}

function ruleError(
  r: Rule,
  bindings: Record<string, unknown>,
  path: string,
  v: unknown,
  evalError?: string,
): FieldError {
  const field = r.fieldPath ? path + r.fieldPath : path;
  const offenders = failingItems(r.rule, bindings, path);
  const rule = { value: r.fieldPath ? valueAt(v, r.fieldPath) : v, ...(offenders.length ? { offenders } : {}) };
  let detail: string;
  if (evalError !== undefined) {
    detail = `${json(kindOf(v))}: ${evalError}`;
    return { field, type: 'Invalid value', detail, rule };
  }
  let message = r.message ?? `failed rule: ${r.rule}`;
  if (r.messageExpression) {
    const m = compile(r.messageExpression)(bindings);
    if ('value' in m && typeof m.value === 'string') message = m.value;
  }
  switch (r.reason) {
    case 'FieldValueForbidden':
      return { field, type: 'Forbidden', detail: message, rule };
    case 'FieldValueRequired':
      return { field, type: 'Required value', detail: message, rule };
    case 'FieldValueDuplicate':
      return { field, type: 'Duplicate value', detail: message, rule };
    default:
      return { field, type: 'Invalid value', detail: `${json(kindOf(v))}: ${message}`, rule };
  }
}

/** The value at a rule's fieldPath (`.a.b`, as kubevisor's rules write it) below `v`; undefined when absent. */
function valueAt(v: unknown, fieldPath: string): unknown {
  let at: unknown = v;
  for (const key of fieldPath.split('.').filter(Boolean)) {
    at = at !== null && typeof at === 'object' && !Array.isArray(at) ? (at as Record<string, unknown>)[key] : undefined;
  }
  return at;
}

/**
 * A rule `[!has(…) || …] <self.path>.all(<x>, <predicate>)`: the items of `<self.path>` for which the predicate is
 * false, each as a path below `path` with its `name` when it has one (at most 5). Any other rule: none.
 */
function failingItems(ruleText: string, bindings: Record<string, unknown>, path: string): string[] {
  const m = /^(?:!has\([\w.]+\) \|\| )*self((?:\.\w+)+)\.all\((\w+), (.*)\)$/.exec(ruleText);
  if (!m) return [];
  const [, listPath, variable, predicate] = m;
  // The CEL value of self (toCel: Maps and arrays), walked rather than evaluated: items stay the values the rule saw.
  let list: unknown = bindings.self;
  for (const key of listPath.split('.').slice(1)) list = list instanceof Map ? list.get(key) : undefined;
  const entries: [string, unknown][] = Array.isArray(list)
    ? list.map((item, i) => [`[${i}]`, item])
    : list instanceof Map
      ? [...list.keys()].map((k) => [`[${String(k).slice(0, 63)}]`, k])
      : [];
  const test = compile(predicate);
  const failing: string[] = [];
  for (const [at, item] of entries) {
    const res = test({ ...bindings, [variable]: item });
    if ('value' in res && res.value === true) continue;
    const name = item instanceof Map ? item.get('name') : undefined;
    failing.push(`${path}${listPath}${at}${typeof name === 'string' ? ` (${json(name)})` : ''}`);
    if (failing.length === 5) break;
  }
  return failing;
}
