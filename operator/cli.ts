#!/usr/bin/env node
/**
 * `kubevisor <command>`: the operator image's one entry point.
 *   controller   cluster-wide reconcile of VirtualMachines and migrations
 *   daemon       the node daemon: drives Cloud Hypervisor in this node's VM pods, serves the KVM/TUN device plugins
 *   launcher     VM pod preparation (network, DHCP, cloud-init, disks, VmConfig); the pod's entrypoint.sh runs it
 *                and then execs Cloud Hypervisor. `launcher prepare-container-disk|prepare-container-rootfs` are
 *                the init-container steps.
 */
const USAGE = 'Usage: kubevisor <controller|daemon|launcher> [options]   (kubevisor <command> --help for options)';

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'controller':
      // Loaded on demand: each command pulls in only its own modules (the launcher must start fast).
      await (await import('./controller/main.js')).main(rest);
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

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
