/**
 * `launcher prepare-container-disk <volume>`, run by the pod's `convert-<volume>` init container: the disk the
 * image shipped at /disk (a file, or a directory holding one file, as KubeVirt containerDisks do) becomes the raw
 * image CH attaches. qcow2 is converted; raw is moved into place without a copy. The source is removed afterwards,
 * so the VM costs its disk size of ephemeral storage once, not twice.
 */
import { lstatSync, readdirSync, renameSync, rmSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { containerDiskImage, containerDiskSource } from '../pod-layout';
import { run } from './command';
import { LaunchError } from './failure';

interface QemuImgInfo {
  format?: string;
  'backing-filename'?: string;
  'format-specific'?: { data?: { 'data-file'?: string } };
}

const notALink = (path: string, stat: Stats, what: string) => {
  if (stat.isSymbolicLink()) {
    throw new LaunchError(
      `${what}: ${path} is a symbolic link; a containerDisk must ship its disk as a regular file at /disk or in /disk/`,
    );
  }
};

/**
 * The disk file inside what the init container copied from /disk. The copy keeps symbolic links as links (`cp -P`),
 * and none is followed here: a link in the user's image would otherwise point this container, or Cloud Hypervisor
 * later, at a file of the operator image or of the pod (a Secret, another volume).
 */
export function containerDiskFile(source: string, what: string): string {
  let stat: Stats;
  try {
    stat = lstatSync(source);
  } catch {
    throw new LaunchError(`${what}: ${source} is missing (the init container copies the image's /disk there)`);
  }
  notALink(source, stat, what);
  if (stat.isFile()) return source;
  if (!stat.isDirectory()) throw new LaunchError(`${what}: the image's /disk is neither a file nor a directory`);
  const files: string[] = [];
  for (const name of readdirSync(source)) {
    const path = join(source, name);
    const entry = lstatSync(path);
    notALink(path, entry, what);
    if (entry.isFile()) files.push(path);
  }
  if (files.length !== 1) {
    throw new LaunchError(
      `${what}: the image's /disk directory must hold exactly one disk file, found ${files.length}`,
    );
  }
  return files[0];
}

export async function prepareContainerDisk(volume: string): Promise<string> {
  const what = `containerDisk ${volume}`;
  const source = containerDiskSource(volume);
  const file = containerDiskFile(source, what);
  const target = containerDiskImage(volume);
  const { stdout } = await run(['qemu-img', 'info', '--output=json', file], { what: `${what}: inspect ${file}` });
  const info = JSON.parse(stdout) as QemuImgInfo;
  // An image from a registry must be self-contained: a backing or data file would let it read files of the node.
  if (info['backing-filename'] || info['format-specific']?.data?.['data-file']) {
    throw new LaunchError(
      `${what}: ${file} refers to another file (backing or data file); ship a self-contained image`,
    );
  }
  if (info.format === 'raw') {
    renameSync(file, target);
  } else if (info.format === 'qcow2') {
    const partial = `${target}.partial`;
    await run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', file, partial], {
      what: `${what}: convert qcow2 to raw`,
      timeoutMs: 60 * 60_000,
    });
    renameSync(partial, target);
  } else {
    throw new LaunchError(
      `${what}: ${file} is ${info.format ?? 'of unknown format'}; containerDisks must be qcow2 or raw`,
    );
  }
  rmSync(source, { recursive: true, force: true });
  return target;
}
