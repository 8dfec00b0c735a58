// Which migration certificate requests the signer approves. A pure function of the CSR object, so every rule is a
// row in a table test. The one fact that matters — which node asked — comes from spec.extra, which the API server
// fills from the requester's pod-bound token; the request's own CN/SAN is only a claim to check against it.
import type { KeyObject } from 'node:crypto';
import { parseCertificateRequest, type ParsedCertificateRequest } from './csr';
import { csrRequestPem, type CertificateSigningRequest } from './csr-object';
import {
  DEFAULT_DAEMON_USERNAME,
  MIGRATION_CERT_USAGES,
  MIGRATION_SIGNER_NAME,
  NODE_NAME_EXTRA,
  isValidNodeName,
  nodeIdentityName,
  nodeOfIdentityName,
} from './node-identity';
import { Oid, isP256Key } from './x509';

/** What the signer accepts beyond the fixed rules (signer name, usages, key type, node binding). */
export interface SignerPolicy {
  /** The only user allowed to ask (the node daemon's ServiceAccount). @default DEFAULT_DAEMON_USERNAME */
  requesterUsername: string;
  /** Longest lifetime a request may ask for. @default 86400 (24 h) */
  maxExpirationSeconds: number;
}

/** The daemon ServiceAccount of the default install; certificates for at most 24 h. */
export const DEFAULT_SIGNER_POLICY: SignerPolicy = {
  requesterUsername: DEFAULT_DAEMON_USERNAME,
  maxExpirationSeconds: 86_400,
};

/** The reasons a request is refused: each is the `reason` of the Denied (or Failed) condition. */
export const DenyReason = {
  wrongSigner: 'WrongSigner',
  unexpectedRequester: 'UnexpectedRequester',
  noNodeBinding: 'NoNodeBinding',
  lifetimeNotBounded: 'LifetimeNotBounded',
  lifetimeTooLong: 'LifetimeTooLong',
  unexpectedUsages: 'UnexpectedUsages',
  malformedRequest: 'MalformedRequest',
  badRequestSignature: 'BadRequestSignature',
  unsupportedKey: 'UnsupportedKey',
  badSubject: 'BadSubject',
  nodeMismatch: 'NodeMismatch',
  badSubjectAltNames: 'BadSubjectAltNames',
} as const;

/** The reason of the Approved condition. */
export const APPROVED_REASON = 'NodeIdentityVerified';

/** The signer's verdict on one request. */
export type CsrDecision =
  | { approve: true; nodeName: string; publicKey: KeyObject; lifetimeSeconds: number; message: string }
  | { approve: false; reason: string; message: string };

const deny = (reason: string, message: string): CsrDecision => ({ approve: false, reason, message });

function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') return `EC ${details?.namedCurve ?? 'unknown curve'}`;
  if (details?.modulusLength) return `${key.asymmetricKeyType} ${details.modulusLength} bits`;
  return key.asymmetricKeyType ?? 'unknown';
}

/** Approve (with what to issue) or deny (with a reason and a message that says what is wrong). */
export function decideCsr(csr: CertificateSigningRequest, policy: SignerPolicy = DEFAULT_SIGNER_POLICY): CsrDecision {
  const spec = csr.spec;
  if (spec.signerName !== MIGRATION_SIGNER_NAME) {
    return deny(DenyReason.wrongSigner, `signerName is ${spec.signerName}, not ${MIGRATION_SIGNER_NAME}`);
  }
  if (spec.username !== policy.requesterUsername) {
    return deny(
      DenyReason.unexpectedRequester,
      `requested by ${JSON.stringify(spec.username ?? '')}; only ${policy.requesterUsername} (the node daemon's ServiceAccount) may request migration certificates`,
    );
  }
  const boundNodes = spec.extra?.[NODE_NAME_EXTRA] ?? [];
  const boundNode = boundNodes.length === 1 ? boundNodes[0] : undefined;
  if (boundNode === undefined || !isValidNodeName(boundNode)) {
    return deny(
      DenyReason.noNodeBinding,
      `the requester's credentials name ${boundNodes.length === 0 ? 'no' : `${boundNodes.length} or an invalid`} ${NODE_NAME_EXTRA}: request with a service account token bound to the daemon's pod (Kubernetes 1.32 or later)`,
    );
  }
  if (spec.expirationSeconds === undefined) {
    return deny(
      DenyReason.lifetimeNotBounded,
      `spec.expirationSeconds must be set (at most ${policy.maxExpirationSeconds})`,
    );
  }
  if (spec.expirationSeconds > policy.maxExpirationSeconds) {
    return deny(
      DenyReason.lifetimeTooLong,
      `spec.expirationSeconds is ${spec.expirationSeconds}; at most ${policy.maxExpirationSeconds} is allowed`,
    );
  }
  const usages = [...new Set(spec.usages ?? [])].sort();
  const expected = [...MIGRATION_CERT_USAGES].sort();
  if (usages.length !== expected.length || usages.some((u, i) => u !== expected[i])) {
    return deny(
      DenyReason.unexpectedUsages,
      `spec.usages is [${(spec.usages ?? []).join(', ')}]; it must be exactly [${MIGRATION_CERT_USAGES.join(', ')}]`,
    );
  }
  let request: ParsedCertificateRequest;
  try {
    request = parseCertificateRequest(csrRequestPem(csr));
  } catch (error) {
    return deny(DenyReason.malformedRequest, `spec.request is not a readable certificate request: ${String(error)}`);
  }
  if (!isP256Key(request.publicKey)) {
    return deny(
      DenyReason.unsupportedKey,
      `the key is ${describeKey(request.publicKey)}; it must be EC prime256v1 (P-256)`,
    );
  }
  if (!request.signatureValid) {
    return deny(
      DenyReason.badRequestSignature,
      `the request is not signed with ecdsa-with-SHA256 by the key it carries (algorithm ${request.signatureAlgorithm})`,
    );
  }
  const expectedIdentity = nodeIdentityName(boundNode);
  const attributes = request.subject;
  const commonName = attributes.length === 1 && attributes[0].oid === Oid.commonName ? attributes[0].value : undefined;
  const requestedNode = commonName === undefined ? undefined : nodeOfIdentityName(commonName);
  if (commonName === undefined || requestedNode === undefined) {
    return deny(
      DenyReason.badSubject,
      `the subject must be exactly CN=${expectedIdentity}; found ${attributes.map((a) => `${a.oid}=${a.value}`).join(', ') || 'an empty subject'}`,
    );
  }
  if (requestedNode !== boundNode) {
    return deny(
      DenyReason.nodeMismatch,
      `the request is for node ${requestedNode} (CN=${commonName}) but the requester's token is bound to a pod on node ${boundNode}`,
    );
  }
  if (request.otherNames.length > 0 || request.dnsNames.length !== 1 || request.dnsNames[0] !== expectedIdentity) {
    const found = [...request.dnsNames.map((n) => `DNS:${n}`), ...request.otherNames].join(', ') || 'none';
    return deny(
      DenyReason.badSubjectAltNames,
      `the subject alternative names must be exactly DNS:${expectedIdentity}; found ${found}`,
    );
  }
  return {
    approve: true,
    nodeName: boundNode,
    publicKey: request.publicKey,
    lifetimeSeconds: spec.expirationSeconds,
    message: `kubevisor migration signer: node ${boundNode} verified from the requester's pod-bound token`,
  };
}
