/**
 * `kubevisor --version` and the help answers the operator image's smoke test (tools/image/smoke.sh) asks each entry
 * point for, from inside the image and without a cluster.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, packageVersion } from '../../operator/cli';
import { LAUNCHER_USAGE, main as launcherMain } from '../../operator/launcher/main';
import pkg from '../../package.json';

/** What `fn` prints with console.log. */
async function printed(fn: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  const spy = jest.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void lines.push(args.join(' ')));
  try {
    await fn();
  } finally {
    spy.mockRestore();
  }
  return lines.join('\n');
}

describe('kubevisor --version', () => {
  it.each(['--version', 'version'])('%s prints "kubevisor <package.json version>"', async (arg) => {
    expect(await printed(() => main([arg]))).toBe(`kubevisor ${pkg.version}`);
  });

  it('finds package.json two levels up, as the compiled lib/operator/cli.js does in the image', () => {
    const root = mkdtempSync(join(tmpdir(), 'kv-version-'));
    try {
      mkdirSync(join(root, 'lib', 'operator'), { recursive: true });
      writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'kubevisor', version: '9.8.7' }));
      // A package.json of another package on the way up is passed over.
      writeFileSync(join(root, 'lib', 'package.json'), JSON.stringify({ name: 'other', version: '1.0.0' }));
      expect(packageVersion(join(root, 'lib', 'operator'))).toBe('9.8.7');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('fails with the place it looked when no kubevisor package.json is near', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-version-'));
    try {
      expect(() => packageVersion(join(dir, 'a', 'b', 'c', 'd'))).toThrow(/package\.json not found above/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('help without a cluster', () => {
  it('kubevisor --help lists the commands and --version', async () => {
    const out = await printed(() => main(['--help']));
    expect(out).toMatch(/controller\|daemon\|launcher/);
    expect(out).toMatch(/--version/);
  });

  it('kubevisor launcher --help prints the subcommands and touches no pod file', async () => {
    // launcherMain, not main(['launcher', …]): the CLI wrapper's failure path writes the termination log.
    expect(await printed(() => launcherMain(['--help']))).toBe(LAUNCHER_USAGE);
    expect(LAUNCHER_USAGE).toMatch(/prepare-container-disk/);
  });
});
