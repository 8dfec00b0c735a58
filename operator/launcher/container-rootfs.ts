/**
 * `launcher prepare-container-rootfs <volume> <size>`, run by the pod's `mkfs-<volume>` init container: the tar of
 * the image's filesystem becomes an ext4 image of the requested size. e2fsprogs before 1.47.1 cannot read a tar
 * with `mkfs.ext4 -d`, so the tar is unpacked first. The tar goes as soon as it is unpacked and the tree once the
 * image is built, so the volume holds at most twice the image's files (its emptyDir is sized for that).
 *
 * Symbolic links stay links all the way: busybox `tar -c` in the image's init container stores them without
 * following (it follows only with -h), GNU tar extracts a link that points outside the tree (absolute, or with `..`)
 * only as a placeholder until everything else is out, so nothing is written through one, and `mkfs.ext4 -d` copies
 * links as links. Inside the ext4 image they are the guest's business.
 */
import { closeSync, lstatSync, mkdirSync, openSync, ftruncateSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseQuantity } from '../../api';
import { containerRootfsImage, containerRootfsTar, volumeDir } from '../pod-layout';
import { run } from './command';
import { LaunchError } from './failure';

export function rootfsBytes(size: string, what: string): number {
  let q;
  try {
    q = parseQuantity(size);
  } catch {
    throw new LaunchError(`${what}: size ${size} is not a quantity such as 4Gi`);
  }
  if (q.num <= 0n || q.num % q.den !== 0n)
    throw new LaunchError(`${what}: size ${size} must be a positive whole number of bytes`);
  return Number(q.num / q.den);
}

export async function prepareContainerRootfs(volume: string, size: string | undefined): Promise<string> {
  const what = `containerRootfs ${volume}`;
  if (!size) throw new LaunchError(`${what}: the size argument is missing (prepare-container-rootfs <volume> <size>)`);
  const bytes = rootfsBytes(size, what);
  const tar = containerRootfsTar(volume);
  const tree = join(volumeDir(volume), 'rootfs');
  const target = containerRootfsImage(volume);
  const partial = `${target}.partial`;
  let tarStat;
  try {
    tarStat = lstatSync(tar);
  } catch {
    throw new LaunchError(`${what}: ${tar} is missing (the init container rootfs-${volume} writes it)`);
  }
  if (!tarStat.isFile()) throw new LaunchError(`${what}: ${tar} is not a regular file`);
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree);
  // Owners and modes as in the image (the guest's files keep theirs); this container holds CHOWN, FOWNER, FSETID and
  // DAC_OVERRIDE for it, inside its own emptyDir only.
  await run(['tar', '-x', '-f', tar, '-C', tree, '--numeric-owner', '--same-owner', '--same-permissions'], {
    what: `${what}: unpack ${tar}`,
    timeoutMs: 30 * 60_000,
  });
  rmSync(tar, { force: true });
  const fd = openSync(partial, 'w');
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  await run(['mkfs.ext4', '-q', '-F', '-d', tree, partial], {
    what: `${what}: build the ext4 image (is size ${size} large enough for the image's files?)`,
    timeoutMs: 30 * 60_000,
  });
  renameSync(partial, target);
  rmSync(tree, { recursive: true, force: true });
  return target;
}
