/**
 * Writing into a VM pod's run dir from the host. The run dir itself is the kubelet's emptyDir (trusted), but its
 * entries belong to the pod: a planted symlink named like our file must not make the privileged daemon write anywhere
 * else on the node. So the directory is held by a descriptor, the text goes to a fresh name created with
 * O_CREAT|O_EXCL|O_NOFOLLOW beneath it, and rename(2) replaces whatever entry had the final name (a symlink is replaced,
 * never followed).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { holdDirectory } from '../daemon/pod-files';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/** Writes `text` as `name` directly in the trusted directory `dir`, atomically: a reader sees all of it or none. */
export function writeInRunDir(dir: string, name: string, text: string): void {
  if (!/^[\w.-]+$/.test(name) || name === '.' || name === '..') throw new Error(`${name}: not a plain file name`);
  const held = holdDirectory(dir);
  try {
    const temp = `${held.path}/.${name}.${randomBytes(6).toString('hex')}.tmp`;
    const fd = openSync(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
    try {
      const data = Buffer.from(text, 'utf8');
      for (let written = 0; written < data.length;) written += writeSync(fd, data, written);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(temp, `${held.path}/${name}`);
    } catch (error) {
      unlinkSync(temp);
      throw error;
    }
  } finally {
    held.close();
  }
}
