/**
 * Cloud Hypervisor's official OpenAPI spec (v53.0, copied unchanged next to this file) and the few places where
 * CH's code disagrees with it. Two consumers read this module: `tools/ch-types.ts`, which generates `types.ts`
 * from it, and the CH stand-in used by tests, which validates every request body against it. Neither the
 * client nor any other run-time code imports it, so the YAML never has to ship in `lib/`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/** The OpenAPI 3.0 schema-object subset the CH spec uses (checked by the json-schema converter, which throws on anything else). */
export interface OpenApiSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  $ref?: string;
  description?: string;
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
  additionalProperties?: OpenApiSchema | boolean;
  items?: OpenApiSchema;
  enum?: unknown[];
  default?: unknown;
  format?: string;
  minimum?: number;
  maximum?: number;
  nullable?: boolean;
  deprecated?: boolean;
}

/** One REST route: `PUT /api/v1/vm.create` is `{ endpoint: 'vm.create', method: 'PUT', requestSchema: 'VmConfig' }`. */
export interface CloudHypervisorRoute {
  readonly endpoint: string;
  readonly method: 'GET' | 'PUT';
  /** Component schema of the JSON request body; absent for endpoints that take no body. */
  readonly requestSchema?: string;
}

export const CLOUD_HYPERVISOR_SPEC_VERSION = 'v53.0';
export const CLOUD_HYPERVISOR_SPEC_PATH = join(__dirname, 'cloud-hypervisor-v53.0.yaml');

/**
 * Where CH's code (the behaviour baseline of the reference page, section 5 "Wire quirks") differs from the v53.0
 * spec in a way a client must follow. Applied to the spec before types are generated and before the stand-in
 * validates, so both agree with what a real CH accepts.
 */
export const CODE_DIFFERENCES = {
  /**
   * The v53.0 spec spells the VmConfig array `generic-vhost-user`; the Rust field (and the spec on `main`) is
   * `generic_vhost_user`. CH ignores unknown keys, so the hyphenated key would be silently dropped.
   */
  renamedProperties: [{ schema: 'VmConfig', from: 'generic-vhost-user', to: 'generic_vhost_user' }],
  /** Fields that CH's Rust structs require (serde fails without them) but the spec leaves optional. */
  requiredByCode: {
    VmResizeDisk: ['id', 'desired_size'],
    VmResizeZone: ['id', 'desired_ram'],
    VmRemoveDevice: ['id'],
    VmSnapshotConfig: ['destination_url'],
    VmCoredumpData: ['destination_url'],
  } as Record<string, readonly string[]>,
} as const;

interface OpenApiOperation {
  requestBody?: { required?: boolean; content?: Record<string, { schema?: OpenApiSchema }> };
}

interface OpenApiDocument {
  openapi: string;
  servers?: { url: string }[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, OpenApiSchema> };
}

/** Reads and parses the copied spec (the file's first line is our provenance comment; YAML ignores it). */
export function readCloudHypervisorSpec(path: string = CLOUD_HYPERVISOR_SPEC_PATH): OpenApiDocument {
  const doc = parse(readFileSync(path, 'utf8')) as OpenApiDocument;
  if (!doc.openapi?.startsWith('3.0.') || !doc.components?.schemas || !doc.paths) {
    throw new Error(`${path} is not an OpenAPI 3.0 document with paths and components.schemas`);
  }
  return doc;
}

/** The component schemas as CH's code reads them: the spec with {@link CODE_DIFFERENCES} applied (a fresh copy). */
export function cloudHypervisorSchemas(
  doc: OpenApiDocument = readCloudHypervisorSpec(),
): Record<string, OpenApiSchema> {
  const schemas = structuredClone(doc.components.schemas);
  for (const { schema, from, to } of CODE_DIFFERENCES.renamedProperties) {
    const props = schemas[schema]?.properties;
    if (!props || !(from in props)) throw new Error(`spec drift: ${schema}.${from} no longer exists`);
    // Rebuild the object so the renamed key keeps its position (the generated types stay in spec order).
    schemas[schema].properties = Object.fromEntries(Object.entries(props).map(([k, v]) => [k === from ? to : k, v]));
  }
  for (const [schema, fields] of Object.entries(CODE_DIFFERENCES.requiredByCode)) {
    const target = schemas[schema];
    for (const field of fields) {
      if (!target?.properties?.[field]) throw new Error(`spec drift: ${schema}.${field} no longer exists`);
    }
    target.required = [...new Set([...(target.required ?? []), ...fields])];
  }
  return schemas;
}

/** The path every route lives under, from the spec's `servers[0].url` (`http://localhost/api/v1` → `/api/v1`). */
export function cloudHypervisorApiRoot(doc: OpenApiDocument = readCloudHypervisorSpec()): string {
  const url = doc.servers?.[0]?.url;
  if (!url) throw new Error('spec has no servers[0].url');
  return new URL(url).pathname.replace(/\/$/, '');
}

const REF_PREFIX = '#/components/schemas/';

/** The schema name a `$ref` points at (`#/components/schemas/VmConfig` → `VmConfig`). */
export function refName(ref: string): string {
  if (!ref.startsWith(REF_PREFIX)) throw new Error(`unsupported $ref ${ref}`);
  return ref.slice(REF_PREFIX.length);
}

/** Every route of the spec with its HTTP method and request-body schema. */
export function cloudHypervisorRoutes(doc: OpenApiDocument = readCloudHypervisorSpec()): CloudHypervisorRoute[] {
  const routes: CloudHypervisorRoute[] = [];
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (method !== 'get' && method !== 'put') throw new Error(`unexpected method ${method} on ${path}`);
      const ref = operation.requestBody?.content?.['application/json']?.schema?.$ref;
      routes.push({
        endpoint: path.replace(/^\//, ''),
        method: method === 'get' ? 'GET' : 'PUT',
        ...(ref ? { requestSchema: refName(ref) } : {}),
      });
    }
  }
  return routes;
}
