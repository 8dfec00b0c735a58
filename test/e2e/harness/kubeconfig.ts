// Kubeconfig files for the e2e control plane's clients (tests, controller-manager, scheduler, KWOK).
import fs from 'node:fs';

export interface KubeconfigIdentity {
  server: string;
  caPem: string;
  clientCertPem: string;
  clientKeyPem: string;
  /** Names the user entry; the identity itself is the certificate's subject. */
  user: string;
}

/**
 * Writes a kubeconfig with the certificates embedded, so the file stands alone (e.g. for kubectl
 * while debugging a failed run). JSON is valid YAML, and every kubeconfig reader accepts it.
 */
export function writeKubeconfig(path: string, identity: KubeconfigIdentity): void {
  const b64 = (pem: string): string => Buffer.from(pem).toString('base64');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'kubevisor-e2e',
        cluster: { server: identity.server, 'certificate-authority-data': b64(identity.caPem) },
      },
    ],
    users: [
      {
        name: identity.user,
        user: {
          'client-certificate-data': b64(identity.clientCertPem),
          'client-key-data': b64(identity.clientKeyPem),
        },
      },
    ],
    contexts: [{ name: 'kubevisor-e2e', context: { cluster: 'kubevisor-e2e', user: identity.user } }],
    'current-context': 'kubevisor-e2e',
  };
  fs.writeFileSync(path, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
}

/** Writes a kubeconfig that authenticates with a bearer token (a service account's, as a pod would have it). */
export function writeTokenKubeconfig(path: string, identity: { server: string; caPem: string; token: string }): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'kubevisor-e2e',
        cluster: {
          server: identity.server,
          'certificate-authority-data': Buffer.from(identity.caPem).toString('base64'),
        },
      },
    ],
    users: [{ name: 'service-account', user: { token: identity.token } }],
    contexts: [{ name: 'kubevisor-e2e', context: { cluster: 'kubevisor-e2e', user: 'service-account' } }],
    'current-context': 'kubevisor-e2e',
  };
  fs.writeFileSync(path, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
}
