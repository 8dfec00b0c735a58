// Certificates and keys for one e2e control plane, made with the openssl CLI (node:crypto can make
// keys but not X.509 certificates). ECDSA P-256 everywhere: generating it is instant, and every
// component (Go TLS, Node TLS, service-account JWT signing as ES256) accepts it.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** A certificate with its key, as files and as PEM text. */
export interface CertFiles {
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

export interface Pki {
  ca: CertFiles;
  /** kube-apiserver's serving certificate (127.0.0.1, localhost and the in-cluster names). */
  apiserver: CertFiles;
  /** Client certificates, one per identity. */
  admin: CertFiles;
  controllerManager: CertFiles;
  scheduler: CertFiles;
  /**
   * The client certificate kube-apiserver presents to kubelets (logs, exec, port-forward). Only a real kubelet
   * (harness/real-node.ts) checks it; KWOK nodes serve no kubelet API.
   */
  kubeletClient: CertFiles;
  /**
   * Front proxy (request-header authentication): its own CA, as kubeadm sets it up, and the client
   * certificate kube-apiserver presents to aggregated API servers. Without it, every component
   * that delegates authentication logs "missing content for CA bundle" forever.
   */
  frontProxyCa: CertFiles;
  frontProxyClient: CertFiles;
  /** Service-account token signing key (private) and its public half for verification. */
  serviceAccountKeyPath: string;
  serviceAccountPublicKeyPath: string;
}

/** Client identities: CN is the user name, O the groups (what the API server's x509 authenticator reads). */
const clients = {
  // system:masters bypasses RBAC: tests act as cluster admin, KWOK manages nodes and pods with it.
  admin: { cn: 'kubevisor-e2e-admin', o: 'system:masters' },
  // The names the bootstrap RBAC policy grants the controller-manager and scheduler roles to.
  controllerManager: { cn: 'system:kube-controller-manager', o: '' },
  scheduler: { cn: 'system:kube-scheduler', o: '' },
  // As kubeadm's apiserver-kubelet-client: a real kubelet authorizes the API server's calls through the API server
  // itself (SubjectAccessReview), where system:masters may do anything.
  kubeletClient: { cn: 'kube-apiserver-kubelet-client', o: 'system:masters' },
} as const;

/** The only client name kube-apiserver accepts request headers from (--requestheader-allowed-names). */
export const frontProxyClientName = 'front-proxy-client';

const validDays = '7';

export function generatePki(dir: string, serviceClusterIp: string): Pki {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string): string => path.join(dir, name);

  // A minimal config, so no system openssl.cnf defaults leak into the certificates.
  const config = file('openssl.cnf');
  fs.writeFileSync(
    config,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      '[ca]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign, digitalSignature',
      'subjectKeyIdentifier = hash',
      '[serving]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth',
      'authorityKeyIdentifier = keyid',
      [
        'subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default',
        'DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local',
        `IP:${serviceClusterIp}`,
      ].join(', '),
      '[client]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = clientAuth',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );

