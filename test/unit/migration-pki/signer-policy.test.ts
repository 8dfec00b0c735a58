/**
 * The signer's decision, rule by rule: every way a migration certificate request can be wrong is one row, with the
 * reason the Denied condition carries and the words its message must contain.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import {
  DEFAULT_DAEMON_USERNAME,
  DenyReason,
  MIGRATION_SIGNER_NAME,
  NODE_NAME_EXTRA,
  decideCsr,
  nodeCertificateRequest,
  nodeCsrObject,
  pemEncode,
  type CertificateSigningRequest,
} from '../../../operator/migration-pki';
import {
  bitString,
  implicit,
  nullValue,
  objectIdentifier,
  sequence,
  set,
  unsignedInteger,
  utf8String,
} from '../../../operator/migration-pki/der';
import {
  ECDSA_WITH_SHA256,
  Oid,
  commonNameOnly,
  dnsSubjectAltNameExtension,
  extension,
  spkiOf,
} from '../../../operator/migration-pki/x509';

const ec = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const node0 = 'kwok-node-0';

/** A PKCS#10 request with any subject and extensions, signed by `signer` (default: the key it carries). */
function customRequest(options: {
  subject: Buffer;
  extensions?: Buffer[];
  publicKey: KeyObject;
  signer: KeyObject;
  rsa?: boolean;
}): string {
  const attributes = options.extensions
    ? [implicit(0, sequence(objectIdentifier(Oid.extensionRequest), set(sequence(...options.extensions))), true)]
    : [implicit(0, Buffer.alloc(0), true)];
  const info = sequence(unsignedInteger(0n), options.subject, spkiOf(options.publicKey), ...attributes);
  const algorithm = options.rsa ? sequence(objectIdentifier('1.2.840.113549.1.1.11'), nullValue()) : ECDSA_WITH_SHA256;
  const signature = sign('sha256', info, options.signer);
  return pemEncode('CERTIFICATE REQUEST', sequence(info, algorithm, bitString(signature)));
}

const sanFor = (...names: string[]): Buffer => dnsSubjectAltNameExtension(names);
const identity = (node: string): string => `kubevisor-node:${node}`;

/** A request built like the daemon's, for `node`, unless parts are overridden. */
function requestFor(node: string, parts: { subject?: Buffer; extensions?: Buffer[] } = {}): string {
  const { privateKey, publicKey } = ec();
  if (!parts.subject && !parts.extensions) return nodeCertificateRequest(node, privateKey, publicKey);
  return customRequest({
    subject: parts.subject ?? commonNameOnly(identity(node)),
    extensions: parts.extensions ?? [sanFor(identity(node))],
    publicKey,
    signer: privateKey,
  });
}

/** The CSR object the API server would hold after the daemon on `extraNode` created it. */
function csr(
  requestPem: string,
  overrides: Partial<CertificateSigningRequest['spec']> & { extraNodes?: string[] | null } = {},
): CertificateSigningRequest {
  const object = nodeCsrObject(node0, requestPem, 86_400);
  const { extraNodes, ...spec } = overrides;
  object.metadata.name = 'kubevisor-migration-kwok-node-0-abcde';
  object.spec = {
    ...object.spec,
    username: DEFAULT_DAEMON_USERNAME,
    groups: ['system:serviceaccounts', 'system:serviceaccounts:kubevisor-system', 'system:authenticated'],
    extra:
      extraNodes === null
        ? { 'authentication.kubernetes.io/pod-name': ['daemon-x'] }
        : { [NODE_NAME_EXTRA]: extraNodes ?? [node0], 'authentication.kubernetes.io/pod-name': ['daemon-x'] },
    ...spec,
  };
  return object;
}

interface Row {
  rule: string;
  csr: () => CertificateSigningRequest;
  reason: string;
  message: string | RegExp;
}

