/**
 * The Pulumi program the e2e suite deploys with the real engine (pulumi.e2e.test.ts), and its stack: the platform, a
 * namespace, an auto-named Secret whose name reaches the VM's cloud-init through an Output, the VM (its `sockets`
 * arriving as an Output too) and a migration fed the VM's `vmName` Output. Run directly (`tsx pulumi-example.ts
 * <workDir> <memory> <sockets>`) it runs one `up` in a process of its own and prints its outcome as one JSON line:
 * an `up` that fails leaves rejected Outputs behind, which a test runner in the same process would count as its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { LocalWorkspace } from '@pulumi/pulumi/automation';
import type { Stack } from '@pulumi/pulumi/automation';
import {
  Bindings,
  KubevisorPlatform,
  NetworkSources,
  VirtualMachine,
  VirtualMachineArgsBuilder,
  VirtualMachineMigration,
  VolumeSources,
} from '../../../constructs/pulumi';
import { pulumiBinDir, pulumiCommand, pulumiEnv } from './pulumi-engine';

export const PLATFORM_NS = 'kv-pulumi-system';
export const VM_NS = 'kv-pulumi-vms';

/** The program; `memory` and `sockets` are what the later `up`s change. `workDir` holds the kubeconfig. */
export function exampleProgram(workDir: string, memory: string, sockets = 1) {
  return async () => {
    const kubeconfig = fs.readFileSync(path.join(workDir, 'kubeconfig'), 'utf8');
    // The control plane's CRDs exist already (the e2e suite installed them): adopt them rather than fail.
    const provider = new k8s.Provider('e2e', { kubeconfig, upsertExistingObjects: true });
    const platform = new KubevisorPlatform(
      'kubevisor',
      { namespace: PLATFORM_NS, image: 'registry.invalid/kubevisor:e2e', controller: { replicas: 1 } },
      { providers: { kubernetes: provider } },
    );
    const ns = new k8s.core.v1.Namespace('vms', { metadata: { name: VM_NS } }, { provider });
    // Auto-named: its name is known only once the provider created it.
    const secret = new k8s.core.v1.Secret(
      'web-user-data',
      { metadata: { namespace: ns.metadata.name }, stringData: { value: '#cloud-config\nhostname: web\n' } },
      { provider },
    );
    const vm = new VirtualMachine(
      'web',
      new VirtualMachineArgsBuilder({
        metadata: { name: 'web', namespace: ns.metadata.name },
        cpu: { sockets: pulumi.output(sockets) },
        memory: { size: memory },
      })
        .addDisk('root', VolumeSources.containerDisk('quay.io/containerdisks/debian:12'))
        .addCloudInit({ userDataSecretName: secret.metadata.name })
        .addInterface('pod', NetworkSources.pod(), Bindings.masquerade({ ports: [{ port: 80 }] }))
        .build(),
      { dependsOn: platform, providers: { kubernetes: provider } },
    );
    new VirtualMachineMigration(
      'move-web',
      { metadata: { name: 'move-web', namespace: ns.metadata.name }, vmName: vm.vmName },
      { dependsOn: vm, providers: { kubernetes: provider } },
    );
    return { vmName: vm.vmName, secretName: secret.metadata.name, phase: vm.phase, guestIps: vm.guestIps };
  };
}

/** The e2e stack in `workDir` (its workspace, Pulumi home and file backend), running `program`. */
export async function openStack(workDir: string, program: () => Promise<Record<string, unknown>>): Promise<Stack> {
  const binDir = pulumiBinDir();
  const project = path.join(workDir, 'project');
  fs.mkdirSync(project, { recursive: true });
  return LocalWorkspace.createOrSelectStack(
    { stackName: 'e2e', projectName: 'kubevisor-e2e', program },
    { workDir: project, envVars: pulumiEnv(workDir, binDir), pulumiCommand: await pulumiCommand(binDir) },
  );
}

if (require.main === module) {
  const [workDir, memory, sockets] = process.argv.slice(2) as [string, string, string];
  void openStack(workDir, exampleProgram(workDir, memory, Number(sockets)))
    .then((stack) => stack.up({ onOutput: () => undefined }))
    .then(
      (r) => ({ result: r.summary.result, error: '' }),
      (e: unknown) => ({ result: 'failed', error: e instanceof Error ? e.message : String(e) }),
    )
    .then((outcome) => {
      process.stdout.write(`${JSON.stringify(outcome)}\n`);
      // The rejected Outputs of a failed program would otherwise keep nothing alive but still be reported.
      process.exit(0);
    });
}
