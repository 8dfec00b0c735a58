/**
 * The CRD's descriptions reach the editor: quick info (hover, completion details) on nested VirtualMachine props in
 * test/types/valid.ts shows the generated TSDoc, defaults included.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';

const ROOT = join(__dirname, '..', '..');
const FILE = join(ROOT, 'test', 'types', 'valid.ts');

let service: ts.LanguageService;
beforeAll(() => {
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p));
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  service = ts.createLanguageService(
    {
      getScriptFileNames: () => [FILE],
      getScriptVersion: () => '1',
      getScriptSnapshot: (f) => (ts.sys.fileExists(f) ? ts.ScriptSnapshot.fromString(ts.sys.readFile(f)!) : undefined),
      getCurrentDirectory: () => ROOT,
      getCompilationSettings: () => options,
      getDefaultLibFileName: (o) => ts.getDefaultLibFilePath(o),
      fileExists: (f) => ts.sys.fileExists(f),
      readFile: (f) => ts.sys.readFile(f),
      readDirectory: (...a) => ts.sys.readDirectory(...a),
      directoryExists: (d) => ts.sys.directoryExists(d),
      getDirectories: (d) => ts.sys.getDirectories(d),
    },
    ts.createDocumentRegistry(),
  );
}, 60_000);

/** Documentation and tags of the quick info at the first occurrence of `needle` in valid.ts. */
function hover(needle: string): string {
  const at = readFileSync(FILE, 'utf8').indexOf(needle);
  expect(at).toBeGreaterThanOrEqual(0);
  const info = service.getQuickInfoAtPosition(FILE, at);
  const docs = ts.displayPartsToString(info?.documentation);
  const tags = (info?.tags ?? []).map((t) => `@${t.name} ${ts.displayPartsToString(t.text)}`);
  return [docs, ...tags].join(' ');
}

test.each([
  ['coresPerSocket', 'Cores per socket. @default 1'],
  ['httpGet', "An HTTP GET to the VM pod's IP."],
  ['containerDisk:', 'An ephemeral disk from a container image.'],
  ['masquerade:', "The guest sits behind NAT on a private network; the pod's IP reaches it through forwarded ports."],
  ['effect', 'Taint effect to match; empty matches all.'],
  ['nodeSelectorTerms', 'Required. A list of node selector terms; the terms are ORed.'],
] as const)(
  'hovering %s shows its doc',
  (needle, expected) => {
    expect(hover(needle)).toBe(expected);
  },
  30_000,
);
