/**
 * A tiny schema builder: each call returns a structural OpenAPI v3 fragment (exactly what goes into the
 * CRD) and carries the TypeScript type of the values it accepts. Declaring a kind once with these
 * builders therefore yields the CRD schema, the TS types (via {@link Infer}), the defaults and the
 * validation rules — nothing is written twice.
 */

/** A CEL rule placed in `x-kubernetes-validations`; the API server and the synth-time validator both run it. */
export interface Rule {
  /** CEL expression; `self` is the value at the schema node that holds the rule (and `oldSelf` for transition rules). */
  readonly rule: string;
  /** Message shown when the rule is false. */
  readonly message?: string;
  /** CEL expression producing the message; takes precedence over `message`. */
  readonly messageExpression?: string;
  /** Path relative to the node (e.g. `.disks`) that the error is reported on. */
  readonly fieldPath?: string;
  /** Machine-readable reason. @default FieldValueInvalid */
  readonly reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** The subset of OpenAPI v3 (JSONSchemaProps) that structural CRD schemas use. */
export interface OpenAPISchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, OpenAPISchema>;
  required?: string[];
  additionalProperties?: OpenAPISchema;
  items?: OpenAPISchema;
  enum?: unknown[];
  default?: unknown;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  anyOf?: OpenAPISchema[];
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-validations'?: Rule[];
}

declare const typeTag: unique symbol;

/** A schema node whose accepted values have the TypeScript type `T`. */
export interface Schema<T> {
  readonly openapi: OpenAPISchema;
  /** Phantom member carrying `T`; never set at run time. */
  readonly [typeTag]?: T;
}

/** The TypeScript type of the values a schema accepts. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

// Distributes over unions (T is a naked type parameter), so each member of a one-of union is flattened on its own.
type Simplify<T> = T extends unknown ? { [K in keyof T]: T[K] } & {} : never;

/**
 * What the generated TypeScript declarations (api/generated/types.ts, written by `npm run types`) need beyond the
 * OpenAPI fragment. Kept beside the fragment rather than in it, so the CRD stays exactly as the API server wants it.
 */
export interface DeclarationInfo {
  /** Declare this node as a named type (readable compiler messages, hover shows the name). */
  readonly typeName?: string;
  /** Doc of the named type when the node's own description is about where it is used (probes). */
  readonly typeDoc?: string;
  /** Object keys of which exactly one must be set (a discriminated union in TypeScript, a CEL rule in the CRD). */
  readonly exactlyOne?: readonly string[];
  /** Object keys of which at most one may be set. */
  readonly atMostOne?: readonly string[];
  /** Name of the union type of the one-of keys (e.g. VolumeSource). */
  readonly unionName?: string;
  /** Keys the schema knows only to refuse them with a message; the TypeScript type leaves them out. */
  readonly refused?: readonly string[];
  /** A hand-written type (opaque nodes holding core Kubernetes types) and the module, relative to api/, declaring it. */
  readonly external?: { readonly name: string; readonly from: string };
}

// Keyed by the OpenAPI fragment: the same fragment object is what parent nodes hold in `properties`/`items`.
const declarationInfo = new WeakMap<OpenAPISchema, DeclarationInfo>();

/** The declaration metadata of a schema node (empty when it has none). */
export function declarationInfoOf(openapi: OpenAPISchema): DeclarationInfo {
  return declarationInfo.get(openapi) ?? {};
}

interface Common<T> {
  readonly description: string;
  readonly default?: T;
  readonly rules?: readonly Rule[];
  /** Name of the generated TypeScript type for this node; inlined where it is used when omitted. */
  readonly typeName?: string;
  /** Doc of the named type, when it differs from the description of the field holding it. */
  readonly typeDoc?: string;
}

function node<T>(openapi: OpenAPISchema, opts: Common<T>, info: DeclarationInfo = {}): Schema<T> {
  const out: OpenAPISchema = { ...openapi, description: opts.description };
  if (opts.default !== undefined) out.default = opts.default;
  if (opts.rules?.length) out['x-kubernetes-validations'] = [...opts.rules];
  const all: DeclarationInfo = {
    ...info,
    ...(opts.typeName ? { typeName: opts.typeName } : {}),
    ...(opts.typeDoc ? { typeDoc: opts.typeDoc } : {}),
  };
  if (Object.keys(all).length) declarationInfo.set(out, all);
  return { openapi: out };
}

