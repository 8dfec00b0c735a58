// Jest globalSetup of the e2e project: one control plane for the whole run. Jest runs this only
// when a test of the e2e project is selected, so the unit and bad-input projects never start it.
import fs from 'node:fs';
import path from 'node:path';
import { startControlPlane } from './harness/control-plane';
import type { ControlPlane } from './harness/control-plane';
import { sharedStateEnv } from './harness/shared';
import type { SharedControlPlaneInfo } from './harness/shared';

/** globalSetup and globalTeardown run in the same (main Jest) process and share globalThis. */
export const globalKey = '__kubevisorE2eControlPlane';

export default async function globalSetup(): Promise<void> {
  // The node daemons make real bind mounts (hot-plug) and the device plugin tests make device nodes: say so plainly
  // rather than letting a test time out.
  if (process.getuid?.() !== 0)
    throw new Error('the e2e suite must run as root (bind mounts, device nodes); see README');
  const controlPlane = await startControlPlane({ nodes: 2 });
  (globalThis as Record<string, unknown>)[globalKey] = controlPlane satisfies ControlPlane;
  const info: SharedControlPlaneInfo = {
    kubeconfigPath: controlPlane.kubeconfigPath,
    server: controlPlane.server,
    caPem: controlPlane.caPem,
    caCertPath: controlPlane.caCertPath,
    caKeyPath: controlPlane.caKeyPath,
    clientCertPem: controlPlane.clientCertPem,
    clientKeyPem: controlPlane.clientKeyPem,
    dir: controlPlane.dir,
    auditLogPath: controlPlane.auditLogPath,
    nodeNames: controlPlane.nodeNames,
  };
  const file = path.join(controlPlane.dir, 'shared.json');
  fs.writeFileSync(file, JSON.stringify(info, null, 2), { mode: 0o600 });
  process.env[sharedStateEnv] = file;
}
