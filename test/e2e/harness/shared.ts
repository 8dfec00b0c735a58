// The one control plane of an e2e run: started by test/e2e/global-setup.ts, described to the test
// workers by a JSON file whose path is in an environment variable (workers are separate processes
// and inherit the environment globalSetup leaves behind).
import fs from 'node:fs';
import { KubeClient } from './kube-client';

export const sharedStateEnv = 'KUBEVISOR_E2E_CONTROL_PLANE';

/** What tests may know about the shared control plane (the JSON file's content). */
export interface SharedControlPlaneInfo {
  kubeconfigPath: string;
  server: string;
  caPem: string;
  /** The cluster CA's certificate and key files: harness/real-node.ts signs a real kubelet's certificates with them. */
  caCertPath: string;
  caKeyPath: string;
  clientCertPem: string;
  clientKeyPem: string;
  dir: string;
  /** The API server's audit log: ServiceAccounts' requests at level Metadata (harness/control-plane.ts auditPolicy). */
  auditLogPath: string;
  nodeNames: string[];
}

export function sharedControlPlaneInfo(): SharedControlPlaneInfo {
  const file = process.env[sharedStateEnv];
  if (!file) {
    throw new Error(
      `${sharedStateEnv} is not set: the shared control plane is started by the e2e project's globalSetup (npm run test:e2e)`,
    );
  }
  return JSON.parse(fs.readFileSync(file, 'utf8')) as SharedControlPlaneInfo;
}

/** An admin (system:masters) client for the shared control plane. Call close() in afterAll. */
export function sharedControlPlane(): KubeClient {
  const info = sharedControlPlaneInfo();
  return new KubeClient({
    server: info.server,
    caPem: info.caPem,
    clientCertPem: info.clientCertPem,
    clientKeyPem: info.clientKeyPem,
  });
}
