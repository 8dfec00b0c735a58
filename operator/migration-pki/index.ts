// The migration PKI: per-node certificates for the live-migration relay, issued by kubevisor's own signer through
// certificates.k8s.io CertificateSigningRequests — no cert-manager, and no key shared by every node. The daemon
// requests (node-certificate.ts), the controller signs (migration-signer.ts), the relay verifies
// (operator/daemon/migration-relay*.ts, with certificateIdentity).
export * from './ca-store';
export * from './certificate-authority';
export * from './csr';
export * from './csr-object';
export * from './kube-node-csr-api';
export * from './kube-signer-writer';
export * from './migration-signer';
export * from './node-certificate';
export * from './node-identity';
export * from './pem';
export * from './signer-policy';
export * from './signer-reconcile';
export { certificateIdentity } from './x509';
