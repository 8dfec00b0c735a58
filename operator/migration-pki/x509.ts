// X.509 pieces (RFC 5280) shared by the request, the CA and the issued certificates: names, extensions,
// public key info, and the certificate itself, built and read with the DER helpers. Only ECDSA P-256 with
// SHA-256 is supported: every key in the migration PKI is one.
import { createHash, createPublicKey, sign, type KeyObject } from 'node:crypto';
import {
  DerError,
  Tag,
  bitString,
  boolean,
  childrenOf,
  expect,
  expectChildren,
  explicit,
  ia5String,
  implicit,
  namedBits,
  objectIdentifier,
  octetString,
  parseDer,
  readBitStringBytes,
  readObjectIdentifier,
  readString,
  sequence,
  set,
  time,
  unsignedInteger,
  utf8String,
  type DerNode,
} from './der';
import { pemEncode } from './pem';

/** Object identifiers used here, by name. */
export const Oid = {
  commonName: '2.5.4.3',
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const KeyUsageBit = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

/** AlgorithmIdentifier of ecdsa-with-SHA256: parameters absent (RFC 5758 §3.2). */
export const ECDSA_WITH_SHA256 = sequence(objectIdentifier(Oid.ecdsaWithSha256));

/** One attribute of a distinguished name, as read. */
export interface NameAttribute {
  oid: string;
  value: string;
}

/** A Name with one RDN holding only a commonName (UTF8String). */
export function commonNameOnly(commonName: string): Buffer {
  return sequence(set(sequence(objectIdentifier(Oid.commonName), utf8String(commonName))));
}

/** The attributes of a Name, RDN by RDN (multi-valued RDNs flattened). */
export function readName(node: DerNode | undefined): NameAttribute[] {
  const out: NameAttribute[] = [];
  for (const rdn of expectChildren(node, Tag.SEQUENCE, 'Name')) {
    for (const atv of expectChildren(rdn, Tag.SET, 'RDN')) {
      const [type, value, ...rest] = expectChildren(atv, Tag.SEQUENCE, 'AttributeTypeAndValue');
      if (rest.length) throw new DerError('AttributeTypeAndValue has extra fields');
      out.push({ oid: readObjectIdentifier(type, 'attribute type'), value: readString(value, 'attribute value') });
    }
  }
  return out;
}

/** An Extension: extnID, critical (only when true, DER omits the default), extnValue. */
/** An Extension element. */
export function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(oid), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** basicConstraints (critical): a CA with path length 0, or an end entity (empty sequence: cA defaults to false). */
export const basicConstraintsExtension = (ca: boolean): Buffer =>
  extension(Oid.basicConstraints, true, ca ? sequence(boolean(true), unsignedInteger(0n)) : sequence());

/** keyUsage (critical) with the given bits (KeyUsageBit). */
export const keyUsageExtension = (bits: number[]): Buffer => extension(Oid.keyUsage, true, namedBits(bits));

/** extKeyUsage with the given purpose OIDs. */
export const extKeyUsageExtension = (oids: string[]): Buffer =>
  extension(Oid.extKeyUsage, false, sequence(...oids.map(objectIdentifier)));

/** subjectAltName with dNSName entries (`[2] IMPLICIT IA5String`). */
export function dnsSubjectAltNameExtension(dnsNames: string[]): Buffer {
  // Re-tag the IA5String's content: ia5String checks that the name is ASCII.
  const entries = dnsNames.map((n) => implicit(2, parseDer(ia5String(n)).content));
  return extension(Oid.subjectAltName, false, sequence(...entries));
}

/** subjectKeyIdentifier. */
export const subjectKeyIdentifierExtension = (keyId: Buffer): Buffer =>
  extension(Oid.subjectKeyIdentifier, false, octetString(keyId));

/** authorityKeyIdentifier with keyIdentifier (`[0] IMPLICIT OCTET STRING`). */
export const authorityKeyIdentifierExtension = (keyId: Buffer): Buffer =>
  extension(Oid.authorityKeyIdentifier, false, sequence(implicit(0, keyId)));

/** One extension as read. */
/** One extension as read: its criticality and its extnValue bytes. */
export interface ExtensionValue {
  critical: boolean;
  value: Buffer;
}

/** Extensions by OID from a `SEQUENCE OF Extension`; a repeated OID is an error (RFC 5280 §4.2). */
export function readExtensions(node: DerNode | undefined): Map<string, ExtensionValue> {
  const out = new Map<string, ExtensionValue>();
  for (const ext of expectChildren(node, Tag.SEQUENCE, 'Extensions')) {
    const parts = expectChildren(ext, Tag.SEQUENCE, 'Extension');
    const oid = readObjectIdentifier(parts[0], 'extnID');
    let critical = false;
    let index = 1;
    if (parts[index]?.tag === Tag.BOOLEAN) {
      critical = parts[index].content[0] !== 0;
      index++;
    }
    const value = expect(parts[index], Tag.OCTET_STRING, `extension ${oid} value`).content;
    if (parts.length !== index + 1) throw new DerError(`extension ${oid} has extra fields`);
    if (out.has(oid)) throw new DerError(`extension ${oid} appears twice`);
    out.set(oid, { critical, value });
  }
  return out;
}

/** The names of a subjectAltName value: DNS names, and a description of every other kind of name. */
export interface SubjectAltNames {
  dnsNames: string[];
  /** e.g. `IP`, `URI:spiffe://…`, `email:…`, `other(tag 0xa0)`: anything that is not a DNS name. */
  others: string[];
}

/** The names of a subjectAltName extension value. */
export function readSubjectAltNames(value: Buffer): SubjectAltNames {
  const out: SubjectAltNames = { dnsNames: [], others: [] };
  for (const name of expectChildren(parseDer(value), Tag.SEQUENCE, 'GeneralNames')) {
    const text = name.constructed ? '' : name.content.toString('latin1');
    switch (name.tag) {
      case 0x82:
        out.dnsNames.push(text);
        break;
      case 0x81:
        out.others.push(`email:${text}`);
        break;
      case 0x86:
        out.others.push(`URI:${text}`);
        break;
      case 0x87:
        out.others.push('IP');
        break;
      default:
        out.others.push(`other(tag 0x${name.tag.toString(16)})`);
    }
  }
  return out;
}

/** SubjectPublicKeyInfo DER of a public key. */
export const spkiOf = (key: KeyObject): Buffer => key.export({ type: 'spki', format: 'der' });

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Buffer): Buffer {
  const [, keyBits] = expectChildren(parseDer(spki), Tag.SEQUENCE, 'SubjectPublicKeyInfo');
  return createHash('sha1').update(readBitStringBytes(keyBits, 'subjectPublicKey')).digest();
}

