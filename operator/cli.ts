#!/usr/bin/env node
/**
 * `kubevisor <command>`: the operator image's one entry point.
 *   controller   cluster-wide reconcile of VirtualMachines and migrations
 *   daemon       the node daemon: drives Cloud Hypervisor in this node's VM pods, serves the KVM/TUN device plugins
 *   node-setup   prepares a node for VMs (KVM/TUN, modules, hugepages) and labels it (the NodeSetup DaemonSet)
 *   launcher     VM pod preparation (network, DHCP, cloud-init, disks, VmConfig); the pod's entrypoint.sh runs it
 *                and then execs Cloud Hypervisor. `launcher prepare-container-disk|prepare-container-rootfs` are
 *                the init-container steps.
 *   --version    `kubevisor <version>` from package.json (the image's smoke test asks each entry point from inside)
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const USAGE = `Usage: kubevisor <controller|daemon|launcher|node-setup> [options]   (kubevisor <command> --help for options)
       kubevisor --version`;

/**
 * The version in kubevisor's package.json, found by walking up from `start`: the compiled CLI sits two levels below
 * it (lib/operator/cli.js, in the repository and at /usr/lib/kubevisor in the operator image), the TypeScript source
 * one (operator/cli.ts, under tsx). Read at run time, so the image's answer is the package it was built from.
 */
export function packageVersion(start: string = __dirname): string {
  for (let dir = start, i = 0; i < 4; dir = dirname(dir), i++) {
    let text: string;
    try {
      text = readFileSync(join(dir, 'package.json'), 'utf8');
    } catch {
      continue;
    }
    const pkg = JSON.parse(text) as { name?: unknown; version?: unknown };
    if (pkg.name === 'kubevisor' && typeof pkg.version === 'string') return pkg.version;
  }
  throw new Error(`kubevisor's package.json not found above ${start}`);
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case '--version':
    case 'version':
      console.log(`kubevisor ${packageVersion()}`);
      return;
    case '--help':
    case '-h':
    case 'help':
      console.log(USAGE);
      return;
    case 'controller':
      // Loaded on demand: each command pulls in only its own modules (the launcher must start fast).
      await (await import('./controller/main.js')).main(rest);
      return;
    case 'node-setup':
      await (await import('./node-setup/main.js')).main(rest);
      return;
    case 'daemon':
      await (await import('./daemon/main.js')).main(rest);
      return;
    case 'launcher': {
      const launcher = await import('./launcher/main.js');
      const { reportFailure } = await import('./launcher/failure.js');
      // A failed launch leaves one line in the pod's termination message (reportFailure) and exits 1.
      await launcher.main(rest).catch((error: unknown) => {
        reportFailure(error);
        process.exit(1);
      });
      return;
    }
    default:
      console.error(command ? `unknown command ${command}\n${USAGE}` : USAGE);
      process.exitCode = 2;
  }
}

// Run as a program only: tests import main and packageVersion.
if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
