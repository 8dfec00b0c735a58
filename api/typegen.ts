/**
 * Renders TypeScript declarations, with TSDoc, from the schema declarations: the same descriptions and defaults the
 * CRD carries reach editor completion, from one source. `npm run types` writes the result to api/generated/types.ts
 * (laid out as prettier would, so the file passes `prettier --check` as written); a unit test fails when that file is
 * stale. Pure: no file system.
 */
import type { OpenAPISchema } from './schema';
import { declarationInfoOf } from './schema';

/** Counts for the report line of `npm run types` and for the tests. */
export interface TypegenStats {
  /** Declared named types. */
  readonly types: number;
  /** Fields written with TSDoc (each field of each declaration, union members included once). */
  readonly documentedFields: number;
  /** Discriminated unions (exactly one / at most one of a group of keys). */
  readonly unions: number;
}

const WIDTH = 110;
/** prettier's printWidth (.prettierrc.json): the output is written as prettier would format it. */
const LINE = 120;

/** A TSDoc block at `indent`, its text wrapped so that prettier (which leaves comments alone) has nothing to do. */
function doc(text: string, indent: string, dflt?: unknown): string {
  const paragraphs = [text.replace(/\*\//g, '*\\/')];
  if (dflt !== undefined) paragraphs.push(`@default ${JSON.stringify(dflt)}`);
  const lines: string[] = [];
  for (const p of paragraphs) {
    let line = '';
    for (const word of p.split(/\s+/)) {
      if (line && indent.length + 3 + line.length + 1 + word.length > WIDTH) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
  }
  if (lines.length === 1 && indent.length + lines[0].length + 7 <= WIDTH) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`).join('\n')}\n${indent} */\n`;
}

/** What the TypeScript type of an object depends on (two probes differ only in their description and rules). */
const shape = (s: OpenAPISchema) => JSON.stringify([s.properties, s.required, declarationInfoOf(s)]);

const quote = (v: unknown) => `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

class Renderer {
  private readonly declarations = new Map<string, string>();
  private readonly imports = new Map<string, Set<string>>();
  private readonly named = new Map<string, OpenAPISchema>();
  documentedFields = 0;
  unions = 0;

  constructor(private readonly generatedDir: string) {}

  /** Declares every named node reachable from `root` (the root must be named). */
  add(root: OpenAPISchema): void {
    if (!declarationInfoOf(root).typeName) throw new Error('typegen: a root schema needs a typeName');
    this.typeOf(root, '');
  }

  render(header: string): { text: string; stats: TypegenStats } {
    const imports = [...this.imports]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([from, names]) => `import type { ${[...names].sort().join(', ')} } from '${from}';\n`)
      .join('');
    const text = `${header}\n${imports}${imports ? '\n' : ''}${[...this.declarations.values()].join('\n')}`;
    return {
      text,
      stats: { types: this.declarations.size, documentedFields: this.documentedFields, unions: this.unions },
    };
  }

  private declare(name: string, text: string): void {
    if (this.declarations.get(name)) throw new Error(`typegen: ${name} is declared twice`);
    this.declarations.set(name, text);
  }

  private typeOf(s: OpenAPISchema, indent: string): string {
    const info = declarationInfoOf(s);
    if (info.external) {
      const from = info.external.from.replace(/^\.\//, this.generatedDir);
      if (!this.imports.has(from)) this.imports.set(from, new Set());
      this.imports.get(from)!.add(info.external.name);
      return info.external.name;
    }
    if (s['x-kubernetes-int-or-string']) return 'number | string';
    switch (s.type) {
      case 'string':
        return s.enum ? s.enum.map(quote).join(' | ') : 'string';
      case 'integer':
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'array': {
        const item = this.typeOf(s.items!, indent);
        return item.includes('|') && !item.startsWith('{') ? `(${item})[]` : `${item}[]`;
      }
      case 'object':
        if (s.additionalProperties) return `Record<string, ${this.typeOf(s.additionalProperties, indent)}>`;
        if (!s.properties)
          return s['x-kubernetes-preserve-unknown-fields'] ? 'Record<string, unknown>' : 'Record<string, never>';
        if (info.typeName) {
          const seen = this.named.get(info.typeName);
          if (!seen) {
            this.named.set(info.typeName, s);
            // Reserve the place first, so that a type is declared before the types it uses.
            this.declarations.set(info.typeName, '');
            this.declareObject(info.typeName, s);
          } else if (seen !== s && shape(seen) !== shape(s)) {
            throw new Error(`typegen: two different schemas are named ${info.typeName}`);
          }
          return info.typeName;
        }
        if (info.exactlyOne || info.atMostOne) throw new Error('typegen: a one-of object needs a typeName');
        return `{\n${this.members(s, Object.keys(s.properties), `${indent}  `, false)}${indent}}`;
      default:
        throw new Error(`typegen: no TypeScript type for ${JSON.stringify(s).slice(0, 80)}`);
    }
  }

  /** The members of object `s` listed in `keys`; `present` makes each required (one-of members). */
  private members(s: OpenAPISchema, keys: readonly string[], indent: string, present: boolean): string {
    const required = new Set(s.required ?? []);
    let out = '';
    for (const key of keys) {
      const p = s.properties![key];
      if (p.description) {
        out += doc(p.description, indent, p.default);
        this.documentedFields++;
      }
      const head = `${indent}${key}${present || required.has(key) ? '' : '?'}:`;
      const type = this.typeOf(p, indent);
      // Prettier's layout for a member too long for one line: the type on the next line, indented.
      out += head.length + type.length + 2 > LINE ? `${head}\n${indent}  ${type};\n` : `${head} ${type};\n`;
    }
    return out;
  }

  private declareObject(name: string, s: OpenAPISchema): void {
    const info = declarationInfoOf(s);
    const refused = new Set(info.refused ?? []);
    const group = info.exactlyOne ?? info.atMostOne ?? [];
    const keys = Object.keys(s.properties!).filter((k) => !refused.has(k));
    const plain = keys.filter((k) => !group.includes(k));
    const head = doc(info.typeDoc ?? s.description ?? name, '');
    if (!group.length) {
      // A type alias, not an interface: object type aliases are assignable to Record<string, unknown>, which code
      // handling manifests as JSON relies on (as it did on the types `Infer` derives).
      this.declare(name, `${head}export type ${name} = {\n${this.members(s, plain, '  ', false)}};\n`);
      return;
    }
    const unionName = info.unionName ?? `${name}OneOf`;
    this.declarations.set(unionName, '');
    this.unions++;
    const variants = group.map((k) => {
      const others = group.filter((o) => o !== k).map((o) => `      ${o}?: never;\n`);
      return `  | {\n${this.members(s, [k], '      ', true)}${others.join('')}    }`;
    });
    if (info.atMostOne) variants.push(`  | {\n${group.map((o) => `      ${o}?: never;\n`).join('')}    }`);
    const rule = info.exactlyOne ? 'exactly one' : 'at most one';
    const unionDoc = doc(
      `${rule[0].toUpperCase()}${rule.slice(1)} of ${group.join(', ')}: the others must be absent.`,
      '',
    );
    this.declare(unionName, `${unionDoc}export type ${unionName} =\n${variants.join('\n')};\n`);
    const fields = plain.length ? `{\n${this.members(s, plain, '  ', false)}} & ` : '';
    this.declare(name, `${head}export type ${name} = ${fields}${unionName};\n`);
  }
}

/**
 * The declarations of the named schemas `roots` (and every named schema they contain), as one module placed in
 * `generatedDir` relative to api/ (used to import hand-written types such as Affinity).
 */
export function renderTypeDeclarations(
  roots: readonly OpenAPISchema[],
  header: string,
  generatedDir = '../',
): { text: string; stats: TypegenStats } {
  const r = new Renderer(generatedDir);
  for (const root of roots) r.add(root);
  return r.render(header);
}
