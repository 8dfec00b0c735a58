import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { OpenAPISchema } from '../../api';
import { KINDS, customResourceDefinition, formatFieldError } from '../../api';
import { validateValue } from '../../api/validate';
import { CRD_DIR, INSTALL_FILE, renderCrdFiles, renderInstallFile } from '../../tools/crds';
import { compile } from '../../api/cel/library';

const ROOT = join(__dirname, '..', '..');

test('deploy/crds is up to date with api/ (run `npm run crds` if this fails)', () => {
  const expected = renderCrdFiles();
  const actual = new Map(
    readdirSync(join(ROOT, CRD_DIR)).map((f) => [f, readFileSync(join(ROOT, CRD_DIR, f), 'utf8')]),
  );
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [f, text] of expected) expect({ file: f, text: actual.get(f) }).toEqual({ file: f, text });
});

test('deploy/kubevisor.yaml is up to date with the platform constructs (run `npm run crds` if this fails)', () => {
  expect(readFileSync(join(ROOT, INSTALL_FILE), 'utf8')).toBe(renderInstallFile());
});

test('the Cluster API kinds carry the v1beta2 contract label and the CRD names Cluster API computes', () => {
  const infra = KINDS.filter((k) => k.group === 'infrastructure.cluster.x-k8s.io');
  expect(infra.map((k) => k.kind)).toEqual(['KubevisorCluster', 'KubevisorMachine', 'KubevisorMachineTemplate']);
  for (const info of infra) {
    const crd = customResourceDefinition(info) as { metadata: { name: string; labels: Record<string, string> } };
    // contract.CalculateCRDName: lower-case plural of the kind, then the group.
    expect(crd.metadata.name).toBe(`${info.kind.toLowerCase()}s.infrastructure.cluster.x-k8s.io`);
    expect(crd.metadata.labels).toEqual(expect.objectContaining({ 'cluster.x-k8s.io/v1beta2': 'v1alpha1' }));
  }
});

describe.each(KINDS.map((k) => [k.kind, k] as const))('%s CRD', (_kind, info) => {
  const crd = customResourceDefinition(info) as { spec: Record<string, never> };
  const version = (crd.spec.versions as Record<string, unknown>[])[0] as {
    subresources: unknown;
    additionalPrinterColumns: unknown[];
    schema: { openAPIV3Schema: Record<string, unknown> };
  };

  test('has the status subresource (when it has a status), printer columns, short names and the kubevisor category', () => {
    const hasStatus = info.schema.properties?.status !== undefined;
    expect(version.subresources).toEqual(hasStatus ? { status: {} } : undefined);
    expect(version.additionalPrinterColumns.length).toBeGreaterThanOrEqual(hasStatus ? 3 : 2);
    expect(crd.spec.names).toEqual(expect.objectContaining({ shortNames: info.shortNames }));
    expect((crd.spec.names as { categories: string[] }).categories).toContain('kubevisor');
  });

  test('is structural: every node has a type (or is int-or-string), every string and list is bounded', () => {
    const problems: string[] = [];
    const walk = (s: Record<string, unknown>, path: string) => {
      if (!s.type && !s['x-kubernetes-int-or-string']) problems.push(`${path}: no type`);
      if (path.startsWith('.spec') && s.type === 'string' && s.maxLength === undefined && !s.enum)
        problems.push(`${path}: unbounded string`);
      if (s.type === 'array' && s.maxItems === undefined) problems.push(`${path}: unbounded list`);
      if (path.startsWith('.spec') && !s.description) problems.push(`${path}: no description`);
      for (const [k, v] of Object.entries((s.properties as Record<string, Record<string, unknown>>) ?? {}))
        walk(v, `${path}.${k}`);
      if (s.items) walk(s.items as Record<string, unknown>, `${path}[]`);
      if (s.additionalProperties) walk(s.additionalProperties as Record<string, unknown>, `${path}{}`);
    };
    walk(version.schema.openAPIV3Schema, '');
    expect(problems).toEqual([]);
  });

  test('every default is valid against its own node, rules included (the API server checks this)', () => {
    const problems: string[] = [];
    const walk = (s: OpenAPISchema, path: string) => {
      if (s.default !== undefined) {
        for (const e of validateValue(s, s.default, path)) problems.push(formatFieldError(e));
      }
      for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, `${path}.${k}`);
      if (s.items) walk(s.items, `${path}[]`);
      if (s.additionalProperties) walk(s.additionalProperties, `${path}{}`);
    };
    walk(version.schema.openAPIV3Schema as OpenAPISchema, '');
    expect(problems).toEqual([]);
  });

  test('every CEL rule compiles', () => {
    const rules: string[] = [];
    JSON.stringify(version.schema.openAPIV3Schema, (k, v) => {
      if (k === 'x-kubernetes-validations') for (const r of v as { rule: string }[]) rules.push(r.rule);
      return v;
    });
    expect(rules.length).toBeGreaterThan(0);
    // compile() throws on a syntax error
    for (const r of rules) expect(() => compile(r)).not.toThrow();
  });
});

test('the CRD file parses back to the same object', () => {
  const info = KINDS[0];
  const text = renderCrdFiles().get(`${info.plural}.kubevisor.io.yaml`)!;
  expect(parse(text)).toEqual(JSON.parse(JSON.stringify(customResourceDefinition(info))));
});
