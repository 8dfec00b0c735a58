/**
 * Converts the OpenAPI 3.0 component schemas of the CH spec into JSON Schema (draft-07) definitions that a
 * standard validator (ajv) can run. OpenAPI 3.0 is a JSON Schema dialect with a few differences, handled here:
 * `nullable` becomes a `null` type, integer `format`s (int8 … uint64) become the numeric range the Rust type
 * accepts, `$ref`s are re-pointed at `#/definitions/`, and their sibling keywords are dropped (OpenAPI 3.0 ignores
 * them). Anything outside the subset the spec uses throws, so a future spec cannot be half-understood silently.
 */
import { refName, type OpenApiSchema } from './spec';

export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  deprecated?: boolean;
}

export interface JsonSchemaOptions {
  /**
   * Add `additionalProperties: false` to every object that lists its properties. CH itself ignores unknown keys
   * (reference section 5), so this is not for rejecting requests; the stand-in uses it to report which keys a real
   * CH would silently drop.
   */
  readonly closed?: boolean;
}

/** Inclusive value ranges of the integer formats the spec uses (the Rust integer types behind them). */
export const INTEGER_FORMAT_RANGES: Record<string, readonly [number, number]> = {
  int8: [-(2 ** 7), 2 ** 7 - 1],
  int16: [-(2 ** 15), 2 ** 15 - 1],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  // Doubles cannot hold 2^63 - 1 exactly; the nearest double is the honest bound for a JS validator.
  int64: [-(2 ** 63), 2 ** 63],
  uint8: [0, 2 ** 8 - 1],
  uint16: [0, 2 ** 16 - 1],
  uint32: [0, 2 ** 32 - 1],
  uint64: [0, 2 ** 64],
};

const KNOWN_KEYWORDS = new Set<string>([
  'type',
  '$ref',
  'description',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'default',
  'format',
  'minimum',
  'maximum',
  'nullable',
  'deprecated',
]);

/** Converts one OpenAPI schema object; `at` names it in error messages. */
export function toJsonSchema(schema: OpenApiSchema, options: JsonSchemaOptions = {}, at = '#'): JsonSchema {
  for (const key of Object.keys(schema)) {
    if (!KNOWN_KEYWORDS.has(key)) throw new Error(`${at}: OpenAPI keyword '${key}' is not handled by the converter`);
  }
  if (schema.$ref !== undefined) return { $ref: `#/definitions/${refName(schema.$ref)}` };

  const out: JsonSchema = {};
  if (schema.type !== undefined) out.type = schema.nullable ? [schema.type, 'null'] : schema.type;
  if (schema.description !== undefined) out.description = schema.description;
  if (schema.deprecated !== undefined) out.deprecated = schema.deprecated;
  if (schema.enum !== undefined) out.enum = schema.nullable ? [...schema.enum, null] : [...schema.enum];
  if (schema.default !== undefined) out.default = schema.default;

  let [minimum, maximum] = [schema.minimum, schema.maximum];
  if (schema.format !== undefined) {
    const range = INTEGER_FORMAT_RANGES[schema.format];
    if (!range || schema.type !== 'integer') throw new Error(`${at}: format '${schema.format}' is not handled`);
    // The stricter bound wins: `minimum: 1` on a uint64 stays 1.
    minimum = Math.max(minimum ?? -Infinity, range[0]);
    maximum = Math.min(maximum ?? Infinity, range[1]);
  }
  if (minimum !== undefined) out.minimum = minimum;
  if (maximum !== undefined) out.maximum = maximum;

  if (schema.properties !== undefined) {
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([k, v]) => [k, toJsonSchema(v, options, `${at}/properties/${k}`)]),
    );
  }
  if (schema.required !== undefined) out.required = [...schema.required];
  if (typeof schema.additionalProperties === 'object') {
    out.additionalProperties = toJsonSchema(schema.additionalProperties, options, `${at}/additionalProperties`);
  } else if (schema.additionalProperties !== undefined) {
    out.additionalProperties = schema.additionalProperties;
  } else if (options.closed && schema.properties !== undefined) {
    out.additionalProperties = false;
  }
  if (schema.items !== undefined) out.items = toJsonSchema(schema.items, options, `${at}/items`);
  return out;
}

/** Converts all component schemas into one root document whose `definitions` the `$ref`s resolve against. */
export function toJsonSchemaDocument(
  schemas: Record<string, OpenApiSchema>,
  options: JsonSchemaOptions = {},
): { definitions: Record<string, JsonSchema> } {
  return {
    definitions: Object.fromEntries(
      Object.entries(schemas).map(([name, s]) => [name, toJsonSchema(s, options, `#/components/schemas/${name}`)]),
    ),
  };
}
