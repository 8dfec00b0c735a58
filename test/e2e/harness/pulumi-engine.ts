// A real Pulumi engine for the e2e suite: the Pulumi CLI and the Kubernetes resource provider, built from upstream Go
// modules by tools/pulumi/build.sh, driven by the Automation API against a local file backend in a temp dir, so a
// stack run needs no Pulumi Cloud account, no network and nothing from the user's ~/.pulumi.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PulumiCommand } from '@pulumi/pulumi/automation';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const buildScript = path.join(repoRoot, 'tools', 'pulumi', 'build.sh');

/**
 * The directory holding `pulumi` and `pulumi-resource-kubernetes`. Asks build.sh for its cache first, which never
 * builds; only when that is empty does it run build.sh (about 12 minutes on 2 cores), streaming its progress to stderr.
 */
export function pulumiBinDir(): string {
  const cached = spawnSync('bash', [buildScript, '--print-bin-dir'], { encoding: 'utf8', timeout: 60_000 });
  if (cached.status === 0) return cached.stdout.trim();
  const build = spawnSync('bash', [buildScript], { stdio: ['ignore', 2, 2], timeout: 4 * 3600_000 });
  if (build.status !== 0) {
    throw new Error(`pulumi: ${buildScript} failed (status ${build.status}, ${build.error?.message ?? ''})`);
  }
  return execFileSync('bash', [buildScript, '--print-bin-dir'], { encoding: 'utf8', timeout: 60_000 }).trim();
}

/**
 * Environment for the Automation API (`LocalWorkspace` `envVars`) and for the CLI run directly: Pulumi's home and
 * the stack state live in workDir, so runs never share plugins or state with each other or with the user; secrets
 * use a fixed passphrase; the engine neither checks for updates nor downloads or picks up plugins on its own, so
 * the only provider it can load is the one installKubernetesPlugin installed from our build.
 */
export function pulumiEnv(workDir: string, binDir: string = pulumiBinDir()): Record<string, string> {
  const home = path.join(workDir, 'home');
  const state = path.join(workDir, 'state');
  fs.mkdirSync(home, { recursive: true });
  fs.mkdirSync(state, { recursive: true });
  return {
    PULUMI_HOME: home,
    PULUMI_BACKEND_URL: `file://${state}`,
    PULUMI_CONFIG_PASSPHRASE: 'e2e',
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
    PULUMI_IGNORE_AMBIENT_PLUGINS: 'true',
    PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}`,
  };
}

/**
 * The CLI for `LocalWorkspace` options (`pulumiCommand`). Without it the Automation API runs `pulumi version` from the
 * test process's PATH, not from the workspace's envVars, and would find no CLI or another one.
 */
export function pulumiCommand(binDir: string = pulumiBinDir()): Promise<PulumiCommand> {
  // PulumiCommand runs <root>/bin/pulumi; build.sh's layout is <out dir>/bin/pulumi.
  return PulumiCommand.get({ root: path.dirname(binDir) });
}

/**
 * The Kubernetes provider version that build.sh stamped into the binary (versions.txt beside bin/), which is the
 * @pulumi/kubernetes version the SDK asks the engine for.
 */
export function kubernetesPluginVersion(binDir: string): string {
  const versions = fs.readFileSync(path.join(binDir, '..', 'versions.txt'), 'utf8');
  const version = /^kubernetes (\S+)$/m.exec(versions)?.[1];
  if (!version) throw new Error(`pulumi: no kubernetes version in ${path.join(binDir, '..', 'versions.txt')}`);
  return version;
}

/**
 * Installs our provider binary into env's PULUMI_HOME as the plugin `kubernetes` at the version the SDK requests.
 * Automatic plugin acquisition is off and ambient plugins are ignored (pulumiEnv), so without this the engine
 * would fail to find the provider rather than download one.
 */
export function installKubernetesPlugin(binDir: string, env: Record<string, string>): void {
  const version = kubernetesPluginVersion(binDir);
  execFileSync(
    path.join(binDir, 'pulumi'),
    [
      'plugin',
      'install',
      'resource',
      'kubernetes',
      `v${version}`,
      '--file',
      path.join(binDir, 'pulumi-resource-kubernetes'),
      '--non-interactive',
    ],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 },
  );
}
