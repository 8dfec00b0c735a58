/**
 * Structural defaulting, as the API server applies it: for every object that is present, each missing property
 * whose schema has a `default` gets a copy of it; then the walk continues into every value, defaulted ones
 * included, through objects, list items and map values. `null` values are dropped first (the API server prunes
 * nulls of non-nullable fields before defaulting).
 */
import type { OpenAPISchema } from './schema';
import { clone } from './clone';

export function applyDefaults<T>(schema: OpenAPISchema, value: T): T {
  return walk(schema, value) as T;
}

function walk(s: OpenAPISchema, v: unknown): unknown {
  if (v === null || v === undefined) return v;
  if (Array.isArray(v)) {
    return s.items ? v.map((x) => walk(s.items!, x)) : v;
  }
  if (typeof v !== 'object') return v;
  const src = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(src)) if (x !== null && x !== undefined) out[k] = x;
  if (s.properties) {
    for (const [k, ps] of Object.entries(s.properties)) {
      if (out[k] === undefined && ps.default !== undefined) out[k] = clone(ps.default);
      if (out[k] !== undefined) out[k] = walk(ps, out[k]);
    }
  } else if (s.additionalProperties) {
    for (const k of Object.keys(out)) out[k] = walk(s.additionalProperties, out[k]);
  }
  return out;
}
