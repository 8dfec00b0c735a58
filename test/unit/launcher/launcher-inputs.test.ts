/**
 * What the launcher reads from its pod: the VirtualMachine from the pod's Secret file (the environment only for a
 * launcher run by hand), and a containerDisk copied out of a user image, whose symbolic links are never followed.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerDiskFile } from '../../../operator/launcher/container-disk';
import { readVm } from '../../../operator/launcher/vm-env';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kv-launcher-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const vmJson = JSON.stringify({
  apiVersion: 'kubevisor.io/v1alpha1',
  kind: 'VirtualMachine',
  metadata: { name: 'vm1', namespace: 'ns', uid: 'u-1' },
  spec: { instance: {} },
});

describe('the VirtualMachine', () => {
  test('comes from the Secret file, defaulted, and the file wins over the environment', () => {
    const file = join(dir, 'vm.json');
    writeFileSync(file, vmJson);
    const vm = readVm(
      { KUBEVISOR_VM: '{"kind":"VirtualMachine","metadata":{"name":"other"},"spec":{"instance":{}}}' },
      file,
    );
    expect(vm.metadata).toEqual({ name: 'vm1', namespace: 'ns', uid: 'u-1' });
    expect(vm.spec.instance.cpu).toEqual({ sockets: 1, coresPerSocket: 1, dedicatedCPUPlacement: false });
  });

  test('a launcher run by hand may take it from the environment', () => {
    expect(readVm({ KUBEVISOR_VM: vmJson }, join(dir, 'missing.json')).metadata.name).toBe('vm1');
  });

  test('without either, the error says where the pod should have it', () => {
    expect(() => readVm({}, join(dir, 'missing.json'))).toThrow(
      `${join(dir, 'missing.json')} is missing: the VM pod must mount the VirtualMachine from the Secret`,
    );
    const file = join(dir, 'vm.json');
    writeFileSync(file, '{"kind":"Pod"}');
    expect(() => readVm({}, file)).toThrow(`${file}: kind must be VirtualMachine`);
  });
});

describe('containerDisk files', () => {
  const what = 'containerDisk root';

  test('a regular file, or the one regular file of a directory', () => {
    writeFileSync(join(dir, 'disk.img'), 'x');
    expect(containerDiskFile(join(dir, 'disk.img'), what)).toBe(join(dir, 'disk.img'));
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'fedora.qcow2'), 'x');
    expect(containerDiskFile(join(dir, 'src'), what)).toBe(join(dir, 'src', 'fedora.qcow2'));
  });

  test('symbolic links are refused, not followed: /disk itself or an entry of it', () => {
    writeFileSync(join(dir, 'secret'), 'not a disk');
    symlinkSync(join(dir, 'secret'), join(dir, 'link'));
    expect(() => containerDiskFile(join(dir, 'link'), what)).toThrow(`${join(dir, 'link')} is a symbolic link`);
    mkdirSync(join(dir, 'src'));
    symlinkSync('../secret', join(dir, 'src', 'disk.img'));
    expect(() => containerDiskFile(join(dir, 'src'), what)).toThrow(
      `${join(dir, 'src', 'disk.img')} is a symbolic link`,
    );
    // A link beside the real disk is refused too: nothing in /disk may point elsewhere.
    writeFileSync(join(dir, 'src', 'real.img'), 'x');
    expect(() => containerDiskFile(join(dir, 'src'), what)).toThrow('is a symbolic link');
  });

  test('a directory without exactly one disk file', () => {
    mkdirSync(join(dir, 'empty'));
    expect(() => containerDiskFile(join(dir, 'empty'), what)).toThrow('must hold exactly one disk file, found 0');
  });
});
