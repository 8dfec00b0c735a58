/**
 * The package as a user gets it: `npm pack` (prepack builds lib/), installed from the tarball into a scratch project
 * with cdk8s, cdk8s-plus-27, Pulumi and TypeScript from the registry (or npm's cache), then a small platform app
 * compiled with strict tsc and synthesized (the CRDs, a VM, a kplus Service in front of the VM's pods), and every
 * TypeScript snippet of the README (each starts with `// file: <name>.ts`) compiled too, the cdk8s program run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import packageJson from '../../package.json';

const ROOT = join(__dirname, '..', '..');
const TIMEOUT = 300_000;
let scratch: string;

const APP = `import { App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Bindings, Crds, NetworkSources, VirtualMachine, VolumeSources, vmPodSelector } from 'kubevisor/cdk8s';

const app = new App();
const api = new Chart(app, 'api');
new Crds(api, 'crds');
const chart = new Chart(app, 'vms');
chart.addDependency(api);
const web = new VirtualMachine(chart, 'web', { metadata: { name: 'web' }, cpu: { sockets: 1 }, memory: { size: '1Gi' } })
  .addDisk('root', VolumeSources.containerDisk('quay.io/containerdisks/debian:12'))
  .addInterface('pod', NetworkSources.pod(), Bindings.masquerade({ ports: [{ port: 80 }] }));
new kplus.Service(chart, 'web-svc', {
  metadata: { name: 'web' },
  selector: kplus.Pods.select(chart, 'web-pods', { labels: vmPodSelector(web.name) }),
  ports: [{ port: 80, targetPort: 80 }],
});
app.synth();
`;

/** The README's TypeScript snippets by the file name their first line gives (`// file: <name>.ts`). */
function readmeSnippets(): Record<string, string> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  // Every TypeScript block of the README is a whole program: no fragment escapes the compiler.
  const untested = blocks.filter((b) => !/^\/\/ file: [\w.-]+\.ts\n/.test(b));
  expect(untested).toEqual([]);
  return Object.fromEntries(blocks.map((b) => [/^\/\/ file: ([\w.-]+\.ts)/.exec(b)![1], b]));
}

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'kubevisor-packed-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

test(
  'the packed tarball installs, compiles under strict tsc and synthesizes a VM behind a Service',
  () => {
    const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', scratch], {
      cwd: ROOT,
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .pop()!;
    const project = join(scratch, 'platform');
    execFileSync('mkdir', ['-p', project]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'platform', private: true }));
    const dev = packageJson.devDependencies as Record<string, string>;
    execFileSync(
      'npm',
      [
        'install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts',
        join(scratch, tgz),
        ...['cdk8s', 'cdk8s-plus-27', 'constructs', 'typescript', '@types/node', '@pulumi/pulumi', '@pulumi/kubernetes'].map(
          (p) => `${p}@${dev[p]}`,
        ),
      ], // prettier-ignore
      { cwd: project, stdio: 'pipe' },
    );
    writeFileSync(join(project, 'main.ts'), APP);
    const snippets = readmeSnippets();
    expect(Object.keys(snippets).sort()).toEqual(['index.ts', 'main.ts']);
    const readme = join(project, 'readme');
    execFileSync('mkdir', ['-p', readme]);
    for (const [file, text] of Object.entries(snippets)) writeFileSync(join(readme, file), text);
    const compilerOptions = {
      strict: true,
      module: 'node16',
      moduleResolution: 'node16',
      target: 'ES2022',
      types: ['node'],
    };
    const tsconfig = (dir: string, name: string, file: string, outDir: string) =>
      writeFileSync(
        join(dir, name),
        JSON.stringify({ compilerOptions: { ...compilerOptions, outDir }, files: [file] }),
      );
    const tsc = (config: string, cwd: string) => {
      try {
        execFileSync(join(project, 'node_modules', '.bin', 'tsc'), ['-p', config], { cwd, stdio: 'pipe' });
      } catch (e) {
        throw new Error(`tsc -p ${config} failed:\n${(e as { stdout?: Buffer }).stdout?.toString() ?? String(e)}`);
      }
    };
    tsconfig(project, 'tsconfig.json', 'main.ts', 'out');
    tsc('tsconfig.json', project);
    // Each README program on its own: both declare top-level names.
    for (const file of Object.keys(snippets)) {
      tsconfig(readme, `tsconfig.${file}.json`, file, `out-${file}`);
      tsc(`tsconfig.${file}.json`, readme);
    }
    execFileSync(process.execPath, ['out-main.ts/main.js'], { cwd: readme, stdio: 'pipe' });
    const readmeDocs = readdirSync(join(readme, 'dist'))
      .sort()
      .flatMap((f) => parseAllDocuments(readFileSync(join(readme, 'dist', f), 'utf8')).map((d) => d.toJS()));
    expect(readmeDocs.map((d) => d.kind)).toEqual(expect.arrayContaining(['Deployment', 'VirtualMachine', 'Service']));
    execFileSync(process.execPath, ['out/main.js'], { cwd: project, stdio: 'pipe' });
    const docs = readdirSync(join(project, 'dist'))
      .sort()
      .flatMap((f) => parseAllDocuments(readFileSync(join(project, 'dist', f), 'utf8')).map((d) => d.toJS()));
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      'CustomResourceDefinition/virtualmachines.kubevisor.io',
      'CustomResourceDefinition/virtualmachinemigrations.kubevisor.io',
      'CustomResourceDefinition/kubevisorclusters.infrastructure.cluster.x-k8s.io',
      'CustomResourceDefinition/kubevisormachines.infrastructure.cluster.x-k8s.io',
      'CustomResourceDefinition/kubevisormachinetemplates.infrastructure.cluster.x-k8s.io',
      'VirtualMachine/web',
      'Service/web',
    ]);
    expect(docs.find((d) => d.kind === 'Service').spec.selector).toEqual({ 'kubevisor.io/vm': 'web' });
    // The CRDs and the install are reachable through the package's exports.
    const resolve = (spec: string) =>
      execFileSync(process.execPath, ['-p', `require.resolve(${JSON.stringify(spec)})`], {
        cwd: project,
        encoding: 'utf8',
      }).trim();
    expect(resolve('kubevisor/deploy/kubevisor.yaml')).toMatch(/node_modules\/kubevisor\/deploy\/kubevisor\.yaml$/);
    expect(resolve('kubevisor/deploy/crds/virtualmachines.kubevisor.io.yaml')).toMatch(
      /virtualmachines\.kubevisor\.io\.yaml$/,
    );
    // The root export is the API and the constructs, not the schema builder.
    const rootKeys = execFileSync(process.execPath, ['-p', "Object.keys(require('kubevisor')).join(',')"], {
      cwd: project,
      encoding: 'utf8',
    })
      .trim()
      .split(',');
    expect(rootKeys).toEqual(expect.arrayContaining(['API_VERSION', 'renderVirtualMachine', 'vmPodSelector']));
    for (const internal of ['string', 'object', 'array', 'integer']) expect(rootKeys).not.toContain(internal);
  },
  TIMEOUT,
);