const rows: Row[] = [
  {
    rule: 'the signer name must be ours',
    csr: () => csr(requestFor(node0), { signerName: 'kubernetes.io/kube-apiserver-client' }),
    reason: DenyReason.wrongSigner,
    message: `signerName is kubernetes.io/kube-apiserver-client, not ${MIGRATION_SIGNER_NAME}`,
  },
  {
    rule: 'only the daemon ServiceAccount may ask',
    csr: () => csr(requestFor(node0), { username: 'system:serviceaccount:default:intruder' }),
    reason: DenyReason.unexpectedRequester,
    message: `requested by "system:serviceaccount:default:intruder"; only ${DEFAULT_DAEMON_USERNAME} (the node daemon's ServiceAccount) may request`,
  },
  {
    rule: 'the requester must carry a node binding',
    csr: () => csr(requestFor(node0), { extraNodes: null }),
    reason: DenyReason.noNodeBinding,
    message: `the requester's credentials name no ${NODE_NAME_EXTRA}: request with a service account token bound to the daemon's pod`,
  },
  {
    rule: 'exactly one node in the binding',
    csr: () => csr(requestFor(node0), { extraNodes: [node0, 'kwok-node-1'] }),
    reason: DenyReason.noNodeBinding,
    message: `name 2 or an invalid ${NODE_NAME_EXTRA}`,
  },
  {
    rule: 'a lifetime must be asked for',
    csr: () => csr(requestFor(node0), { expirationSeconds: undefined }),
    reason: DenyReason.lifetimeNotBounded,
    message: 'spec.expirationSeconds must be set (at most 86400)',
  },
  {
    rule: 'the lifetime is bounded',
    csr: () => csr(requestFor(node0), { expirationSeconds: 86_401 }),
    reason: DenyReason.lifetimeTooLong,
    message: 'spec.expirationSeconds is 86401; at most 86400 is allowed',
  },
  {
    rule: 'usages must include server auth',
    csr: () => csr(requestFor(node0), { usages: ['digital signature', 'client auth'] }),
    reason: DenyReason.unexpectedUsages,
    message:
      'spec.usages is [digital signature, client auth]; it must be exactly [digital signature, client auth, server auth]',
  },
  {
    rule: 'usages may not add anything',
    csr: () =>
      csr(requestFor(node0), { usages: ['digital signature', 'client auth', 'server auth', 'key encipherment'] }),
    reason: DenyReason.unexpectedUsages,
    message: 'spec.usages is [digital signature, client auth, server auth, key encipherment]',
  },
  {
    rule: 'the request must be a readable PKCS#10 request',
    csr: () => csr(pemEncode('CERTIFICATE REQUEST', Buffer.from([0x30, 0x03, 0x02, 0x01]))),
    reason: DenyReason.malformedRequest,
    message: /^spec\.request is not a readable certificate request: DerError: malformed DER/,
  },
  {
    rule: 'the key must be ECDSA P-256, not RSA',
    csr: () => {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const pem = customRequest({
        subject: commonNameOnly(identity(node0)),
        extensions: [sanFor(identity(node0))],
        publicKey,
        signer: privateKey,
        rsa: true,
      });
      return csr(pem);
    },
    reason: DenyReason.unsupportedKey,
    message: 'the key is rsa 2048 bits; it must be EC prime256v1 (P-256)',
  },
  {
    rule: 'the key must be ECDSA P-256, not P-384',
    csr: () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
      const pem = customRequest({
        subject: commonNameOnly(identity(node0)),
        extensions: [sanFor(identity(node0))],
        publicKey,
        signer: privateKey,
      });
      return csr(pem);
    },
    reason: DenyReason.unsupportedKey,
    message: 'the key is EC secp384r1; it must be EC prime256v1 (P-256)',
  },
  {
    rule: 'the request must be signed by its own key (proof of possession)',
    csr: () => {
      const { publicKey } = ec();
      const pem = customRequest({
        subject: commonNameOnly(identity(node0)),
        extensions: [sanFor(identity(node0))],
        publicKey,
        signer: ec().privateKey,
      });
      return csr(pem);
    },
    reason: DenyReason.badRequestSignature,
    message: 'the request is not signed with ecdsa-with-SHA256 by the key it carries',
  },
  {
    rule: 'the subject is only a CN',
    csr: () =>
      csr(
        requestFor(node0, {
          subject: sequence(
            set(sequence(objectIdentifier('2.5.4.10'), utf8String('system:masters'))),
            set(sequence(objectIdentifier(Oid.commonName), utf8String(identity(node0)))),
          ),
        }),
      ),
    reason: DenyReason.badSubject,
    message: `the subject must be exactly CN=${identity(node0)}; found 2.5.4.10=system:masters, 2.5.4.3=${identity(node0)}`,
  },
  {
    rule: 'the CN is a node identity',
    csr: () => csr(requestFor(node0, { subject: commonNameOnly('admin') })),
    reason: DenyReason.badSubject,
    message: `the subject must be exactly CN=${identity(node0)}; found 2.5.4.3=admin`,
  },
  {
    rule: 'the CN names the node the token is bound to (a forged node)',
    csr: () => csr(requestFor('kwok-node-1')),
    reason: DenyReason.nodeMismatch,
    message: `the request is for node kwok-node-1 (CN=${identity('kwok-node-1')}) but the requester's token is bound to a pod on node kwok-node-0`,
  },
  {
    rule: 'the SAN is required',
    csr: () => csr(requestFor(node0, { extensions: [] })),
    reason: DenyReason.badSubjectAltNames,
    message: `the subject alternative names must be exactly DNS:${identity(node0)}; found none`,
  },
  {
    rule: 'the SAN names only this node',
    csr: () => csr(requestFor(node0, { extensions: [sanFor(identity(node0), identity('kwok-node-1'))] })),
    reason: DenyReason.badSubjectAltNames,
    message: `found DNS:${identity(node0)}, DNS:${identity('kwok-node-1')}`,
  },
  {
    rule: 'the SAN carries no IP address',
    csr: () =>
      csr(
        requestFor(node0, {
          extensions: [
            extension(
              Oid.subjectAltName,
              false,
              sequence(implicit(2, Buffer.from(identity(node0))), implicit(7, Buffer.from([10, 0, 0, 1]))),
            ),
          ],
        }),
      ),
    reason: DenyReason.badSubjectAltNames,
    message: `found DNS:${identity(node0)}, IP`,
  },
];

