/**
 * What the daemon asks for: the PKCS#10 request (subject, SAN, key, proof of possession) and the
 * CertificateSigningRequest object around it (signer, usages, lifetime). Plus the DER encoder and reader they rest on.
 */
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import {
  createMigrationCa,
  issueNodeCertificate,
  loadMigrationCa,
  MIGRATION_CERT_USAGES,
  MIGRATION_SIGNER_NAME,
  nodeCertificateRequest,
  nodeCsrObject,
  parseCertificateRequest,
  pemBlocks,
  pemEncode,
} from '../../../operator/migration-pki';
import {
  DerError,
  childrenOf,
  namedBits,
  objectIdentifier,
  parseDer,
  readObjectIdentifier,
  readUnsignedInteger,
  time,
  unsignedInteger,
} from '../../../operator/migration-pki/der';

describe('the node certificate request', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = nodeCertificateRequest('kwok-node-0', privateKey, publicKey);

  test('is one PEM CERTIFICATE REQUEST block', () => {
    expect(pemBlocks(pem).map((b) => b.label)).toEqual(['CERTIFICATE REQUEST']);
  });

  test('has subject exactly CN=kubevisor-node:<node>, the same DNS SAN, and nothing else', () => {
    const parsed = parseCertificateRequest(pem);
    expect(parsed.subject).toEqual([{ oid: '2.5.4.3', value: 'kubevisor-node:kwok-node-0' }]);
    expect(parsed.dnsNames).toEqual(['kubevisor-node:kwok-node-0']);
    expect(parsed.otherNames).toEqual([]);
    expect(parsed.extensionOids).toEqual(['2.5.29.17']);
  });

  test('carries the public key and is signed by its private half with ecdsa-with-SHA256', () => {
    const parsed = parseCertificateRequest(pem);
    expect(parsed.signatureAlgorithm).toBe('1.2.840.10045.4.3.2');
    expect(parsed.signatureValid).toBe(true);
    expect(parsed.publicKey.export({ type: 'spki', format: 'der' })).toEqual(
      publicKey.export({ type: 'spki', format: 'der' }),
    );
  });

  test('a request changed after signing fails the signature check', () => {
    const der = pemBlocks(pem)[0].der;
    const tampered = Buffer.from(der);
    // Change one letter of the CN inside the signed part.
    const at = tampered.indexOf(Buffer.from('kwok-node-0'));
    tampered[at + 10] = '1'.charCodeAt(0);
    const parsed = parseCertificateRequest(pemEncode('CERTIFICATE REQUEST', tampered));
    expect(parsed.subject[0].value).toBe('kubevisor-node:kwok-node-1');
    expect(parsed.signatureValid).toBe(false);
  });

  test('an invalid node name is refused before anything is built', () => {
    expect(() => nodeCertificateRequest('Not_A_Node', privateKey, publicKey)).toThrow('is not a valid node name');
  });
});

describe('the CertificateSigningRequest object', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = nodeCertificateRequest('kwok-node-0', privateKey, publicKey);
  const object = nodeCsrObject('kwok-node-0', pem, 86_400);

  test('asks our signer for the three usages and a bounded lifetime', () => {
    expect(object.apiVersion).toBe('certificates.k8s.io/v1');
    expect(object.kind).toBe('CertificateSigningRequest');
    expect(object.spec.signerName).toBe(MIGRATION_SIGNER_NAME);
    expect(object.spec.signerName).toBe('kubevisor.io/migration-node');
    expect(object.spec.usages).toEqual(['digital signature', 'client auth', 'server auth']);
    expect(object.spec.usages).toEqual([...MIGRATION_CERT_USAGES]);
    expect(object.spec.expirationSeconds).toBe(86_400);
  });

  test('carries the request as base64 PEM and a generated name; never the private key', () => {
    expect(Buffer.from(object.spec.request, 'base64').toString()).toBe(pem);
    expect(object.metadata.generateName).toBe('kubevisor-migration-kwok-node-0-');
    expect(object.metadata.name).toBeUndefined();
    expect(JSON.stringify(object)).not.toContain('PRIVATE KEY');
    // Who asks is the API server's to fill in, never the requester's.
    expect(object.spec.username).toBeUndefined();
    expect(object.spec.extra).toBeUndefined();
  });
});

describe('DER', () => {
  test('integers are minimal and non-negative', () => {
    expect(unsignedInteger(0n).toString('hex')).toBe('020100');
    expect(unsignedInteger(127n).toString('hex')).toBe('02017f');
    expect(unsignedInteger(128n).toString('hex')).toBe('02020080');
    expect(unsignedInteger(Buffer.from([0, 0, 1])).toString('hex')).toBe('020101');
    expect(readUnsignedInteger(parseDer(unsignedInteger(2n ** 100n)))).toBe(2n ** 100n);
  });

  test('object identifiers round-trip, including large arcs', () => {
    for (const oid of ['2.5.4.3', '1.2.840.10045.4.3.2', '1.2.840.113549.1.9.14', '2.999.1']) {
      expect(readObjectIdentifier(parseDer(objectIdentifier(oid)))).toBe(oid);
    }
    expect(objectIdentifier('1.2.840.10045.2.1').toString('hex')).toBe('06072a8648ce3d0201');
  });

  test('times are UTCTime until 2049 and GeneralizedTime from 2050', () => {
    expect(time(new Date('2049-12-31T23:59:59.900Z')).toString('latin1').slice(2)).toBe('491231235959Z');
    expect(time(new Date('2050-01-01T00:00:00Z')).toString('latin1').slice(2)).toBe('20500101000000Z');
  });

  test('named bit strings drop trailing zero bits', () => {
    expect(namedBits([0]).toString('hex')).toBe('03020780');
    expect(namedBits([0, 5, 6]).toString('hex')).toBe('03020186');
  });

  test('the reader refuses indefinite, non-minimal and overlong lengths and trailing bytes', () => {
    expect(() => parseDer(Buffer.from('3080', 'hex'))).toThrow(DerError);
    expect(() => parseDer(Buffer.from('30810100', 'hex'))).toThrow('non-minimal length');
    expect(() => parseDer(Buffer.from('3005020100', 'hex'))).toThrow('runs past the end');
    expect(() => parseDer(Buffer.from('02010000', 'hex'))).toThrow('bytes after the element');
    expect(() => childrenOf(parseDer(Buffer.from('020100', 'hex')))).toThrow('is not constructed');
  });

  test('what it writes, OpenSSL reads (through node:crypto)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    // A node certificate is the most DER the PKI writes; node:crypto (OpenSSL) must accept it.
    const ca = loadMigrationCa(createMigrationCa());
    const cert = new X509Certificate(issueNodeCertificate(ca, { nodeName: 'n1', publicKey, lifetimeSeconds: 600 }));
    expect(cert.checkPrivateKey(privateKey)).toBe(true);
    expect(cert.subjectAltName).toBe('DNS:kubevisor-node:n1');
  });
});