/** True when `key` is an ECDSA key on P-256 (the only key type of the migration PKI). */
export function isP256Key(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/** The public key of SubjectPublicKeyInfo DER; throws when it is not a key node:crypto can read. */
export const publicKeyOfSpki = (spki: Buffer): KeyObject => createPublicKey({ key: spki, format: 'der', type: 'spki' });

/** What a certificate is made of, before signing. */
export interface CertificateTemplate {
  serialNumber: bigint;
  /** Encoded Name of the issuer: byte for byte the subject of the issuer's certificate. */
  issuer: Buffer;
  /** Encoded Name. */
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  subjectPublicKey: KeyObject;
  /** Encoded Extension elements. */
  extensions: Buffer[];
}

/** A v3 certificate from `template`, signed by `issuerKey` (ECDSA P-256, SHA-256), as PEM. */
export function signCertificate(template: CertificateTemplate, issuerKey: KeyObject): string {
  if (issuerKey.type !== 'private' || issuerKey.asymmetricKeyType !== 'ec') {
    throw new Error('signCertificate: the issuer key must be an ECDSA private key');
  }
  const tbs = sequence(
    explicit(0, unsignedInteger(2n)), // v3
    unsignedInteger(template.serialNumber),
    ECDSA_WITH_SHA256,
    template.issuer,
    sequence(time(template.notBefore), time(template.notAfter)),
    template.subject,
    spkiOf(template.subjectPublicKey),
    explicit(3, sequence(...template.extensions)),
  );
  // node:crypto's ECDSA signature is DER (r, s): exactly what X.509 carries.
  const signature = sign('sha256', tbs, issuerKey);
  return pemEncode('CERTIFICATE', sequence(tbs, ECDSA_WITH_SHA256, bitString(signature)));
}

/** The parts of a certificate the PKI reads back (node:crypto's X509Certificate hides the raw name and SANs). */
export interface CertificateParts {
  /** Encoded subject Name (what a certificate issued by this one carries as its issuer). */
  subjectDer: Buffer;
  subject: NameAttribute[];
  extensions: Map<string, ExtensionValue>;
}

/** Reads the subject and extensions of certificate DER (no signature check: node:crypto does that). */
export function readCertificate(der: Buffer): CertificateParts {
  const [tbs] = expectChildren(parseDer(der), Tag.SEQUENCE, 'Certificate');
  const fields = expectChildren(tbs, Tag.SEQUENCE, 'TBSCertificate');
  // version is `[0] EXPLICIT` and optional (absent means v1).
  const at = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[at + 4];
  const extensionsWrapper = fields.slice(at + 6).find((f) => f.tag === 0xa3);
  const extensions = extensionsWrapper ? readExtensions(childrenOf(extensionsWrapper)[0]) : new Map();
  return { subjectDer: expect(subject, Tag.SEQUENCE, 'subject').raw, subject: readName(subject), extensions };
}

/** The commonName values and DNS SANs of a certificate: what the relay checks a peer against. */
export function certificateIdentity(der: Buffer): { commonNames: string[]; dnsNames: string[]; otherNames: string[] } {
  const parts = readCertificate(der);
  const san = parts.extensions.get(Oid.subjectAltName);
  const names = san ? readSubjectAltNames(san.value) : { dnsNames: [], others: [] };
  return {
    commonNames: parts.subject.filter((a) => a.oid === Oid.commonName).map((a) => a.value),
    dnsNames: names.dnsNames,
    otherNames: names.others,
  };
}
