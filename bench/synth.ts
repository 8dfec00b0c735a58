/**
 * `npm run bench:synth -- --vms N`: synthesizes N VMs (the three examples, renamed) with the cdk8s app (validation
 * and YAML writing included) and with the Pulumi components under the official mocks (until every resource is
 * registered). Prints progress to stderr and one JSON line to stdout: {"vms":N,"cdk8s_ms":…,"pulumi_ms":…}.
 */
import { App, Chart } from 'cdk8s';
import * as pulumi from '@pulumi/pulumi';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { VirtualMachineProps } from '../constructs';
import { VirtualMachine as Cdk8sVirtualMachine } from '../constructs/cdk8s';
import { EXAMPLES } from '../stacks/examples';
import type * as PulumiFrontend from '../constructs/pulumi';

const { values } = parseArgs({ options: { vms: { type: 'string', default: '1000' } } });
const count = Number(values.vms);
if (!Number.isInteger(count) || count < 1) throw new Error(`--vms must be a positive integer, got ${values.vms}`);

const templates = Object.values(EXAMPLES);
const props = (i: number): [string, VirtualMachineProps] => {
  const t = templates[i % templates.length];
  const name = `vm-${i}`;
  return [name, { ...t, metadata: { ...t.metadata, name } }];
};

function benchCdk8s(): number {
  const outdir = mkdtempSync(join(tmpdir(), 'kubevisor-bench-'));
  try {
    const start = performance.now();
    const app = new App({ outdir });
    const chart = new Chart(app, 'bench');
    for (let i = 0; i < count; i++) new Cdk8sVirtualMachine(chart, ...props(i));
    app.synth();
    return Math.round(performance.now() - start);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

async function benchPulumi(): Promise<number> {
  let registered = 0;
  pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        registered++;
        return { id: `${a.name}-id`, state: a.inputs };
      },
      call: (a) => a.inputs,
    },
    'bench',
    'bench',
    true,
  );
  // Loaded after setMocks, as Pulumi requires.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { VirtualMachine } = require('../constructs/pulumi') as typeof PulumiFrontend;
  const start = performance.now();
  const names: Promise<string>[] = [];
  for (let i = 0; i < count; i++) {
    const vm = new VirtualMachine(...props(i));
    names.push(new Promise((r) => vm.vmName.apply(r)));
  }
  await Promise.all(names);
  const ms = Math.round(performance.now() - start);
  if (registered < 2 * count) throw new Error(`only ${registered} of ${2 * count} resources were registered`);
  return ms;
}

async function main(): Promise<void> {
  process.stderr.write(`bench:synth: ${count} VMs with cdk8s…\n`);
  const cdk8sMs = benchCdk8s();
  process.stderr.write(`bench:synth: cdk8s ${cdk8sMs} ms; ${count} VMs with Pulumi (mocks)…\n`);
  const pulumiMs = await benchPulumi();
  console.log(JSON.stringify({ vms: count, cdk8s_ms: cdk8sMs, pulumi_ms: pulumiMs }));
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
