/**
 * The daemon's side, against an in-memory API that runs the real signer step: a key made in memory, a CSR for its
 * node, a checked certificate back; refusals surface with the signer's reason; renewal happens on its own.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import {
  CertificateRefusedError,
  DEFAULT_DAEMON_USERNAME,
  DEFAULT_SIGNER_POLICY,
  NODE_NAME_EXTRA,
  createMigrationCa,
  csrCondition,
  loadMigrationCa,
  requestNodeCertificate,
  signStep,
  startNodeCertificates,
  type CertificateSigningRequest,
  type NodeCsrApi,
} from '../../../operator/migration-pki';

const ca = loadMigrationCa(createMigrationCa());

/**
 * The API server and the signer in one: stamps the requester as the daemon on `boundNode` (as a pod-bound token
 * would), then runs one signer step. `tamper` may swap the issued certificate.
 */
function fakeCluster(boundNode: string, options: { tamper?: (pem: string) => string; caPem?: string } = {}) {
  const created: CertificateSigningRequest[] = [];
  const stored = new Map<string, CertificateSigningRequest>();
  const api: NodeCsrApi = {
    createCsr: async (csr) => {
      const name = `${csr.metadata.generateName}${created.length}`;
      const object: CertificateSigningRequest = {
        ...csr,
        metadata: { ...csr.metadata, name },
        spec: { ...csr.spec, username: DEFAULT_DAEMON_USERNAME, extra: { [NODE_NAME_EXTRA]: [boundNode] } },
      };
      created.push(object);
      stored.set(name, object);
      await signStep(object, {
        policy: DEFAULT_SIGNER_POLICY,
        ca,
        writer: {
          approve: async (c, reason, message) => {
            const next = { ...c, status: { conditions: [csrCondition('Approved', reason, message, new Date())] } };
            stored.set(name, next);
            return next;
          },
          deny: async (c, reason, message) =>
            void stored.set(name, {
              ...c,
              status: { conditions: [csrCondition('Denied', reason, message, new Date())] },
            }),
          fail: async () => undefined,
          issue: async (c, pem) =>
            void stored.set(name, {
              ...c,
              status: { ...c.status, certificate: Buffer.from(options.tamper?.(pem) ?? pem).toString('base64') },
            }),
        },
      });
      return name;
    },
    waitForCsr: async (name) => stored.get(name) as CertificateSigningRequest,
    readCaBundle: async () => options.caPem ?? ca.certPem,
  };
  return { api, created };
}

test('obtains a certificate for its own node, for the key it made, chained to the CA', async () => {
  const { api, created } = fakeCluster('kwok-node-0');
  const credentials = await requestNodeCertificate({ api, nodeName: 'kwok-node-0', expirationSeconds: 7200 });
  expect(created).toHaveLength(1);
  expect(created[0].spec.expirationSeconds).toBe(7200);
  const cert = new X509Certificate(credentials.certPem);
  expect(cert.subject).toBe('CN=kubevisor-node:kwok-node-0');
  expect(cert.checkPrivateKey(createPrivateKey(credentials.keyPem))).toBe(true);
  expect(credentials.caPem).toBe(ca.certPem);
  expect(credentials.notAfter.getTime() - credentials.notBefore.getTime()).toBeGreaterThan(7200_000);
});

test('a request for another node than the token is bound to is refused with the signer reason', async () => {
  const { api } = fakeCluster('kwok-node-0');
  const error = await requestNodeCertificate({ api, nodeName: 'kwok-node-1' }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(CertificateRefusedError);
  expect((error as CertificateRefusedError).reason).toBe('NodeMismatch');
  expect((error as Error).message).toContain('denied: NodeMismatch: the request is for node kwok-node-1');
});

test('a certificate that is not for our key, or does not chain to the published CA, is not accepted', async () => {
  const stranger = fakeCluster('kwok-node-0');
  const { api: other } = fakeCluster('kwok-node-0');
  const foreign = (await requestNodeCertificate({ api: other, nodeName: 'kwok-node-0' })).certPem;
  const swapped = fakeCluster('kwok-node-0', { tamper: () => foreign });
  await expect(requestNodeCertificate({ api: swapped.api, nodeName: 'kwok-node-0' })).rejects.toThrow(
    'not for the key that was sent',
  );
  const wrongCa = fakeCluster('kwok-node-0', { caPem: createMigrationCa().certPem });
  await expect(requestNodeCertificate({ api: wrongCa.api, nodeName: 'kwok-node-0' })).rejects.toThrow(
    'does not chain to the CA bundle',
  );
  expect(stranger.created).toHaveLength(0);
});

test('renews on its own and keeps the newest credentials current', async () => {
  const { api, created } = fakeCluster('kwok-node-0');
  // The certificates start 5 minutes in the past (clock skew), so a tiny fraction makes the renewal due at once;
  // the manager still waits its minimum of one second between rounds.
  const manager = startNodeCertificates({
    api,
    nodeName: 'kwok-node-0',
    expirationSeconds: 600,
    renewAtFraction: 0.01,
  });
  try {
    const first = await manager.ready(5_000);
    const deadline = Date.now() + 5_000;
    while (created.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(created.length).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 50));
    expect(manager.current()?.csrName).not.toBe(first.csrName);
  } finally {
    await manager.stop();
  }
});
