/**
 * Request-body validation for the CH stand-in: every component schema of the copied v53.0 spec (with CH's
 * code-vs-spec differences applied) compiled by ajv. A second, "closed" compilation adds
 * `additionalProperties: false` everywhere, only to list the keys a real CH would silently ignore.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { toJsonSchemaDocument } from '../../operator/cloudhypervisor/json-schema';
import { cloudHypervisorSchemas, type OpenApiSchema } from '../../operator/cloudhypervisor/spec';

export interface BodyCheck {
  /** Schema violations, one readable line each (`VmConfig/console/mode: must be one of …`); empty when valid. */
  readonly errors: string[];
  /** JSON pointers of keys the spec does not know; CH ignores them (reference/cloud-hypervisor.md §5). */
  readonly ignoredKeys: string[];
}

function compileAll(schemas: Record<string, OpenApiSchema>, closed: boolean): Map<string, ValidateFunction> {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  ajv.addSchema({ $id: 'cloud-hypervisor', ...toJsonSchemaDocument(schemas, { closed }) });
  const out = new Map<string, ValidateFunction>();
  for (const name of Object.keys(schemas)) {
    const validate = ajv.getSchema(`cloud-hypervisor#/definitions/${name}`);
    if (!validate) throw new Error(`ajv did not compile ${name}`);
    out.set(name, validate);
  }
  return out;
}

function describe(schemaName: string, e: ErrorObject): string {
  const where = `${schemaName}${e.instancePath}`;
  if (e.keyword === 'enum') {
    const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ');
    return `${where}: must be one of ${allowed}`;
  }
  return `${where}: ${e.message ?? e.keyword}`;
}

export class CloudHypervisorStandinSchemas {
  private readonly open: Map<string, ValidateFunction>;
  private readonly closed: Map<string, ValidateFunction>;

  constructor(schemas: Record<string, OpenApiSchema> = cloudHypervisorSchemas()) {
    this.open = compileAll(schemas, false);
    this.closed = compileAll(schemas, true);
  }

  check(schemaName: string, value: unknown): BodyCheck {
    const validate = this.open.get(schemaName);
    const closed = this.closed.get(schemaName);
    if (!validate || !closed) throw new Error(`unknown schema ${schemaName}`);
    if (!validate(value)) {
      return { errors: [...new Set((validate.errors ?? []).map((e) => describe(schemaName, e)))], ignoredKeys: [] };
    }
    closed(value);
    const ignoredKeys = (closed.errors ?? [])
      .filter((e) => e.keyword === 'additionalProperties')
      .map((e) => {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        return `${e.instancePath}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      });
    return { errors: [], ignoredKeys };
  }
}

/**
 * The schemas as the v53.0 binary was measured to read request bodies, beyond the spec-wide code differences of
 * operator/cloudhypervisor/spec.ts: `vm.create` accepts `{}` — a VmConfig without `payload` — and fails only at
 * `vm.boot` (reference/cloud-hypervisor.md §14). A fresh copy; the input is not changed.
 */
export function asV53Reads(schemas: Readonly<Record<string, OpenApiSchema>>): Record<string, OpenApiSchema> {
  const copy = structuredClone(schemas) as Record<string, OpenApiSchema>;
  const vmConfig = copy.VmConfig;
  if (!vmConfig?.required?.includes('payload')) throw new Error('spec drift: VmConfig no longer requires payload');
  vmConfig.required = vmConfig.required.filter((field) => field !== 'payload');
  return copy;
}

/** A copy of `value` without the keys at the given JSON pointers (as returned in {@link BodyCheck.ignoredKeys}). */
export function withoutKeys(value: unknown, pointers: readonly string[]): unknown {
  const copy = structuredClone(value);
  for (const pointer of pointers) {
    const steps = pointer
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = steps.pop();
    let node: unknown = copy;
    for (const step of steps) node = (node as Record<string, unknown> | undefined)?.[step];
    if (last !== undefined && node && typeof node === 'object') delete (node as Record<string, unknown>)[last];
  }
  return copy;
}
