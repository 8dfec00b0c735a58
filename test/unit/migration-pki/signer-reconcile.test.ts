/**
 * One signer step per CSR state: pending → approved and issued (or denied), approved by someone else → issued only if
 * the policy holds (else Failed), and finished CSRs left alone — so a restart or a second signer changes nothing.
 */
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import {
  APPROVED_REASON,
  DEFAULT_DAEMON_USERNAME,
  DEFAULT_SIGNER_POLICY,
  NODE_NAME_EXTRA,
  createMigrationCa,
  loadMigrationCa,
  nodeCertificateRequest,
  nodeCsrObject,
  signStep,
  type CertificateSigningRequest,
  type SignerCsrWriter,
} from '../../../operator/migration-pki';

const ca = loadMigrationCa(createMigrationCa());

function csrFor(requestNode: string, boundNode: string, status?: CertificateSigningRequest['status']) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csr = nodeCsrObject(requestNode, nodeCertificateRequest(requestNode, privateKey, publicKey), 3600);
  csr.metadata.name = `csr-${requestNode}`;
  csr.spec.username = DEFAULT_DAEMON_USERNAME;
  csr.spec.extra = { [NODE_NAME_EXTRA]: [boundNode] };
  if (status) csr.status = status;
  return csr;
}

/** Records every write; approve returns the CSR with the Approved condition, as the API server would. */
function recordingWriter() {
  const calls: { op: string; reason?: string; message?: string; certificatePem?: string }[] = [];
  const writer: SignerCsrWriter = {
    approve: async (csr, reason, message) => {
      calls.push({ op: 'approve', reason, message });
      return { ...csr, status: { conditions: [{ type: 'Approved', status: 'True', reason }] } };
    },
    deny: async (_csr, reason, message) => void calls.push({ op: 'deny', reason, message }),
    fail: async (_csr, reason, message) => void calls.push({ op: 'fail', reason, message }),
    issue: async (_csr, certificatePem) => void calls.push({ op: 'issue', certificatePem }),
  };
  return { calls, writer };
}

const step = (csr: CertificateSigningRequest, writer: SignerCsrWriter) =>
  signStep(csr, { policy: DEFAULT_SIGNER_POLICY, ca, writer });

test('a valid pending request is approved, then issued a certificate for the bound node', async () => {
  const { calls, writer } = recordingWriter();
  expect(await step(csrFor('kwok-node-0', 'kwok-node-0'), writer)).toEqual({ outcome: 'issued' });
  expect(calls.map((c) => c.op)).toEqual(['approve', 'issue']);
  expect(calls[0].reason).toBe(APPROVED_REASON);
  const cert = new X509Certificate(calls[1].certificatePem ?? '');
  expect(cert.subject).toBe('CN=kubevisor-node:kwok-node-0');
  expect(cert.verify(ca.cert.publicKey)).toBe(true);
});

test('a forged pending request is denied with the policy reason and message', async () => {
  const { calls, writer } = recordingWriter();
  const result = await step(csrFor('kwok-node-1', 'kwok-node-0'), writer);
  expect(result).toMatchObject({ outcome: 'denied', reason: 'NodeMismatch' });
  expect(calls).toEqual([{ op: 'deny', reason: 'NodeMismatch', message: expect.stringContaining('kwok-node-1') }]);
});

test('a request someone else approved is still checked: a forged one is marked Failed, never signed', async () => {
  const { calls, writer } = recordingWriter();
  const approvedByHand = csrFor('kwok-node-1', 'kwok-node-0', {
    conditions: [{ type: 'Approved', status: 'True', reason: 'KubectlApprove' }],
  });
  expect(await step(approvedByHand, writer)).toMatchObject({ outcome: 'failed', reason: 'NodeMismatch' });
  expect(calls.map((c) => c.op)).toEqual(['fail']);
});

test('an approved but unsigned request (a signer that stopped half way) is issued without approving again', async () => {
  const { calls, writer } = recordingWriter();
  const approved = csrFor('kwok-node-0', 'kwok-node-0', {
    conditions: [{ type: 'Approved', status: 'True', reason: APPROVED_REASON }],
  });
  expect(await step(approved, writer)).toEqual({ outcome: 'issued' });
  expect(calls.map((c) => c.op)).toEqual(['issue']);
});

test.each([
  ['issued', { certificate: 'LS0t', conditions: [{ type: 'Approved', status: 'True' }] }],
  ['denied', { conditions: [{ type: 'Denied', status: 'True' }] }],
  [
    'failed',
    {
      conditions: [
        { type: 'Approved', status: 'True' },
        { type: 'Failed', status: 'True' },
      ],
    },
  ],
])('a %s request is left alone', async (_state, status) => {
  const { calls, writer } = recordingWriter();
  expect(await step(csrFor('kwok-node-0', 'kwok-node-0', status), writer)).toEqual({ outcome: 'unchanged' });
  expect(calls).toEqual([]);
});
