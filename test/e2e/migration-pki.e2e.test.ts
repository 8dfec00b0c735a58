/**
 * Per-node migration certificates on the real control plane, no cert-manager: two "daemon" pods on the KWOK nodes
 * get pod-bound tokens, the API server names each token's node (user-info extra), the migration signer — running
 * with the controller's RBAC, not as admin — issues one certificate per node from its own CA, and a source and a
 * target relay authenticate each other with them while moving data. A daemon on node 0 asking for node 1's
 * identity is denied.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../operator/kube';
import { serveMigrationSource, serveMigrationTarget } from '../../operator/daemon/migration-relay';
import {
  CSR_API_VERSION,
  CSR_KIND,
  CertificateRefusedError,
  DEFAULT_CA_CONFIGMAP_NAME,
  DEFAULT_CA_SECRET_NAME,
  KubeNodeCsrApi,
  MIGRATION_SIGNER_NAME,
  NODE_NAME_EXTRA,
  requestNodeCertificate,
  startMigrationSigner,
  type CertificateSigningRequest,
  type MigrationSigner,
  type NodeCredentials,
} from '../../operator/migration-pki';
import type { KubeClient, KubeObject } from './harness/kube-client';
import { installControllerIdentity, type ControllerIdentity } from './harness/operator-identity';
import {
  DAEMON_NAMESPACE,
  installDaemonIdentity,
  nodeIdentity,
  whoAmI,
  type DaemonIdentityInstall,
  type NodeIdentity,
} from './harness/node-identity';
import { sharedControlPlane, sharedControlPlaneInfo } from './harness/shared';

const admin = sharedControlPlane();
const info = sharedControlPlaneInfo();
const [node0, node1] = info.nodeNames;
const logger = createLogger({ level: 'warn', write: (line) => process.stderr.write(`${line}\n`) });

let install: DaemonIdentityInstall;
let identities: NodeIdentity[] = [];
let signer: MigrationSigner | undefined;
let signerClient: KubeClient | undefined;
/** The controller's ServiceAccount and rules, as the install grants them; the signer runs with its token. */
let controllerIdentity: ControllerIdentity | undefined;
let dir: string;
/** Whether the CA Secret was absent before this test (then the test's signer made it, and the test removes it). */
let caMadeHere = false;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migration-pki-e2e-'));
  install = await installDaemonIdentity(admin);
  controllerIdentity = await installControllerIdentity(admin, { platformNamespace: DAEMON_NAMESPACE });
  caMadeHere = !(await admin.tryGet('v1', 'Secret', DEFAULT_CA_SECRET_NAME, DAEMON_NAMESPACE));
  identities = [await nodeIdentity(admin, node0), await nodeIdentity(admin, node1)];
});

