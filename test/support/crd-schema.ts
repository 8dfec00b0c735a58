/** ajv validation of objects against the committed CRD files in deploy/crds (as kubectl users get them). */
import Ajv from 'ajv';
import type { ValidateFunction } from 'ajv';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const ROOT = join(__dirname, '..', '..');

interface Crd {
  spec: { names: { kind: string }; versions: { schema: { openAPIV3Schema: object } }[] };
}

/** One ajv validator per kind, compiled from deploy/crds. */
export function crdValidators(): Map<string, ValidateFunction> {
  // Non-strict: the schemas carry x-kubernetes-* keywords. The CRD formats are declared so ajv checks them too.
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && Math.abs(n) <= 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat('byte', /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
  const out = new Map<string, ValidateFunction>();
  const dir = join(ROOT, 'deploy', 'crds');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml'))) {
    const crd = parse(readFileSync(join(dir, f), 'utf8')) as Crd;
    out.set(crd.spec.names.kind, ajv.compile(crd.spec.versions[0].schema.openAPIV3Schema));
  }
  return out;
}