  const newKey = (keyPath: string): void => {
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath]);
    fs.chmodSync(keyPath, 0o600);
  };
  const read = (certPath: string, keyPath: string): CertFiles => ({
    certPath,
    keyPath,
    certPem: fs.readFileSync(certPath, 'utf8'),
    keyPem: fs.readFileSync(keyPath, 'utf8'),
  });

  const selfSigned = (name: string, subject: string): CertFiles => {
    newKey(file(`${name}.key`));
    // prettier-ignore
    openssl(['req', '-x509', '-new', '-key', file(`${name}.key`), '-subj', subject, '-days', validDays,
      '-config', config, '-extensions', 'ca', '-out', file(`${name}.crt`)]);
    return read(file(`${name}.crt`), file(`${name}.key`));
  };
  const ca = selfSigned('ca', '/CN=kubevisor-e2e-ca');
  const frontProxyCa = selfSigned('front-proxy-ca', '/CN=kubevisor-e2e-front-proxy-ca');

  const signed = (name: string, subject: string, extensions: 'serving' | 'client', issuer = ca): CertFiles => {
    const keyPath = file(`${name}.key`);
    const certPath = file(`${name}.crt`);
    newKey(keyPath);
    openssl(['req', '-new', '-key', keyPath, '-subj', subject, '-config', config, '-out', file(`${name}.csr`)]);
    // prettier-ignore
    openssl(['x509', '-req', '-in', file(`${name}.csr`), '-CA', issuer.certPath, '-CAkey', issuer.keyPath,
      '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', validDays,
      '-extfile', config, '-extensions', extensions, '-out', certPath]);
    return read(certPath, keyPath);
  };
  const clientSubject = (c: { cn: string; o: string }): string => (c.o ? `/O=${c.o}/CN=${c.cn}` : `/CN=${c.cn}`);

  const serviceAccountKeyPath = file('service-account.key');
  const serviceAccountPublicKeyPath = file('service-account.pub');
  newKey(serviceAccountKeyPath);
  openssl(['pkey', '-in', serviceAccountKeyPath, '-pubout', '-out', serviceAccountPublicKeyPath]);

  return {
    ca,
    apiserver: signed('apiserver', '/CN=kube-apiserver', 'serving'),
    admin: signed('admin', clientSubject(clients.admin), 'client'),
    controllerManager: signed('controller-manager', clientSubject(clients.controllerManager), 'client'),
    scheduler: signed('scheduler', clientSubject(clients.scheduler), 'client'),
    kubeletClient: signed('apiserver-kubelet-client', clientSubject(clients.kubeletClient), 'client'),
    frontProxyCa,
    frontProxyClient: signed('front-proxy-client', `/CN=${frontProxyClientName}`, 'client', frontProxyCa),
    serviceAccountKeyPath,
    serviceAccountPublicKeyPath,
  };
}

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args[0]} failed (is the openssl CLI installed?): ${stderr || String(error)}`);
  }
}

/** What a certificate issued by {@link issueCertificate} is for. */
export interface CertificateRequest {
  commonName: string;
  /** Groups, as the API server's x509 authenticator reads them (O=). */
  organizations?: string[];
  usage: 'serving' | 'client' | 'serving+client';
  /** subjectAltName entries, e.g. `IP:127.0.0.5`, `DNS:localhost` (serving certificates). */
  altNames?: string[];
}

/**
 * A self-signed CA as `<name>.crt`/`<name>.key` in `dir`, for components outside {@link generatePki}'s fixed set (e.g.
 * a webhook server's CA, a tenant cluster's external etcd).
 */
export function createCertificateAuthority(dir: string, name: string, commonName: string): CertFiles {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyPath = path.join(dir, `${name}.key`);
  const certPath = path.join(dir, `${name}.crt`);
  const config = writeConfig(dir, name, [
    'basicConstraints = critical, CA:TRUE',
    caKeyUsage,
    'subjectKeyIdentifier = hash',
  ]);
  newEcKey(keyPath);
  // prettier-ignore
  openssl(['req', '-x509', '-new', '-key', keyPath, '-subj', subjectOf(commonName, []), '-days', validDays,
    '-config', config, '-extensions', 'ext', '-out', certPath]);
  return readCertFiles(certPath, keyPath);
}

/**
 * A certificate for `request`, signed by `issuer` (any key type openssl reads, e.g. the RSA CA Cluster API generates
 * for a workload cluster), as `<name>.crt`/`<name>.key` in `dir`. The new key is ECDSA P-256, like every other here.
 */
export function issueCertificate(
  dir: string,
  name: string,
  issuer: Pick<CertFiles, 'certPath' | 'keyPath'>,
  request: CertificateRequest,
): CertFiles {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyPath = path.join(dir, `${name}.key`);
  const certPath = path.join(dir, `${name}.crt`);
  const csrPath = path.join(dir, `${name}.csr`);
  const extendedKeyUsage = { serving: 'serverAuth', client: 'clientAuth', 'serving+client': 'serverAuth, clientAuth' };
  const config = writeConfig(dir, name, [
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature, keyEncipherment',
    `extendedKeyUsage = ${extendedKeyUsage[request.usage]}`,
    'authorityKeyIdentifier = keyid',
    ...(request.altNames?.length ? [`subjectAltName = ${request.altNames.join(', ')}`] : []),
  ]);
  newEcKey(keyPath);
  const subject = subjectOf(request.commonName, request.organizations ?? []);
  openssl(['req', '-new', '-key', keyPath, '-subj', subject, '-config', config, '-out', csrPath]);
  // prettier-ignore
  openssl(['x509', '-req', '-in', csrPath, '-CA', issuer.certPath, '-CAkey', issuer.keyPath,
    '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', validDays,
    '-extfile', config, '-extensions', 'ext', '-out', certPath]);
  return readCertFiles(certPath, keyPath);
}

const caKeyUsage = 'keyUsage = critical, keyCertSign, cRLSign, digitalSignature';

/** A minimal openssl config whose `[ext]` section holds `extensions` (no system openssl.cnf defaults leak in). */
function writeConfig(dir: string, name: string, extensions: string[]): string {
  const config = path.join(dir, `${name}.cnf`);
  fs.writeFileSync(
    config,
    ['[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', '[ext]', ...extensions, ''].join('\n'),
  );
  return config;
}

function newEcKey(keyPath: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath]);
  fs.chmodSync(keyPath, 0o600);
}

function subjectOf(commonName: string, organizations: string[]): string {
  return [...organizations.map((o) => `/O=${o}`), `/CN=${commonName}`].join('');
}

function readCertFiles(certPath: string, keyPath: string): CertFiles {
  return { certPath, keyPath, certPem: fs.readFileSync(certPath, 'utf8'), keyPem: fs.readFileSync(keyPath, 'utf8') };
}
