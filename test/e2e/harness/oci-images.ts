/**
 * Small OCI images for the real node, built with umoci (as tools/real-node builds the pause image) into image layout
 * archives that the real node's `importImage` imports: no Docker engine, no registry.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A one-layer image holding `files` (image path → host file, mode 0755 or 0644), as an archive in `dir`. */
export function buildFileImage(
  dir: string,
  name: string,
  files: Record<string, { from: string; mode: number }>,
): string {
  const layout = path.join(dir, `${name}-layout`);
  const bundle = path.join(dir, `${name}-bundle`);
  const umoci = (...args: string[]): void => {
    execFileSync('umoci', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  };
  umoci('init', '--layout', layout);
  umoci('new', '--image', `${layout}:1`);
  umoci('unpack', '--image', `${layout}:1`, bundle);
  for (const [inImage, { from, mode }] of Object.entries(files)) {
    const target = path.join(bundle, 'rootfs', inImage);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(from, target);
    fs.chmodSync(target, mode);
  }
  umoci('repack', '--image', `${layout}:1`, bundle);
  umoci('config', '--image', `${layout}:1`, '--os', 'linux', '--architecture', 'amd64');
  const archive = path.join(dir, `${name}.oci.tar`);
  execFileSync('tar', ['-C', layout, '-cf', archive, '.'], { timeout: 60_000 });
  fs.rmSync(bundle, { recursive: true, force: true });
  return archive;
}

/** The host's static busybox as /bin/busybox (pods run `/bin/busybox sh -c …`). */
export const buildBusyboxImage = (dir: string): string =>
  buildFileImage(dir, 'busybox', { '/bin/busybox': { from: '/bin/busybox', mode: 0o755 } });

/**
 * A kernel image as `instance.kernel` takes it: the kernel at /vmlinux and the initramfs at /initrd, nothing else
 * (the VM pod copies them out with its own busybox).
 */
export function buildKernelImage(dir: string, kernel: string, initramfs: string): string {
  return buildFileImage(dir, 'kernel', {
    '/vmlinux': { from: kernel, mode: 0o644 },
    '/initrd': { from: initramfs, mode: 0o644 },
  });
}
