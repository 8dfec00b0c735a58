// PKCS#10 certificate requests (RFC 2986): the daemon builds one for its node identity; the signer reads one back
// and checks every part of it, since anyone allowed to create a CSR can put anything in it.
import { sign, verify, type KeyObject } from 'node:crypto';
import {
  DerError,
  Tag,
  bitString,
  childrenOf,
  expect,
  expectChildren,
  implicit,
  objectIdentifier,
  parseDer,
  readBitStringBytes,
  readObjectIdentifier,
  readUnsignedInteger,
  sequence,
  set,
  unsignedInteger,
} from './der';
import { nodeIdentityName } from './node-identity';
import { pemDecodeOne, pemEncode } from './pem';
import {
  ECDSA_WITH_SHA256,
  Oid,
  commonNameOnly,
  dnsSubjectAltNameExtension,
  publicKeyOfSpki,
  readExtensions,
  readName,
  readSubjectAltNames,
  spkiOf,
  type NameAttribute,
} from './x509';

/**
 * A PEM certificate request for node `nodeName`: subject CN and a DNS SAN `kubevisor-node:<nodeName>`, signed by
 * `privateKey` (ECDSA P-256; the request carries its public half). Nothing else: usages and lifetime are asked
 * for in the CertificateSigningRequest object, and the signer decides the extensions.
 */
export function nodeCertificateRequest(nodeName: string, privateKey: KeyObject, publicKey: KeyObject): string {
  const identity = nodeIdentityName(nodeName);
  const info = sequence(
    unsignedInteger(0n),
    commonNameOnly(identity),
    spkiOf(publicKey),
    // attributes: [0] IMPLICIT SET OF Attribute; one extensionRequest holding the SAN.
    implicit(
      0,
      sequence(objectIdentifier(Oid.extensionRequest), set(sequence(dnsSubjectAltNameExtension([identity])))),
      true,
    ),
  );
  const signature = signEcdsa(info, privateKey);
  return pemEncode('CERTIFICATE REQUEST', sequence(info, ECDSA_WITH_SHA256, bitString(signature)));
}

function signEcdsa(data: Buffer, privateKey: KeyObject): Buffer {
  if (privateKey.asymmetricKeyType !== 'ec') throw new Error('certificate request: the key must be an ECDSA key');
  // node:crypto's ECDSA signature is DER (r, s): what PKCS#10 carries.
  return sign('sha256', data, privateKey);
}

/** A certificate request as read back. */
export interface ParsedCertificateRequest {
  subject: NameAttribute[];
  dnsNames: string[];
  /** Every SAN that is not a DNS name (IP, URI, email, …), described. */
  otherNames: string[];
  /** OIDs of every extension requested. */
  extensionOids: string[];
  publicKey: KeyObject;
  /** The OID of the signature algorithm. */
  signatureAlgorithm: string;
  /** The request is signed by the key it carries (proof of possession); false for unsupported algorithms. */
  signatureValid: boolean;
}

/** Reads a PEM certificate request; throws DerError (or a PEM error) when it is malformed. */
export function parseCertificateRequest(pem: string): ParsedCertificateRequest {
  const der = pemDecodeOne(pem, 'CERTIFICATE REQUEST');
  const [info, algorithm, signatureBits, ...rest] = expectChildren(parseDer(der), Tag.SEQUENCE, 'CertificationRequest');
  if (rest.length) throw new DerError('CertificationRequest has extra fields');
  const [version, subject, spki, attributes, ...more] = expectChildren(info, Tag.SEQUENCE, 'CertificationRequestInfo');
  if (more.length) throw new DerError('CertificationRequestInfo has extra fields');
  if (readUnsignedInteger(version, 'version') !== 0n) throw new DerError('version must be 0 (v1)');
  const publicKey = publicKeyOfSpki(expect(spki, Tag.SEQUENCE, 'subjectPKInfo').raw);

  let extensions = new Map<string, { critical: boolean; value: Buffer }>();
  // Attributes are `[0] IMPLICIT SET OF`; some encoders omit an empty set altogether.
  if (attributes !== undefined) {
    for (const attribute of childrenOf(expect(attributes, 0xa0, 'attributes'))) {
      const [type, values] = expectChildren(attribute, Tag.SEQUENCE, 'Attribute');
      if (readObjectIdentifier(type, 'attribute type') !== Oid.extensionRequest) continue;
      const [first, ...others] = expectChildren(values, Tag.SET, 'extensionRequest values');
      if (others.length) throw new DerError('extensionRequest has more than one value');
      extensions = readExtensions(first);
    }
  }
  const san = extensions.get(Oid.subjectAltName);
  const names = san ? readSubjectAltNames(san.value) : { dnsNames: [], others: [] };

  const [algorithmOid, ...params] = expectChildren(algorithm, Tag.SEQUENCE, 'signatureAlgorithm');
  const signatureAlgorithm = readObjectIdentifier(algorithmOid, 'signature algorithm');
  const signature = readBitStringBytes(signatureBits, 'signature');
  let signatureValid = false;
  if (signatureAlgorithm === Oid.ecdsaWithSha256 && params.length === 0 && publicKey.asymmetricKeyType === 'ec') {
    try {
      signatureValid = verify('sha256', info.raw, publicKey, signature);
    } catch {
      signatureValid = false;
    }
  }
  return {
    subject: readName(subject),
    dnsNames: names.dnsNames,
    otherNames: names.others,
    extensionOids: [...extensions.keys()],
    publicKey,
    signatureAlgorithm,
    signatureValid,
  };
}
