/**
 * `pulumi up` for real: the Pulumi CLI and Kubernetes provider built from upstream Go modules (tools/pulumi/build.sh),
 * driven through the Automation API with an inline program against a local file backend in a temp dir and the e2e
 * control plane. The program installs the platform (CRDs first, then the rest), a namespace, an auto-named Secret
 * and a VM whose cloud-init reads that Secret through an Output, and a migration fed the VM's `vmName` Output. Then:
 * `preview` shows no changes; a changed immutable field (memory) replaces the VM (a new UID); an invalid value that
 * only an Output carries fails `up` naming the resource and the field, changing nothing; `refresh`; `destroy` removes
 * everything but the CRDs, which the platform retains (deleting them would delete every VM).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Stack } from '@pulumi/pulumi/automation';
import { renderPlatformOnly } from '../../constructs/platform/render';
import type { KubeClient, KubeObject } from './harness/kube-client';
import { PLATFORM_NS, VM_NS, exampleProgram, openStack } from './harness/pulumi-example';
import { installKubernetesPlugin, pulumiBinDir, pulumiEnv } from './harness/pulumi-engine';
import { sharedControlPlane, sharedControlPlaneInfo } from './harness/shared';

const run = promisify(execFile);

/* eslint-disable @typescript-eslint/no-explicit-any -- objects read back loosely */
type Json = Record<string, any>;

const platformNs = PLATFORM_NS;
const vmNs = VM_NS;

let admin: KubeClient;
let workDir: string;
let stack: Stack;

const getVm = () => admin.tryGet<KubeObject & Json>('kubevisor.io/v1alpha1', 'VirtualMachine', 'web', vmNs);
const changes = (summary: Record<string, number> | undefined) =>
  Object.fromEntries(Object.entries(summary ?? {}).filter(([op, n]) => op !== 'same' && n > 0));

beforeAll(async () => {
  admin = sharedControlPlane();
  const binDir = pulumiBinDir();
  // The workspace, Pulumi's home and the state all live here (the SDK's own automation-logs-* go when each run ends).
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubevisor-pulumi-'));
  fs.copyFileSync(sharedControlPlaneInfo().kubeconfigPath, path.join(workDir, 'kubeconfig'));
  const env = pulumiEnv(workDir, binDir);
  installKubernetesPlugin(binDir, env);
  stack = await openStack(workDir, exampleProgram(workDir, '1Gi'));
}, 1_800_000);

afterAll(async () => {
  // After a failure midway, whatever the stack still holds (the CRDs stay: retained).
  await stack?.destroy({ onOutput: () => undefined }).catch(() => undefined);
  await admin.delete('v1', 'Namespace', vmNs, undefined, { ignoreNotFound: true }).catch(() => undefined);
  await admin.delete('v1', 'Namespace', platformNs, undefined, { ignoreNotFound: true }).catch(() => undefined);
  // Cluster-wide objects of the platform a failed destroy may have left (fixed names other suites use too).
  for (const o of renderPlatformOnly({ namespace: platformNs }).filter(
    (x) => !x.metadata.namespace && x.kind !== 'Namespace' && x.kind !== 'CustomResourceDefinition',
  )) {
    await admin
      .delete(o.apiVersion, o.kind, o.metadata.name, undefined, { ignoreNotFound: true })
      .catch(() => undefined);
  }
  admin.close();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
}, 300_000);

