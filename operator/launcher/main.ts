/**
 * `kubevisor launcher [subcommand]` — the VM pod's entrypoints (the CLI wrapper passes the arguments after
 * `launcher`):
 *
 *   (none)                                   prepare the pod and write the VmConfig; entrypoint.sh then execs CH
 *   prepare-container-disk <volume>          init container: the containerDisk becomes a raw image
 *   prepare-container-rootfs <volume> <size> init container: the rootfs tar becomes an ext4 image
 *
 * Any failure ends with one line in the termination log and on stderr, and exit status 1.
 */
import { prepareContainerDisk } from './container-disk';
import { prepareContainerRootfs } from './container-rootfs';
import { LaunchError, reportFailure } from './failure';
import { launch } from './launch';

const log = (line: string) => process.stdout.write(`launcher: ${line}\n`);

export const LAUNCHER_USAGE = `Usage: kubevisor launcher [subcommand]   (the VM pod's entrypoint.sh runs it; it reads the pod, not flags)
  (none)                                   prepare the pod and write the VmConfig; entrypoint.sh then execs
                                           Cloud Hypervisor
  prepare-container-disk <volume>          init container: the containerDisk becomes a raw image
  prepare-container-rootfs <volume> <size> init container: the rootfs tar becomes an ext4 image`;
/** Milliseconds since this process started, Node's own start-up included. */
const sinceStart = () => Math.round(performance.now());

export async function main(args: readonly string[]): Promise<void> {
  const [command, ...rest] = args;
  switch (command) {
    case undefined: {
      const result = await launch();
      const nets = result.config.net?.map((n) => `${n.id}=${n.tap ?? n.vhost_socket}`).join(' ') ?? 'none';
      if (result.networkDaemonMs !== undefined)
        log(`pod network prepared by the node daemon in ${result.networkDaemonMs} ms`);
      log(`${result.configWritten ? 'VmConfig written' : 'migration target, no VmConfig'}; nics ${nets}`);
      // Its peak RSS bounds what the container needs before CH replaces it (the VM pod's memory floor).
      log(`ready in ${sinceStart()} ms (peak RSS ${Math.ceil(process.resourceUsage().maxRSS / 1024)} MiB)`);
      return;
    }
    case '--help':
    case '-h':
      // Answers without touching the pod (no termination log): the image's smoke test asks it outside any pod.
      console.log(LAUNCHER_USAGE);
      return;
    case 'prepare-container-disk':
      if (rest.length !== 1) throw new LaunchError('usage: prepare-container-disk <volume>');
      log(`containerDisk ${rest[0]}: ${await prepareContainerDisk(rest[0])} in ${sinceStart()} ms`);
      return;
    case 'prepare-container-rootfs':
      if (rest.length !== 2) throw new LaunchError('usage: prepare-container-rootfs <volume> <size>');
      log(`containerRootfs ${rest[0]}: ${await prepareContainerRootfs(rest[0], rest[1])} in ${sinceStart()} ms`);
      return;
    default:
      throw new LaunchError(
        `unknown subcommand ${command}: expected prepare-container-disk or prepare-container-rootfs`,
      );
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (error: unknown) => {
      reportFailure(error);
      process.exit(1);
    },
  );
}
