// The migration CA: a self-signed ECDSA P-256 certificate whose only job is to sign node certificates for the
// migration relay. It is not the cluster's CA and nothing else trusts it, so a node certificate it issues is good
// for exactly one thing: proving to another node daemon which node it talks to.
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { Tag, expect, parseDer } from './der';
import { nodeIdentityName } from './node-identity';
import { pemBlocks } from './pem';
import {
  KeyUsageBit,
  Oid,
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  commonNameOnly,
  dnsSubjectAltNameExtension,
  extKeyUsageExtension,
  isP256Key,
  keyIdentifier,
  keyUsageExtension,
  readCertificate,
  signCertificate,
  spkiOf,
  subjectKeyIdentifierExtension,
} from './x509';

/** The CA as stored (Secret `tls.crt` and `tls.key`). */
export interface MigrationCaPem {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
}

/** A CA ready to sign: its certificate, key and the parts an issued certificate copies from it. */
export interface MigrationCa {
  certPem: string;
  cert: X509Certificate;
  key: KeyObject;
  /** The CA's subject, byte for byte: the issuer of every certificate it signs. */
  subjectDer: Buffer;
  /** Its subject key identifier: the authority key identifier of every certificate it signs. */
  keyId: Buffer;
}

export interface CreateCaOptions {
  /** @default 'kubevisor-migration-ca' */
  commonName?: string;
  /** @default 3650 (ten years: rotating the CA is a deliberate act, not an expiry surprise) */
  lifetimeDays?: number;
  /** @default new Date() */
  now?: Date;
}

/** Clock skew allowance: certificates start this long before they were made (as Kubernetes' own signer does). */
export const BACKDATE_MS = 5 * 60_000;

/** A positive 127-bit serial number (RFC 5280 allows up to 20 octets; random so serials never collide). */
function randomSerial(): bigint {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  return BigInt(`0x${bytes.toString('hex')}`) || 1n;
}

/** A new self-signed CA (fresh key pair). */
export function createMigrationCa(options: CreateCaOptions = {}): MigrationCaPem {
  const now = options.now ?? new Date();
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = commonNameOnly(options.commonName ?? 'kubevisor-migration-ca');
  const keyId = keyIdentifier(spkiOf(publicKey));
  const certPem = signCertificate(
    {
      serialNumber: randomSerial(),
      issuer: name,
      subject: name,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + (options.lifetimeDays ?? 3650) * 86_400_000),
      subjectPublicKey: publicKey,
      extensions: [
        basicConstraintsExtension(true),
        keyUsageExtension([KeyUsageBit.digitalSignature, KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign]),
        subjectKeyIdentifierExtension(keyId),
      ],
    },
    privateKey,
  );
  return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** Checks a stored CA (one certificate, a CA, self-consistent, P-256) and prepares it for signing. */
export function loadMigrationCa(stored: MigrationCaPem): MigrationCa {
  const certs = pemBlocks(stored.certPem).filter((b) => b.label === 'CERTIFICATE');
  if (certs.length !== 1) throw new Error(`migration CA: expected one certificate, found ${certs.length}`);
  const cert = new X509Certificate(certs[0].der);
  const key = createPrivateKey(stored.keyPem);
  if (!cert.ca) throw new Error('migration CA: the certificate is not a CA certificate');
  if (!isP256Key(key)) throw new Error('migration CA: the key is not an ECDSA P-256 key');
  if (!cert.checkPrivateKey(key)) throw new Error('migration CA: the key does not match the certificate');
  const parts = readCertificate(cert.raw);
  const ski = parts.extensions.get(Oid.subjectKeyIdentifier);
  // The SKI extension wraps an OCTET STRING; fall back to computing it for a CA made elsewhere without one.
  const keyId = ski
    ? expect(parseDer(ski.value), Tag.OCTET_STRING, 'subjectKeyIdentifier').content
    : keyIdentifier(spkiOf(cert.publicKey));
  return { certPem: stored.certPem, cert, key, subjectDer: parts.subjectDer, keyId };
}

/** What issueNodeCertificate needs to know. */
export interface IssueOptions {
  nodeName: string;
  /** The node's public key (from its request, already checked to be P-256). */
  publicKey: KeyObject;
  /** Requested lifetime; the certificate never outlives the CA. */
  lifetimeSeconds: number;
  /** @default new Date() */
  now?: Date;
}

/**
 * A node certificate: subject CN and DNS SAN `kubevisor-node:<node>`, usable for TLS client and server auth.
 * Built from the node name the signer verified, never copied from the request, so a request cannot smuggle in
 * another name or extension.
 */
export function issueNodeCertificate(ca: MigrationCa, options: IssueOptions): string {
  const identity = nodeIdentityName(options.nodeName);
  const now = options.now ?? new Date();
  const notAfter = Math.min(now.getTime() + options.lifetimeSeconds * 1000, ca.cert.validToDate.getTime());
  return signCertificate(
    {
      serialNumber: randomSerial(),
      issuer: ca.subjectDer,
      subject: commonNameOnly(identity),
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(notAfter),
      subjectPublicKey: options.publicKey,
      extensions: [
        basicConstraintsExtension(false),
        keyUsageExtension([KeyUsageBit.digitalSignature]),
        extKeyUsageExtension([Oid.clientAuth, Oid.serverAuth]),
        dnsSubjectAltNameExtension([identity]),
        subjectKeyIdentifierExtension(keyIdentifier(spkiOf(options.publicKey))),
        authorityKeyIdentifierExtension(ca.keyId),
      ],
    },
    ca.key,
  );
}
