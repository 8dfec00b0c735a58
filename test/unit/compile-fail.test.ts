/**
 * Types that guide: each file in test/types holds one mistake, and tsc must reject it with exactly this diagnostic
 * (code, position and the whole message chain; typescript is pinned in package.json, so the text is stable). valid.ts
 * must compile cleanly, so the test fails both ways. Prints one line per rejected mistake.
 */
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as ts from 'typescript';

const ROOT = join(__dirname, '..', '..');
const DIR = join(ROOT, 'test', 'types');

interface Case {
  /** What the mistake is, as printed. */
  readonly what: string;
  readonly file: string;
  /** 1-based line:column of the diagnostic. */
  readonly at: string;
  readonly code: number;
  /** The flattened message chain, lines joined by '\n'. */
  readonly message: string;
}

const CASES: readonly Case[] = [
  {
    what: 'empty volume source',
    file: 'empty-volume-source.ts',
    at: '5:72',
    code: 2345,
    message: "Argument of type '{}' is not assignable to parameter of type 'VolumeSource'.",
  },
  {
    what: 'two bindings at once',
    file: 'two-bindings.ts',
    at: '7:3',
    code: 2322,
    message: "Type '{}' is not assignable to type 'undefined'.",
  },
  {
    what: 'httpGet: { prot: 80 }',
    file: 'probe-port-typo.ts',
    at: '4:74',
    code: 2353,
    message: "Object literal may only specify known properties, and 'prot' does not exist in type 'HTTPGetAction'.",
  },
  {
    what: 'nodeAfinity',
    file: 'affinity-typo.ts',
    at: '6:5',
    code: 2561,
    message:
      "Object literal may only specify known properties, but 'nodeAfinity' does not exist in type 'Affinity'. " +
      "Did you mean to write 'nodeAffinity'?",
  },
  {
    what: 'a second network source',
    file: 'second-network-source.ts',
    at: '5:14',
    code: 2322,
    message:
      "Type '{ name: string; pod: {}; multus: { networkName: string; }; }' is not assignable to type 'VmNetwork'.\n" +
      "  Types of property 'multus' are incompatible.\n" +
      "    Type '{ networkName: string; }' is not assignable to type 'undefined'.",
  },
  {
    what: 'a string where a number is expected',
    file: 'string-for-number.ts',
    at: '4:52',
    code: 2322,
    message: "Type 'string' is not assignable to type 'number'.",
  },
  {
    what: 'two probe handlers at once',
    file: 'two-probe-handlers.ts',
    at: '4:85',
    code: 2322,
    message: "Type '{ port: number; }' is not assignable to type 'undefined'.",
  },
  {
    what: 'toleration operater',
    file: 'toleration-typo.ts',
    at: '4:79',
    code: 2561,
    message:
      "Object literal may only specify known properties, but 'operater' does not exist in type 'Toleration'. " +
      "Did you mean to write 'operator'?",
  },
  {
    what: 'resources request (Pulumi args)',
    file: 'resources-typo.ts',
    at: '4:56',
    code: 2353,
    // Pulumi args take an Input at every level (an object literal, or the whole object as an Output), so tsc names
    // that long union; the message still names the misspelt key.
    message: expect.stringMatching(
      /^Object literal may only specify known properties, and 'request' does not exist in type '\{ readonly requests\?: /,
    ) as unknown as string,
  },
];
const VALID = 'valid.ts';

interface Found {
  readonly at: string;
  readonly code: number;
  readonly message: string;
  /** The source text tsc points at (the second binding, the misspelt key). */
  readonly span: string;
  /** tsc's related information, e.g. which property of which type the expected type comes from. */
  readonly related: string;
}

const found = new Map<string, Found[]>();
const printed: string[] = [];

beforeAll(() => {
  // The repo's own compiler options (strict, node16 modules, …), on just these files.
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p));
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  const files = readdirSync(DIR)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(DIR, f));
  const program = ts.createProgram(files, { ...options, noEmit: true });
  for (const file of files) {
    const source = program.getSourceFile(file)!;
    const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
    found.set(
      basename(file),
      diagnostics.map((d) => {
        const { line, character } = source.getLineAndCharacterOfPosition(d.start ?? 0);
        return {
          at: `${line + 1}:${character + 1}`,
          code: d.code,
          message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
          span: source.text.slice(d.start ?? 0, (d.start ?? 0) + (d.length ?? 0)),
          related: (d.relatedInformation ?? [])
            .map((r) => ts.flattenDiagnosticMessageText(r.messageText, ' '))
            .join('; '),
        };
      }),
    );
  }
}, 120_000);

afterAll(() => {
  if (printed.length) console.log(printed.join('\n'));
});

test('every file in test/types is a case', () => {
  expect([...found.keys()].sort()).toEqual([...CASES.map((c) => c.file), VALID].sort());
});

test(`${VALID} (the README's shapes) compiles cleanly`, () => {
  expect(found.get(VALID)).toEqual([]);
});

test.each(CASES.map((c) => [c.what, c] as const))('tsc rejects %s', (_what, c) => {
  const diagnostics = found.get(c.file) ?? [];
  expect(diagnostics.map(({ at, code, message }) => ({ at, code, message }))).toEqual([
    { at: c.at, code: c.code, message: c.message },
  ]);
  const d = diagnostics[0];
  const span = d.span.length <= 40 ? ` [at '${d.span}']` : '';
  const related = d.related ? ` (${d.related})` : '';
  printed.push(`types: ${c.what} → TS${d.code} ${d.message.replace(/\s+/g, ' ')}${span}${related}`);
});
