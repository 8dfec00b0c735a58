// Who is on the other end of a relay connection. TLS (with only the migration CA as trust anchor) proves the peer's
// certificate was issued by kubevisor's migration signer; this check proves it was issued to the node the migration
// names, so a daemon on any other node — whose certificate is just as valid — cannot receive or inject a VM's memory.
import { certificateIdentity } from '../migration-pki/x509';
import { nodeIdentityName } from '../migration-pki/node-identity';

/**
 * Why the certificate `der` does not identify node `expectedNode`, or undefined when it does: its subject CN and a
 * DNS SAN must both be `kubevisor-node:<expectedNode>` (the signer writes both; requiring both means a certificate
 * from some other issuer that sets only one of them never passes).
 */
export function peerIdentityProblem(der: Buffer | undefined, expectedNode: string): string | undefined {
  const expected = nodeIdentityName(expectedNode);
  if (!der || der.length === 0) return `the peer presented no certificate (expected ${expected})`;
  let identity: ReturnType<typeof certificateIdentity>;
  try {
    identity = certificateIdentity(der);
  } catch (error) {
    return `the peer's certificate cannot be read: ${(error as Error).message}`;
  }
  if (identity.commonNames.length !== 1 || identity.commonNames[0] !== expected) {
    return `the peer's certificate is for CN=${identity.commonNames.join(',') || '(none)'}, expected CN=${expected}`;
  }
  if (!identity.dnsNames.includes(expected)) {
    return `the peer's certificate has no DNS SAN ${expected} (it has ${identity.dnsNames.join(', ') || 'none'})`;
  }
  return undefined;
}
