// The certificates.k8s.io/v1 CertificateSigningRequest object as the PKI reads and writes it, and the one
// question every reader asks of it: where is it in its life (pending, approved, issued, denied, failed)?
import type { KubeObject } from '../kube/object';

export const CSR_API_VERSION = 'certificates.k8s.io/v1';
export const CSR_KIND = 'CertificateSigningRequest';
/** Collection path of CSRs (cluster-scoped). */
export const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

/** One entry of a CSR's status.conditions. */
export interface CsrCondition {
  /** Approved and Denied are set through /approval; Failed through /status. */
  type: 'Approved' | 'Denied' | 'Failed' | string;
  status: 'True' | 'False' | 'Unknown' | string;
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

/** spec of a CertificateSigningRequest: what the requester asks for, and who the API server says it is. */
export interface CertificateSigningRequestSpec {
  /** Base64 of the PEM certificate request (a []byte field in the API). */
  request: string;
  signerName: string;
  expirationSeconds?: number;
  usages?: string[];
  /** Who created it: set by the API server from the requester's credentials, not by the requester. */
  username?: string;
  uid?: string;
  groups?: string[];
  /** The requester's user-info extras, also set by the API server (e.g. the node a pod-bound token names). */
  extra?: Record<string, string[]>;
}

/** A certificates.k8s.io/v1 CertificateSigningRequest. */
export interface CertificateSigningRequest extends KubeObject {
  spec: CertificateSigningRequestSpec;
  status?: {
    conditions?: CsrCondition[];
    /** Base64 of the PEM certificate chain, set by the signer. */
    certificate?: string;
  };
}

/** Where a CSR is in its life. */
export type CsrState = 'pending' | 'approved' | 'issued' | 'denied' | 'failed';

/** Where a CSR is: denied and failed are final; issued means status.certificate is set. */
export function csrState(csr: CertificateSigningRequest): CsrState {
  const conditions = csr.status?.conditions ?? [];
  const has = (type: string): boolean => conditions.some((c) => c.type === type && c.status === 'True');
  if (has('Denied')) return 'denied';
  if (has('Failed')) return 'failed';
  if (csr.status?.certificate) return 'issued';
  if (has('Approved')) return 'approved';
  return 'pending';
}

/** A condition stamped now. */
export function csrCondition(type: string, reason: string, message: string, now: Date): CsrCondition {
  const at = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { type, status: 'True', reason, message, lastUpdateTime: at, lastTransitionTime: at };
}

/** The PEM text of the request (spec.request is base64 of it). */
export const csrRequestPem = (csr: CertificateSigningRequest): string =>
  Buffer.from(csr.spec.request ?? '', 'base64').toString('utf8');

/** The PEM certificate of an issued CSR, or undefined. */
export const csrCertificatePem = (csr: CertificateSigningRequest): string | undefined =>
  csr.status?.certificate ? Buffer.from(csr.status.certificate, 'base64').toString('utf8') : undefined;
