// The signer's writes to CSRs through the API server. Each is a PUT of the object as the signer read it (its
// resourceVersion makes a stale write fail with 409, which the work queue retries after the newer version arrives).
// Approval and denial go through /approval (the `approve` verb on the signer), the certificate and Failed through
// /status (the `sign` verb): the two permissions the API server checks for a custom signer.
import type { KubeClient } from '../kube/client';
import { csrCondition, type CertificateSigningRequest } from './csr-object';
import type { SignerCsrWriter } from './signer-reconcile';

/** What the writer needs of a client. */
export type SignerWriterClient = Pick<KubeClient, 'update'>;

/** The signer's CSR writes on a KubeClient (the controller's). */
export class KubeSignerWriter implements SignerCsrWriter {
  constructor(
    private readonly client: SignerWriterClient,
    private readonly now: () => Date = () => new Date(),
  ) {}

  approve(csr: CertificateSigningRequest, reason: string, message: string): Promise<CertificateSigningRequest> {
    return this.client.update(this.withCondition(csr, 'Approved', reason, message), { subresource: 'approval' });
  }

  async deny(csr: CertificateSigningRequest, reason: string, message: string): Promise<void> {
    await this.client.update(this.withCondition(csr, 'Denied', reason, message), { subresource: 'approval' });
  }

  async fail(csr: CertificateSigningRequest, reason: string, message: string): Promise<void> {
    await this.client.update(this.withCondition(csr, 'Failed', reason, message), { subresource: 'status' });
  }

  async issue(csr: CertificateSigningRequest, certificatePem: string): Promise<void> {
    const certificate = Buffer.from(certificatePem, 'utf8').toString('base64');
    await this.client.update<CertificateSigningRequest>(
      { ...csr, status: { ...csr.status, certificate } },
      { subresource: 'status' },
    );
  }

  private withCondition(
    csr: CertificateSigningRequest,
    type: string,
    reason: string,
    message: string,
  ): CertificateSigningRequest {
    const conditions = [...(csr.status?.conditions ?? []), csrCondition(type, reason, message, this.now())];
    return { ...csr, status: { ...csr.status, conditions } };
  }
}