/** A string, optionally restricted to an enum, a pattern or a format. Always bounded by `maxLength`. */
export function string<const E extends string = string>(
  opts: Omit<Common<E>, 'default'> & {
    /** Default value; typed by the enum when there is one, but never narrows the type by itself. */
    readonly default?: NoInfer<E>;
    readonly enum?: readonly E[];
    readonly pattern?: string;
    readonly format?: 'byte';
    readonly minLength?: number;
    readonly maxLength: number;
  },
): Schema<E> {
  const o: OpenAPISchema = { type: 'string', maxLength: opts.maxLength };
  if (opts.enum) o.enum = [...opts.enum];
  if (opts.pattern) o.pattern = opts.pattern;
  if (opts.format) o.format = opts.format;
  if (opts.minLength !== undefined) o.minLength = opts.minLength;
  return node<E>(o, opts);
}

/** An integer (int32 unless `int64`), optionally bounded. */
export function integer(
  opts: Common<number> & { readonly minimum?: number; readonly maximum?: number; readonly int64?: boolean },
): Schema<number> {
  const o: OpenAPISchema = { type: 'integer', format: opts.int64 ? 'int64' : 'int32' };
  if (opts.minimum !== undefined) o.minimum = opts.minimum;
  if (opts.maximum !== undefined) o.maximum = opts.maximum;
  return node<number>(o, opts);
}

export function boolean(opts: Common<boolean>): Schema<boolean> {
  return node<boolean>({ type: 'boolean' }, opts);
}

/** Kubernetes' quantity regular expression (resource.Quantity), as in the core API's CRD schemas. */
export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

/** A resource quantity such as `2Gi` or `500m`; integers are accepted as the API server does. */
export function quantity(opts: Common<string | number>): Schema<string | number> {
  return node<string | number>(
    {
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      'x-kubernetes-int-or-string': true,
      pattern: QUANTITY_PATTERN,
      // Bounds the API server's CEL cost estimate for rules that parse quantities.
      maxLength: 64,
    },
    opts,
  );
}

/**
 * An int-or-string (`x-kubernetes-int-or-string`), such as a port given by number or by name. `minimum`/`maximum`
 * bound the integer form, `pattern` and `maxLength` the string form.
 */
export function intOrString(
  opts: Common<string | number> & {
    readonly minimum?: number;
    readonly maximum?: number;
    readonly pattern?: string;
    readonly maxLength: number;
  },
): Schema<string | number> {
  const o: OpenAPISchema = {
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    'x-kubernetes-int-or-string': true,
    maxLength: opts.maxLength,
  };
  if (opts.minimum !== undefined) o.minimum = opts.minimum;
  if (opts.maximum !== undefined) o.maximum = opts.maximum;
  if (opts.pattern) o.pattern = opts.pattern;
  return node<string | number>(o, opts);
}

type Props = Record<string, Schema<unknown>>;
type Fields<P extends Props, R extends keyof P, K extends keyof P> = { -readonly [F in K & R]: Infer<P[F]> } & {
  -readonly [F in Exclude<K, R>]?: Infer<P[F]>;
};
/** Exactly one key of T: that one present, every other one absent (`?: never`), so `{}` and two at once are refused. */
export type ExactlyOne<T> = {
  [K in keyof T]-?: { [F in K]-?: T[F] } & { [F in Exclude<keyof T, K>]?: never };
}[keyof T];
/** At most one key of T. */
export type AtMostOne<T> = ExactlyOne<T> | { [K in keyof T]?: never };
type ObjectOf<P extends Props, R extends keyof P, X extends keyof P = never, Y extends keyof P = never> = Simplify<
  Fields<P, R, Exclude<keyof P, X | Y>> &
    ([X] extends [never] ? unknown : ExactlyOne<{ [F in X]: Infer<P[F]> }>) &
    ([Y] extends [never] ? unknown : AtMostOne<{ [F in Y]: Infer<P[F]> }>)
>;

/**
 * An object with known properties; `required` lists the keys that must be present. `exactlyOne` / `atMostOne` make
 * a group of keys a discriminated union in TypeScript; the CEL rules saying the same for the API server stay in
 * `rules` (they carry the messages).
 */