afterAll(async () => {
  await signer?.stop();
  signerClient?.close();
  for (const identity of identities) await identity.remove();
  // The CSRs this run's daemon pods made (the API server's CSR cleaner would take them after an hour).
  const podUids = new Set(identities.map((i) => i.podUid));
  const csrs = await admin.list<CertificateSigningRequest>(CSR_API_VERSION, CSR_KIND, {
    fieldSelector: `spec.signerName=${MIGRATION_SIGNER_NAME}`,
  });
  for (const csr of csrs) {
    if (!podUids.has(csr.spec.extra?.['authentication.kubernetes.io/pod-uid']?.[0] ?? '')) continue;
    await admin.delete(CSR_API_VERSION, CSR_KIND, csr.metadata.name ?? '', undefined, { ignoreNotFound: true });
  }
  // The CA, if this run made it.
  if (caMadeHere) {
    await admin.delete('v1', 'Secret', DEFAULT_CA_SECRET_NAME, DAEMON_NAMESPACE, { ignoreNotFound: true });
    await admin.delete('v1', 'ConfigMap', DEFAULT_CA_CONFIGMAP_NAME, DAEMON_NAMESPACE, { ignoreNotFound: true });
  }
  // In the reverse order of their install: the daemon's removes kubevisor-system if it made it.
  await controllerIdentity?.remove();
  await install?.remove();
  admin.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('migration-pki: pod-bound daemon tokens, per-node certificates, a relay between them, a forged node refused', async () => {
  // 1. The API server names each daemon token's node.
  for (const identity of identities) {
    const user = await whoAmI(identity.client);
    expect(user.username).toBe(install.username);
    expect(user.extra?.['authentication.kubernetes.io/pod-name']).toEqual([identity.podName]);
    expect(user.extra?.[NODE_NAME_EXTRA]).toEqual([identity.nodeName]);
  }

  // 2. The signer, as the controller runs it, with only the controller's RBAC (the install's ServiceAccount).
  signerClient = admin.withToken(controllerIdentity!.token);
  signer = await startMigrationSigner({
    client: signerClient,
    namespace: controllerIdentity!.platformNamespace,
    policy: { requesterUsername: install.username },
    logger,
  });
  await signer.waitForSync(30_000);
  const caBundle = await admin.get<KubeObject & { data?: Record<string, string> }>(
    'v1',
    'ConfigMap',
    DEFAULT_CA_CONFIGMAP_NAME,
    DAEMON_NAMESPACE,
  );
  expect(caBundle.data?.['ca.crt']).toBe(signer.caCertPem);

  // 3. Each daemon, with its own token and the daemon's RBAC, gets a certificate for its own node.
  const credentials: NodeCredentials[] = [];
  for (const identity of identities) {
    const api = new KubeNodeCsrApi(identity.client);
    const issued = await requestNodeCertificate({ api, nodeName: identity.nodeName, timeoutMs: 30_000 });
    credentials.push(issued);
    const csr = await admin.get<CertificateSigningRequest>(CSR_API_VERSION, CSR_KIND, issued.csrName);
    expect(csr.spec.username).toBe(install.username);
    expect(csr.spec.extra?.[NODE_NAME_EXTRA]).toEqual([identity.nodeName]);
    // What the cleanup goes by: the daemon pod the token is bound to.
    expect(csr.spec.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([identity.podUid]);
    expect(csr.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Approved', status: 'True', reason: 'NodeIdentityVerified' }),
    );
    expect(issued.caPem).toBe(signer.caCertPem);
  }
  expect(credentials[0].certPem).not.toBe(credentials[1].certPem);
  expect(credentials[0].keyPem).not.toBe(credentials[1].keyPem);

  // 4. A migration's data path between the two: source on node 0, target on node 1, over loopback.
  const sourceRun = path.join(dir, 'source-run');
  const targetRun = path.join(dir, 'target-run');
  fs.mkdirSync(sourceRun);
  fs.mkdirSync(targetRun);
  const received = createHash('sha256');
  let receivedBytes = 0;
  const targetCh = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('data', (chunk: Buffer) => {
      received.update(chunk);
      receivedBytes += chunk.length;
    });
    socket.on('end', () => socket.end('ok'));
  });
  await new Promise<void>((resolve) => targetCh.listen(path.join(targetRun, 'rx.sock'), resolve));
  const tlsOf = (c: NodeCredentials) => ({ key: c.keyPem, cert: c.certPem, ca: c.caPem });
  const target = await serveMigrationTarget({
    unixSocketPath: path.join(targetRun, 'rx.sock'),
    host: '127.0.0.1',
    port: 0,
    tls: tlsOf(credentials[1]),
    expectedPeerNode: node0,
    timeoutMs: 30_000,
    logger,
  });
  const source = await serveMigrationSource({
    unixSocketPath: path.join(sourceRun, 'tx.sock'),
    target: target.address,
    tls: tlsOf(credentials[0]),
    expectedPeerNode: node1,
    timeoutMs: 30_000,
    logger,
  });
  const payload = randomBytes(4 * 1024 * 1024);
  const answer = await new Promise<string>((resolve, reject) => {
    const ch = net.connect({ path: path.join(sourceRun, 'tx.sock'), allowHalfOpen: true });
    let text = '';
    ch.on('data', (chunk: Buffer) => (text += chunk.toString()));
    ch.on('error', reject);
    ch.on('close', () => resolve(text));
    ch.end(payload);
  });
  await Promise.all([source.done, target.done]);
  await new Promise((resolve) => targetCh.close(resolve));
  expect(answer).toBe('ok');
  expect(receivedBytes).toBe(payload.length);
  expect(received.digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
  expect(source.stats.bytesToPeer).toBe(payload.length);

  // 5. The daemon on node 0 asks for node 1's identity: denied, with the reason on the CSR.
  const forged = await requestNodeCertificate({
    api: new KubeNodeCsrApi(identities[0].client),
    nodeName: node1,
    timeoutMs: 30_000,
  }).catch((error: unknown) => error);
  expect(forged).toBeInstanceOf(CertificateRefusedError);
  const refused = forged as CertificateRefusedError;
  expect(refused.reason).toBe('NodeMismatch');
  const deniedCsr = await admin.get<CertificateSigningRequest>(CSR_API_VERSION, CSR_KIND, refused.csrName);
  expect(deniedCsr.status?.certificate).toBeUndefined();
  expect(deniedCsr.status?.conditions).toContainEqual(
    expect.objectContaining({
      type: 'Denied',
      status: 'True',
      reason: 'NodeMismatch',
      message: `the request is for node ${node1} (CN=kubevisor-node:${node1}) but the requester's token is bound to a pod on node ${node0}`,
    }),
  );

  process.stdout.write('migration-pki: 2 node certificates issued, forged node refused\n');
});
