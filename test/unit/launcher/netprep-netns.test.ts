// netprep's check of the namespace the daemon hands it (operator/netprep/netns-file.ts): it must be a network
// namespace file, and neither the daemon's own namespace nor PID 1's, before anything runs in it. The launch suite
// (netprep.launch.test.ts) shows the descriptor outliving the process it was found by.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { namespaceType, netnsRefusal, openNetnsFile } from '../../../operator/netprep/netns-file';

describe('netprep namespace check', () => {
  const own = { dev: 4, ino: 4026531840 };
  const init = { dev: 4, ino: 4026531992 };
  const pod = { dev: 4, ino: 4026532177, type: 'net' };

  it('accepts only another network namespace than the daemon’s and PID 1’s', () => {
    expect(netnsRefusal(pod, own, init)).toBeUndefined();
    expect(netnsRefusal({ ...pod, ino: own.ino }, own, init)).toBe("is the node daemon's own namespace");
    // A daemon in its own network namespace: the node's (PID 1's) is refused all the same.
    expect(netnsRefusal({ ...pod, ino: init.ino }, own, init)).toBe("is PID 1's namespace (the node's)");
    // PID 1's namespace out of sight (a non-dumpable PID 1): only the daemon's own is known to refuse.
    expect(netnsRefusal({ ...pod, ino: init.ino }, own, undefined)).toBeUndefined();
    expect(netnsRefusal({ ...pod, type: 'mnt' }, own, init)).toBe('a mnt namespace, not a network namespace');
    expect(netnsRefusal({ ...pod, type: undefined }, own, init)).toBe('not a namespace file');
    // Not on nsfs: an ordinary file, whatever its inode number.
    expect(netnsRefusal({ ...pod, dev: 2049 }, own, init)).toBe('not a namespace file');
  });

  describe('on real files', () => {
    let dir = '';
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-netns-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('refuses the daemon’s own namespace, another type of namespace, an ordinary file, a FIFO, a missing path', () => {
      expect(() => openNetnsFile('/proc/self/ns/net')).toThrow(
        "network namespace /proc/self/ns/net: is the node daemon's own namespace",
      );
      expect(() => openNetnsFile('/proc/self/ns/mnt')).toThrow(
        'network namespace /proc/self/ns/mnt: a mnt namespace, not a network namespace',
      );
      const file = path.join(dir, 'net');
      fs.writeFileSync(file, 'net:[4026532177]\n');
      expect(() => openNetnsFile(file)).toThrow(`network namespace ${file}: not a namespace file`);
      // Opened O_PATH: a FIFO is looked at, never read (which would block until a writer came).
      const fifo = path.join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      expect(() => openNetnsFile(fifo)).toThrow(`network namespace ${fifo}: not a namespace file`);
      expect(() => openNetnsFile(path.join(dir, 'missing'))).toThrow(
        new RegExp(`^network namespace ${dir}/missing: ENOENT`),
      );
    });

    it('reads the type of a namespace file from its descriptor', () => {
      const fd = fs.openSync('/proc/self/ns/net', fs.constants.O_RDONLY);
      try {
        expect(namespaceType(fd, fs.fstatSync(fd).ino)).toBe('net');
        // The name must match the file: a stale or forged name is no answer.
        expect(namespaceType(fd, fs.fstatSync(fd).ino + 1)).toBeUndefined();
      } finally {
        fs.closeSync(fd);
      }
    });
  });
});
