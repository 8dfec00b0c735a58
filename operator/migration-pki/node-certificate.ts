// The node daemon's side of the migration PKI: it makes its own key pair in memory (the private key never leaves
// the process, and never reaches the API server), asks the migration signer for a certificate through a
// CertificateSigningRequest, checks what comes back, and renews at two thirds of the lifetime. Which node the
// certificate is for is decided by the API server (from the daemon's pod-bound token), not by the daemon.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { backoffDelay, sleepUnlessAborted, type BackoffOptions } from '../kube/backoff';
import { silentLogger, type Logger } from '../kube/log';
import { nodeCertificateRequest } from './csr';
import { CSR_API_VERSION, CSR_KIND, csrCertificatePem, csrState, type CertificateSigningRequest } from './csr-object';
import { MIGRATION_CERT_USAGES, MIGRATION_SIGNER_NAME, nodeIdentityName } from './node-identity';
import { splitCertificateBundle } from './pem';
import { certificateIdentity } from './x509';

/** What the daemon needs of the cluster to get a certificate (KubeNodeCsrApi is the real one). */
export interface NodeCsrApi {
  /** Creates the CSR (it has a generateName); resolves to the name the API server gave it. */
  createCsr(csr: CertificateSigningRequest): Promise<string>;
  /** Waits until the CSR is issued, denied or failed and resolves to it; rejects after `timeoutMs`. */
  waitForCsr(name: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<CertificateSigningRequest>;
  /** The PEM bundle of CA certificates node certificates chain to. */
  readCaBundle(): Promise<string>;
}

/** A node's migration credentials: what the relay's TLS needs. */
export interface NodeCredentials {
  nodeName: string;
  /** PKCS#8 PEM of the private key (in memory only). */
  keyPem: string;
  certPem: string;
  /** The CA bundle, PEM. */
  caPem: string;
  notBefore: Date;
  notAfter: Date;
  /** The CSR it came from, for logs. */
  csrName: string;
}

/** The signer refused the request (Denied or Failed), with the condition's reason and message. */
export class CertificateRefusedError extends Error {
  constructor(
    readonly csrName: string,
    readonly condition: 'Denied' | 'Failed',
    readonly reason: string,
    readonly detail: string,
  ) {
    super(`migration certificate request ${csrName} ${condition.toLowerCase()}: ${reason}: ${detail}`);
    this.name = 'CertificateRefusedError';
  }
}

/** Options of one request round. */
export interface RequestNodeCertificateOptions {
  api: NodeCsrApi;
  nodeName: string;
  /** Requested lifetime. @default 86400 (24 h) */
  expirationSeconds?: number;
  /** Bound on the wait for the signer. @default 60000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The CSR object the daemon creates for `requestPem`. */
export function nodeCsrObject(
  nodeName: string,
  requestPem: string,
  expirationSeconds: number,
): CertificateSigningRequest {
  return {
    apiVersion: CSR_API_VERSION,
    kind: CSR_KIND,
    metadata: {
      // The API server cuts a long prefix down itself; the node name in the name only helps people reading a list.
      generateName: `kubevisor-migration-${nodeName}-`,
      labels: { 'app.kubernetes.io/name': 'kubevisor', 'app.kubernetes.io/component': 'migration-pki' },
    },
    spec: {
      request: Buffer.from(requestPem, 'utf8').toString('base64'),
      signerName: MIGRATION_SIGNER_NAME,
      expirationSeconds,
      usages: [...MIGRATION_CERT_USAGES],
    },
  };
}

/**
 * One round: a fresh key pair, a CSR, the wait for the signer, and checks of the answer (the certificate is for
 * this key and this node, and chains to the published CA). Rejects with CertificateRefusedError when refused.
 */
export async function requestNodeCertificate(options: RequestNodeCertificateOptions): Promise<NodeCredentials> {
  const { api, nodeName } = options;
  const identity = nodeIdentityName(nodeName);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const requestPem = nodeCertificateRequest(nodeName, privateKey, publicKey);
  const csrName = await api.createCsr(nodeCsrObject(nodeName, requestPem, options.expirationSeconds ?? 86_400));
  const csr = await api.waitForCsr(csrName, { timeoutMs: options.timeoutMs ?? 60_000, signal: options.signal });
  const state = csrState(csr);
  if (state === 'denied' || state === 'failed') {
    const type = state === 'denied' ? 'Denied' : 'Failed';
    const condition = csr.status?.conditions?.find((c) => c.type === type);
    throw new CertificateRefusedError(csrName, type, condition?.reason ?? '', condition?.message ?? '');
  }
  const certPem = csrCertificatePem(csr);
  if (!certPem) throw new Error(`migration certificate request ${csrName}: no certificate (state ${state})`);
  const caPem = await api.readCaBundle();
  const cert = new X509Certificate(certPem);
  if (!cert.checkPrivateKey(privateKey)) {
    throw new Error(`migration certificate request ${csrName}: the certificate is not for the key that was sent`);
  }
  const names = certificateIdentity(cert.raw);
  if (!names.commonNames.includes(identity) || !names.dnsNames.includes(identity)) {
    throw new Error(`migration certificate request ${csrName}: the certificate does not name ${identity}`);
  }
  const chained = splitCertificateBundle(caPem).some((pem) => {
    const ca = new X509Certificate(pem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  });
  if (!chained)
    throw new Error(`migration certificate request ${csrName}: the certificate does not chain to the CA bundle`);
  return {
    nodeName,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPem,
    caPem,
    notBefore: cert.validFromDate,
    notAfter: cert.validToDate,
    csrName,
  };
}

/** Options of the renewing manager. */
export interface NodeCertificatesOptions extends Omit<RequestNodeCertificateOptions, 'signal'> {
  /** Renew when this fraction of the certificate's lifetime has passed. @default 2/3 */
  renewAtFraction?: number;
  /** Retry delays after a failed round. @default { initialMs: 2000, maxMs: 300000 } */
  retry?: BackoffOptions;
  logger?: Logger;
  /** @default () => new Date() */
  now?: () => Date;
}

/** A node's current migration credentials, kept fresh in the background. */
export interface NodeCertificates {
  /** The current credentials; undefined before the first issue and after expiry without a renewal. */
  current(): NodeCredentials | undefined;
  /** Resolves with the first credentials; rejects after `timeoutMs`. */
  ready(timeoutMs: number): Promise<NodeCredentials>;
  /** Stops renewing. Idempotent. */
  stop(): Promise<void>;
}

/** Requests credentials now, then renews them at `renewAtFraction` of each lifetime, retrying with backoff. */
export function startNodeCertificates(options: NodeCertificatesOptions): NodeCertificates {
  const logger = (options.logger ?? silentLogger).child({ component: 'migration-certificate', node: options.nodeName });
  const now = options.now ?? (() => new Date());
  const fraction = options.renewAtFraction ?? 2 / 3;
  const retry = options.retry ?? { initialMs: 2_000, maxMs: 300_000 };
  const stopper = new AbortController();
  let credentials: NodeCredentials | undefined;
  const waiters = new Set<(c: NodeCredentials) => void>();

  const loop = async (): Promise<void> => {
    let failures = 0;
    while (!stopper.signal.aborted) {
      try {
        credentials = await requestNodeCertificate({ ...options, signal: stopper.signal });
        failures = 0;
        logger.info('migration certificate issued', {
          csr: credentials.csrName,
          notAfter: credentials.notAfter.toISOString(),
        });
        for (const resolve of waiters) resolve(credentials);
        waiters.clear();
        const { notBefore, notAfter } = credentials;
        const renewAt = notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * fraction;
        await sleepUnlessAborted(Math.max(renewAt - now().getTime(), 1_000), stopper.signal);
      } catch (error) {
        if (stopper.signal.aborted) return;
        failures++;
        logger.error('migration certificate request failed', { error, failures });
        await sleepUnlessAborted(backoffDelay(failures, retry), stopper.signal);
      }
    }
  };
  const running = loop();

  return {
    current: () => (credentials && credentials.notAfter.getTime() > now().getTime() ? credentials : undefined),
    ready: (timeoutMs) => {
      const have = credentials;
      if (have) return Promise.resolve(have);
      return new Promise<NodeCredentials>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(done);
          reject(new Error(`no migration certificate for node ${options.nodeName} within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (c: NodeCredentials): void => {
          clearTimeout(timer);
          resolve(c);
        };
        waiters.add(done);
      });
    },
    stop: async () => {
      stopper.abort();
      await running;
    },
  };
}
