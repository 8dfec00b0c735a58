/**
 * `launcher prepare-container-rootfs <volume> <size>`, run by the pod's `mkfs-<volume>` init container: the tar of
 * the image's filesystem becomes an ext4 image of the requested size. e2fsprogs before 1.47.1 cannot read a tar
 * with `mkfs.ext4 -d`, so the tar is unpacked first; tar and the unpacked tree are removed afterwards.
 */
import { closeSync, mkdirSync, openSync, ftruncateSync, renameSync, rmSync } from 'node:fs';
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
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree);
  await run(['tar', '-x', '-f', tar, '-C', tree, '--numeric-owner'], {
    what: `${what}: unpack ${tar}`,
    timeoutMs: 30 * 60_000,
  });
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
  rmSync(tar, { force: true });
  return target;
}