export function object<
  P extends Props,
  const R extends keyof P & string = never,
  const X extends keyof P & string = never,
  const Y extends keyof P & string = never,
>(
  properties: P,
  opts: Omit<Common<unknown>, 'default'> & {
    readonly required?: readonly R[];
    readonly exactlyOne?: readonly X[];
    readonly atMostOne?: readonly Y[];
    /** Name of the generated union type of the `exactlyOne` / `atMostOne` keys. */
    readonly unionName?: string;
    /** Default value; never used to infer which keys are required. */
    readonly default?: NoInfer<Partial<Fields<P, R, keyof P>>>;
  },
): Schema<ObjectOf<P, R, X, Y>> {
  const o: OpenAPISchema = {
    type: 'object',
    properties: Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, v.openapi])),
  };
  if (opts.required?.length) o.required = [...opts.required];
  const info: DeclarationInfo = {
    ...(opts.exactlyOne?.length ? { exactlyOne: [...opts.exactlyOne] } : {}),
    ...(opts.atMostOne?.length ? { atMostOne: [...opts.atMostOne] } : {}),
    ...(opts.unionName ? { unionName: opts.unionName } : {}),
  };
  return node<ObjectOf<P, R, X, Y>>(o, opts as Common<ObjectOf<P, R, X, Y>>, info);
}

/**
 * Adds properties to an object schema that its TypeScript type leaves out: fields the schema must know so that a rule
 * can refuse them with a message that says why (an unknown field would only be pruned or reported as unknown).
 */
export function withRefusedFields<T>(schema: Schema<T>, fields: Record<string, Schema<unknown>>): Schema<T> {
  const properties = { ...schema.openapi.properties };
  for (const [k, v] of Object.entries(fields)) properties[k] = v.openapi;
  const openapi = { ...schema.openapi, properties };
  const info = declarationInfoOf(schema.openapi);
  declarationInfo.set(openapi, { ...info, refused: [...(info.refused ?? []), ...Object.keys(fields)] });
  return { openapi };
}

/** An object with no fields, used as a marker (e.g. `bridge: {}`). */
export function marker(opts: Common<Record<string, never>>): Schema<Record<string, never>> {
  return node<Record<string, never>>({ type: 'object' }, opts);
}

/** A list. `key` makes it a map-list keyed (and de-duplicated by the API server) on that field. */
export function array<T>(
  items: Schema<T>,
  opts: Common<T[]> & {
    readonly maxItems: number;
    readonly minItems?: number;
    /** Map-list key field(s): the API server keeps one item per key and merges by it. */
    readonly key?: string | readonly string[];
    readonly set?: boolean;
  },
): Schema<T[]> {
  const o: OpenAPISchema = { type: 'array', items: items.openapi, maxItems: opts.maxItems };
  if (opts.minItems !== undefined) o.minItems = opts.minItems;
  if (opts.key) {
    o['x-kubernetes-list-type'] = 'map';
    o['x-kubernetes-list-map-keys'] = typeof opts.key === 'string' ? [opts.key] : [...opts.key];
  } else if (opts.set) {
    o['x-kubernetes-list-type'] = 'set';
  } else {
    o['x-kubernetes-list-type'] = 'atomic';
  }
  return node<T[]>(o, opts);
}

/** A map from string keys to values. */
export function map<T>(
  values: Schema<T>,
  opts: Common<Record<string, T>> & { readonly maxProperties?: number },
): Schema<Record<string, T>> {
  const o: OpenAPISchema = { type: 'object', additionalProperties: values.openapi };
  if (opts.maxProperties !== undefined) o.maxProperties = opts.maxProperties;
  return node<Record<string, T>>(o, opts);
}

/**
 * An object whose inner structure the API server keeps as given (core Kubernetes types such as Affinity that
 * the VM pod passes through unchanged; the pod's own validation checks them when the pod is created).
 */
export function opaque<T extends object>(
  opts: Common<T> & {
    /** The hand-written type of the values (module relative to api/); `Record<string, unknown>` when omitted. */
    readonly external?: { readonly name: string; readonly from: string };
  },
): Schema<T> {
  return node<T>(
    { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    opts,
    opts.external ? { external: opts.external } : {},
  );
}
