import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { App, Chart } from 'cdk8s';
import { VirtualMachine } from '../../constructs/cdk8s';
import { renderPlatform } from '../../constructs/platform/render';
import { synthAtomically } from '../../stacks/cdk8s/synth';
import { crdValidators } from '../support/crd-schema';

const ROOT = join(__dirname, '..', '..');
let out: string;
beforeEach(() => (out = mkdtempSync(join(tmpdir(), 'kubevisor-synth-'))));
afterEach(() => rmSync(out, { recursive: true, force: true }));

test('npm run synth writes the platform, then the examples, whose VirtualMachines validate against deploy/crds (ajv)', () => {
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'stacks/cdk8s/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, CDK8S_OUTDIR: out },
    stdio: 'pipe',
  });
  // cdk8s numbers the files in dependency order: the platform (CRDs first) before the VMs.
  const files = readdirSync(out).sort();
  expect(files).toEqual(['0000-platform.k8s.yaml', '0001-examples.k8s.yaml', '0002-nested-cluster.k8s.yaml']);
  const read = (f: string) => parseAllDocuments(readFileSync(join(out, f), 'utf8')).map((d) => d.toJS());
  expect(read(files[0])).toEqual(renderPlatform({ clusterApi: true }));
  const docs = read(files[1]);
  expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
    'VirtualMachine/web',
    'VirtualMachine/kernel-boot',
    'VirtualMachine/db',
    'Service/web',
  ]);
  const validators = crdValidators();
  for (const d of docs.filter((x) => validators.has(x.kind))) {
    const validate = validators.get(d.kind)!;
    expect({ name: d.metadata.name, valid: validate(d), errors: validate.errors ?? null }).toEqual({
      name: d.metadata.name,
      valid: true,
      errors: null,
    });
  }
});

test('a successful synth removes manifests an earlier one wrote and this one does not', () => {
  writeFileSync(join(out, 'examples.k8s.yaml'), 'stale: true\n');
  writeFileSync(join(out, 'notes.txt'), 'kept\n');
  const build = (dir: string) => {
    const app = new App({ outdir: dir });
    new VirtualMachine(new Chart(app, 'vms'), 'a', {
      metadata: { name: 'a' },
      disks: [{ name: 'root' }],
      volumes: [{ name: 'root', containerDisk: { image: 'x' } }],
    });
    return app;
  };
  synthAtomically(build, out);
  expect(readdirSync(out).sort()).toEqual(['notes.txt', 'vms.k8s.yaml']);
});

test('ajv rejects an object the CRD schema forbids (the check above can fail)', () => {
  const validate = crdValidators().get('VirtualMachine')!;
  expect(
    validate({
      apiVersion: 'kubevisor.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: 'x' },
      spec: { runPolicy: 'Sometimes', instance: {} },
    }),
  ).toBe(false);
});

test('a failed synth lists every error with construct path and field path and writes nothing', () => {
  writeFileSync(join(out, 'previous.k8s.yaml'), 'kept: true\n');
  const build = (dir: string) => {
    const app = new App({ outdir: dir });
    const chart = new Chart(app, 'broken');
    new VirtualMachine(chart, 'a', { metadata: { name: 'a' }, cpu: { sockets: 0 } }).addDisk('root', {
      containerDisk: { image: 'x' },
    });
    new VirtualMachine(chart, 'b', { metadata: { name: 'b' }, disks: [{ name: 'ghost' }] });
    return app;
  };
  expect(() => synthAtomically(build, out)).toThrow(
    /\[broken\/a\] spec\.instance\.cpu\.sockets: Invalid value: 0[^\n]*greater than or equal to 1[\s\S]*\[broken\/b\] spec\.instance\.disks: Invalid value: \[\{"name":"ghost","readOnly":false\}\]: every disk needs a volume of the same name[^\n]*\n\s*\[broken\/b\] spec\.instance: Invalid value: \(value omitted: too long\): nothing to boot/,
  );
  expect(readdirSync(out)).toEqual(['previous.k8s.yaml']);
  expect(existsSync(join(out, 'broken.k8s.yaml'))).toBe(false);
});
