/**
 * Bind mounts for hot-plug: the node daemon (privileged, with the kubelet's pod directory mounted Bidirectional)
 * mounts a volume from an attachment pod's directory into a VM pod's hot-plug emptyDir. Both paths contain
 * directories tenants write to, so both ends are held as descriptors (`/proc/self/fd/N`, handed to mount(8)): a
 * symlink planted in either cannot redirect the mount to or from anywhere else on the host.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants, mkdirSync, readFileSync, realpathSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { O_PATH, isMissing, openBeneath } from './pod-files';

/** Runs mount(8)/umount(8) with `fds` as its descriptors 3, 4, …; rejects with its stderr. */
function run(command: string, args: string[], fds: number[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'ignore', 'pipe', ...fds],
      timeout: 30_000,
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-1000)));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')}: ${stderr.trim() || `exit ${code}`}`)),
    );
  });
}

/** Mount points (as the kernel spells them) at or below `dir`, from this process's mountinfo. */
export function mountsBelow(dir: string): string[] {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => Boolean(p))
    .map((p) => p.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === real || p.startsWith(`${real}/`));
}

/**
 * Bind-mounts a volume the kubelet mounted (`relative` beneath its trusted `volumesDir`) on `<parent>/<name>`, creating
 * that directory beneath the trusted `parent`. Both ends are opened without following symlinks and handed to mount(8)
 * as descriptors, so neither a symlink in the volume's path nor one planted in the VM pod's emptyDir can redirect it.
 * Idempotent: an existing mount there is kept.
 */
export async function bindMount(
  source: { volumesDir: string; relative: string },
  parent: string,
  name: string,
): Promise<void> {
  if (mountsBelow(parent).some((p) => p === join(realpathSync(parent), name))) return;
  try {
    mkdirSync(join(parent, name), { mode: 0o755 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const target = openBeneath(parent, name, O_PATH | constants.O_DIRECTORY);
  try {
    const from = openBeneath(source.volumesDir, source.relative, O_PATH | constants.O_DIRECTORY);
    try {
      await run('mount', ['--bind', '/proc/self/fd/4', '/proc/self/fd/3'], [target, from]);
    } finally {
      closeSync(from);
    }
  } finally {
    closeSync(target);
  }
}

/** Unmounts `<parent>/<name>` if it is a mount point, and removes the empty directory. */
export async function unbindMount(parent: string, name: string): Promise<void> {
  let real: string;
  try {
    real = realpathSync(parent);
  } catch (error) {
    if (isMissing(error)) return;
    throw error;
  }
  const target = join(real, name);
  // Mounted twice (a daemon restarted mid-mount) unmounts twice.
  for (let i = 0; i < 4 && mountsBelow(real).includes(target); i++) await run('umount', [target]);
  try {
    rmdirSync(target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'ENOTDIR') throw error;
  }
}
