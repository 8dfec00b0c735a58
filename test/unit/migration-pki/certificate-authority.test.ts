/** The migration CA and the node certificates it issues, as OpenSSL (node:crypto) reads them. */
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import {
  BACKDATE_MS,
  certificateIdentity,
  createMigrationCa,
  issueNodeCertificate,
  loadMigrationCa,
} from '../../../operator/migration-pki';

const now = new Date('2030-06-01T12:00:00Z');
const caPem = createMigrationCa({ now });
const ca = loadMigrationCa(caPem);

test('the CA is a self-signed P-256 CA certificate good for ten years', () => {
  const cert = new X509Certificate(caPem.certPem);
  expect(cert.ca).toBe(true);
  expect(cert.subject).toBe('CN=kubevisor-migration-ca');
  expect(cert.issuer).toBe(cert.subject);
  expect(cert.verify(cert.publicKey)).toBe(true);
  expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  expect(cert.validToDate.getTime() - now.getTime()).toBe(3650 * 86_400_000);
});

test('a node certificate names the node (CN and DNS SAN), is for TLS client and server, and chains to the CA', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = issueNodeCertificate(ca, { nodeName: 'kwok-node-1', publicKey, lifetimeSeconds: 86_400, now });
  const cert = new X509Certificate(pem);
  expect(cert.subject).toBe('CN=kubevisor-node:kwok-node-1');
  expect(cert.subjectAltName).toBe('DNS:kubevisor-node:kwok-node-1');
  expect(cert.ca).toBe(false);
  expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.1']);
  expect(cert.checkIssued(ca.cert)).toBe(true);
  expect(cert.verify(ca.cert.publicKey)).toBe(true);
  expect(cert.checkPrivateKey(privateKey)).toBe(true);
  expect(certificateIdentity(cert.raw)).toEqual({
    commonNames: ['kubevisor-node:kwok-node-1'],
    dnsNames: ['kubevisor-node:kwok-node-1'],
    otherNames: [],
  });
});

test('validity: backdated for clock skew, the lifetime asked for, never past the CA', () => {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const day = new X509Certificate(issueNodeCertificate(ca, { nodeName: 'n', publicKey, lifetimeSeconds: 86_400, now }));
  expect(day.validFromDate.getTime()).toBe(now.getTime() - BACKDATE_MS);
  expect(day.validToDate.getTime()).toBe(now.getTime() + 86_400_000);
  const forever = new X509Certificate(
    issueNodeCertificate(ca, { nodeName: 'n', publicKey, lifetimeSeconds: 100 * 365 * 86_400, now }),
  );
  expect(forever.validToDate.getTime()).toBe(ca.cert.validToDate.getTime());
});

test('loading refuses a key that does not match, a non-CA certificate, and a bundle', () => {
  const other = createMigrationCa();
  expect(() => loadMigrationCa({ certPem: caPem.certPem, keyPem: other.keyPem })).toThrow('does not match');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = issueNodeCertificate(ca, { nodeName: 'n', publicKey, lifetimeSeconds: 600 });
  const leafKey = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  expect(() => loadMigrationCa({ certPem: leaf, keyPem: leafKey })).toThrow('not a CA certificate');
  expect(() => loadMigrationCa({ certPem: caPem.certPem + other.certPem, keyPem: caPem.keyPem })).toThrow(
    'expected one certificate, found 2',
  );
});