test('up, preview, replace on an immutable change, refusal of an invalid Output, refresh, destroy', async () => {
  const up = await stack.up({ onOutput: () => undefined });
  const created = up.summary.resourceChanges?.create ?? 0;
  expect(changes(up.summary.resourceChanges)).toEqual({ create: created });
  const secretName = up.outputs.secretName?.value as string;
  expect(secretName).toMatch(/^web-user-data-[0-9a-z]{8}$/);
  const vm = (await getVm()) as Json;
  // The Output reached the VM: its cloud-init reads the auto-named Secret.
  expect(vm.spec.volumes).toContainEqual({ name: 'cloudinit', cloudInit: { userDataSecretName: secretName } });
  expect(vm.spec.instance.memory.size).toBe('1Gi');
  const migration = await admin.get<KubeObject & Json>(
    'kubevisor.io/v1alpha1',
    'VirtualMachineMigration',
    'move-web',
    vmNs,
  );
  expect(migration.spec.vmName).toBe('web');
  expect(await admin.tryGet('apps/v1', 'Deployment', 'kubevisor-controller', platformNs)).toBeDefined();

  const preview = await stack.preview({ onOutput: () => undefined });
  expect(changes(preview.changeSummary)).toEqual({});

  // memory is immutable: the VM is replaced (deleted first, its name being fixed), the migration that names it with it
  // (a dependent of a resource deleted first), and the component records its new args.
  stack.workspace.program = exampleProgram(workDir, '2Gi');
  const ops: string[] = [];
  const replaced = await stack.up({
    onOutput: () => undefined,
    onEvent: (e) => {
      const m = e.resourcePreEvent?.metadata;
      if (m && m.op !== 'same') ops.push(`${m.op} ${m.type}`);
    },
  });
  expect(changes(replaced.summary.resourceChanges)).toEqual({ replace: 2, update: 1 });
  expect(ops.filter((op) => op.startsWith('replace ')).sort()).toEqual([
    'replace kubernetes:kubevisor.io/v1alpha1:VirtualMachine',
    'replace kubernetes:kubevisor.io/v1alpha1:VirtualMachineMigration',
  ]);
  expect(ops).toContain('update kubevisor:index:VirtualMachine');
  const vm2 = (await getVm()) as Json;
  expect({ memory: vm2.spec.instance.memory.size, newUid: vm2.metadata.uid !== vm.metadata.uid }).toEqual({
    memory: '2Gi',
    newUid: true,
  });

  // The status outputs, as the operator would write the status (no operator runs here): current after `up --refresh`.
  await admin.request('PATCH', `/apis/kubevisor.io/v1alpha1/namespaces/${vmNs}/virtualmachines/web/status`, {
    contentType: 'application/merge-patch+json',
    body: {
      status: {
        phase: 'Running',
        nodeName: 'kwok-node-0',
        interfaces: [{ name: 'pod', mac: vm2.spec.instance.interfaces[0].mac, ipAddresses: ['10.0.2.2'] }],
      },
    },
  });
  const current = await stack.up({ refresh: true, onOutput: () => undefined });
  expect({ phase: current.outputs.phase?.value, guestIps: current.outputs.guestIps?.value }).toEqual({
    phase: 'Running',
    guestIps: ['10.0.2.2'],
  });

  // An invalid value only an Output carries: `up` fails naming the resource and the field; nothing changes. In a
  // process of its own (harness/pulumi-example.ts): the failed program's rejected Outputs are not this test's.
  const child = await run(process.execPath, [
    ...['--require', require.resolve('tsx/cjs')],
    path.join(__dirname, 'harness', 'pulumi-example.ts'),
    ...[workDir, '2Gi', '0'],
  ]);
  const refused = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as { result: string; error: string };
  expect(refused.result).toBe('failed');
  expect(refused.error).toContain('[web] spec.instance.cpu.sockets: Invalid value: 0');
  expect(((await getVm()) as Json).metadata.uid).toBe(vm2.metadata.uid);

  stack.workspace.program = exampleProgram(workDir, '2Gi');
  const refreshed = await stack.refresh({ onOutput: () => undefined });
  expect(refreshed.summary.result).toBe('succeeded');

  const destroyed = await stack.destroy({ onOutput: () => undefined });
  const deleted = destroyed.summary.resourceChanges?.delete ?? 0;
  expect(changes(destroyed.summary.resourceChanges)).toEqual({ delete: deleted });
  expect(await getVm()).toBeUndefined();
  expect(await admin.tryGet('v1', 'Secret', secretName, vmNs)).toBeUndefined();
  // Retained: deleting the CRD would have deleted every VM of every suite.
  expect(
    await admin.tryGet('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'virtualmachines.kubevisor.io'),
  ).toBeDefined();
  await stack.workspace.removeStack('e2e');
  process.stdout.write(
    `pulumi: up ${created} resources, preview 0 changes, replaced 1 on immutable change (its migration with it), ` +
      `destroyed ${deleted}\n`,
  );
}, 900_000);