test.each(rows)('denies when $rule ($reason)', ({ csr: make, reason, message }) => {
  const decision = decideCsr(make());
  expect(decision.approve).toBe(false);
  if (decision.approve) return;
  expect(decision.reason).toBe(reason);
  if (typeof message === 'string') expect(decision.message).toContain(message);
  else expect(decision.message).toMatch(message);
});

test('approves the daemon request for its own node, with the lifetime it asked for', () => {
  const decision = decideCsr(csr(requestFor(node0), { expirationSeconds: 7200 }));
  expect(decision).toMatchObject({ approve: true, nodeName: node0, lifetimeSeconds: 7200 });
  if (decision.approve) {
    expect(decision.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(decision.message).toContain('node kwok-node-0 verified');
  }
});

test('the requester and the longest lifetime come from the policy', () => {
  const policy = { requesterUsername: 'system:serviceaccount:other:daemon', maxExpirationSeconds: 3600 };
  expect(decideCsr(csr(requestFor(node0), { username: policy.requesterUsername }), policy)).toMatchObject({
    approve: false,
    reason: DenyReason.lifetimeTooLong,
  });
  expect(
    decideCsr(csr(requestFor(node0), { username: policy.requesterUsername, expirationSeconds: 3600 }), policy),
  ).toMatchObject({ approve: true });
});
