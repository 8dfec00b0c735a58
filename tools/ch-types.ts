/**
 * Generates `operator/cloudhypervisor/types.ts` — the TypeScript shapes of Cloud Hypervisor's request and response
 * bodies — from the copied v53.0 OpenAPI spec, with CH's known code-vs-spec differences applied (see
 * `CODE_DIFFERENCES` in `operator/cloudhypervisor/spec.ts`). The types are therefore written nowhere by hand, and
 * `test/unit/cloudhypervisor/types-fresh.test.ts` fails when the checked-in file is stale.
 *
 * Usage: npx tsx tools/ch-types.ts        (rewrites the file)
 *        npx tsx tools/ch-types.ts --check (exits 1 when the file is stale)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CLOUD_HYPERVISOR_SPEC_VERSION,
  CODE_DIFFERENCES,
  cloudHypervisorSchemas,
  refName,
  type OpenApiSchema,
} from '../operator/cloudhypervisor/spec';

export const CH_TYPES_PATH = join(__dirname, '..', 'operator', 'cloudhypervisor', 'types.ts');

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function docComment(lines: string[], indent: string): string {
  const text = lines.flatMap((l) => l.trimEnd().split('\n')).map((l) => l.trimEnd());
  while (text.length > 0 && text[text.length - 1] === '') text.pop();
  if (text.length === 0) return '';
  if (text.length === 1) return `${indent}/** ${text[0]} */\n`;
  return `${indent}/**\n${text.map((l) => (l === '' ? `${indent} *` : `${indent} * ${l}`)).join('\n')}\n${indent} */\n`;
}

function literal(value: unknown): string {
  return typeof value === 'string' ? `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : JSON.stringify(value);
}

function typeOf(schema: OpenApiSchema, at: string): string {
  if (schema.$ref) return refName(schema.$ref);
  let t: string;
  if (schema.enum) t = schema.enum.map(literal).join(' | ');
  else if (schema.type === 'integer' || schema.type === 'number') t = 'number';
  else if (schema.type === 'string' || schema.type === 'boolean') t = schema.type;
  else if (schema.type === 'array') {
    if (!schema.items) throw new Error(`${at}: array without items`);
    const item = typeOf(schema.items, `${at}/items`);
    // Only unions need parentheses; prettier strips them elsewhere (e.g. around `Record<…>`).
    t = item.includes(' | ') ? `(${item})[]` : `${item}[]`;
  } else if (schema.type === 'object' || schema.properties || schema.additionalProperties) {
    if (schema.properties) throw new Error(`${at}: inline object with properties; give it a component schema`);
    const value =
      typeof schema.additionalProperties === 'object'
        ? typeOf(schema.additionalProperties, `${at}/additionalProperties`)
        : 'unknown';
    t = `Record<string, ${value}>`;
  } else throw new Error(`${at}: cannot type schema ${JSON.stringify(schema)}`);
  return schema.nullable ? `${t} | null` : t;
}

function propertyDoc(schemaName: string, prop: string, schema: OpenApiSchema): string[] {
  const lines: string[] = [];
  if (schema.description) lines.push(schema.description);
  const renamed = CODE_DIFFERENCES.renamedProperties.find((r) => r.schema === schemaName && r.to === prop);
  if (renamed) {
    lines.push(
      `Spec ${CLOUD_HYPERVISOR_SPEC_VERSION} spells this key \`${renamed.from}\`; CH's code reads \`${renamed.to}\` and ignores unknown keys.`,
    );
  }
  if (CODE_DIFFERENCES.requiredByCode[schemaName]?.includes(prop)) {
    lines.push(`Required by CH's code although the spec marks it optional.`);
  }
  if (schema.format) lines.push(`@format ${schema.format}`);
  if (schema.minimum !== undefined) lines.push(`@minimum ${schema.minimum}`);
  if (schema.maximum !== undefined) lines.push(`@maximum ${schema.maximum}`);
  if (schema.default !== undefined) lines.push(`@default ${JSON.stringify(schema.default)}`);
  if (schema.deprecated) lines.push('@deprecated');
  return lines;
}

function declaration(name: string, schema: OpenApiSchema): string {
  const head = docComment(
    [
      ...(schema.description ? [schema.description] : []),
      ...(schema.default !== undefined ? [`@default ${JSON.stringify(schema.default)}`] : []),
    ],
    '',
  );
  if (schema.properties) {
    const required = new Set(schema.required ?? []);
    for (const r of required) {
      if (!(r in schema.properties)) throw new Error(`${name}: required property ${r} is not declared`);
    }
    const members = Object.entries(schema.properties).map(([prop, propSchema]) => {
      const key = IDENTIFIER.test(prop) ? prop : literal(prop);
      const optional = required.has(prop) ? '' : '?';
      const doc = docComment(propertyDoc(name, prop, propSchema), '  ');
      return `${doc}  ${key}${optional}: ${typeOf(propSchema, `${name}/properties/${prop}`)};\n`;
    });
    return `${head}export interface ${name} {\n${members.join('')}}\n`;
  }
  return `${head}export type ${name} = ${typeOf(schema, name)};\n`;
}

/** The complete text of `types.ts` for the given (already code-adjusted) component schemas. */
export function renderCloudHypervisorTypes(schemas: Record<string, OpenApiSchema> = cloudHypervisorSchemas()): string {
  const header =
    `// Generated by tools/ch-types.ts from operator/cloudhypervisor/cloud-hypervisor-${CLOUD_HYPERVISOR_SPEC_VERSION}.yaml\n` +
    `// with CODE_DIFFERENCES (operator/cloudhypervisor/spec.ts) applied. Do not edit: run \`npx tsx tools/ch-types.ts\`.\n`;
  const decls = Object.entries(schemas).map(([name, schema]) => declaration(name, schema));
  return `${header}\n${decls.join('\n')}`;
}

if (require.main === module) {
  const text = renderCloudHypervisorTypes();
  if (process.argv.includes('--check')) {
    if (readFileSync(CH_TYPES_PATH, 'utf8') !== text) {
      console.error(`${CH_TYPES_PATH} is stale; run npx tsx tools/ch-types.ts`);
      process.exit(1);
    }
  } else {
    writeFileSync(CH_TYPES_PATH, text);
    console.log(`wrote ${CH_TYPES_PATH}`);
  }
}
