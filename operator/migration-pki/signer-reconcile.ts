// One signer step for one CSR, level-triggered: read where the CSR is, do the next thing (approve and issue, deny,
// or fail), and do nothing for a CSR that is already finished. Writes go through a small interface so the step
// is tested without an API server.
import type { CertificateSigningRequest } from './csr-object';
import { csrState } from './csr-object';
import { issueNodeCertificate, type MigrationCa } from './certificate-authority';
import { APPROVED_REASON, decideCsr, type SignerPolicy } from './signer-policy';

/** The writes the signer makes to a CSR (KubeSignerWriter is the real one). */
export interface SignerCsrWriter {
  /** Adds an Approved condition (through /approval); resolves to the updated CSR. */
  approve(csr: CertificateSigningRequest, reason: string, message: string): Promise<CertificateSigningRequest>;
  /** Adds a Denied condition (through /approval). */
  deny(csr: CertificateSigningRequest, reason: string, message: string): Promise<void>;
  /** Adds a Failed condition (through /status): approved, but the signer will not sign it. */
  fail(csr: CertificateSigningRequest, reason: string, message: string): Promise<void>;
  /** Sets status.certificate (through /status). */
  issue(csr: CertificateSigningRequest, certificatePem: string): Promise<void>;
}

/** What one step did. */
export type SignerOutcome = 'unchanged' | 'issued' | 'denied' | 'failed';

/** What one step did, and why (the condition's reason and message) when it refused. */
export interface SignerStepResult {
  outcome: SignerOutcome;
  reason?: string;
  message?: string;
}

/** What one signer step works with. */
export interface SignStepOptions {
  policy: SignerPolicy;
  ca: MigrationCa;
  writer: SignerCsrWriter;
  /** @default () => new Date() */
  now?: () => Date;
}

/**
 * Moves `csr` one step on: a pending request is approved and issued, or denied; an approved one (by the signer
 * earlier, or by a person) is issued if it passes the policy, else marked Failed — the policy binds the
 * signature, not only the approval. Issued, denied and failed requests are left alone.
 */
export async function signStep(csr: CertificateSigningRequest, options: SignStepOptions): Promise<SignerStepResult> {
  const state = csrState(csr);
  if (state === 'issued' || state === 'denied' || state === 'failed') return { outcome: 'unchanged' };
  const decision = decideCsr(csr, options.policy);
  if (!decision.approve) {
    if (state === 'pending') await options.writer.deny(csr, decision.reason, decision.message);
    else await options.writer.fail(csr, decision.reason, decision.message);
    const { reason, message } = decision;
    return { outcome: state === 'pending' ? 'denied' : 'failed', reason, message };
  }
  const approved = state === 'pending' ? await options.writer.approve(csr, APPROVED_REASON, decision.message) : csr;
  const certificatePem = issueNodeCertificate(options.ca, {
    nodeName: decision.nodeName,
    publicKey: decision.publicKey,
    lifetimeSeconds: decision.lifetimeSeconds,
    now: (options.now ?? (() => new Date()))(),
  });
  await options.writer.issue(approved, certificatePem);
  return { outcome: 'issued' };
}
