import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadInClusterConfig,
  loadKubeCredentials,
  loadKubeconfig,
  parseKubeconfig,
} from '../../../operator/kube/config';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kv-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function kubeconfig(file: string, doc: Record<string, unknown>): string {
  const path = join(dir, file);
  writeFileSync(path, JSON.stringify(doc));
  return path;
}

const twoContexts = {
  apiVersion: 'v1',
  kind: 'Config',
  'current-context': 'dev',
  clusters: [
    { name: 'dev-cluster', cluster: { server: 'https://dev:6443', 'certificate-authority-data': b64('DEV CA') } },
    {
      name: 'prod-cluster',
      cluster: { server: 'https://prod:6443', 'certificate-authority': 'ca.pem', 'tls-server-name': 'api.prod' },
    },
  ],
  users: [
    { name: 'dev-user', user: { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') } },
    { name: 'prod-user', user: { token: 'prod-token' } },
  ],
  contexts: [
    { name: 'dev', context: { cluster: 'dev-cluster', user: 'dev-user', namespace: 'vms' } },
    { name: 'prod', context: { cluster: 'prod-cluster', user: 'prod-user' } },
  ],
};

describe('kubeconfig', () => {
  test('current-context: server, CA and client certificate from base64 data', () => {
    expect(loadKubeconfig(kubeconfig('config', twoContexts))).toEqual({
      server: 'https://dev:6443',
      caPem: 'DEV CA',
      clientCertPem: 'CERT',
      clientKeyPem: 'KEY',
      namespace: 'vms',
    });
  });

  test('another context by name; file paths are relative to the kubeconfig; token and tls-server-name', () => {
    writeFileSync(join(dir, 'ca.pem'), 'PROD CA');
    expect(loadKubeconfig(kubeconfig('config', twoContexts), { context: 'prod' })).toEqual({
      server: 'https://prod:6443',
      caPem: 'PROD CA',
      tlsServerName: 'api.prod',
      token: 'prod-token',
    });
  });

  test('YAML with file-based client certificate, tokenFile and insecure-skip-tls-verify', () => {
    mkdirSync(join(dir, 'certs'));
    writeFileSync(join(dir, 'certs', 'c.pem'), 'FILE CERT');
    writeFileSync(join(dir, 'certs', 'k.pem'), 'FILE KEY');
    writeFileSync(join(dir, 'tok'), 'file-token\n');
    const yaml = `
apiVersion: v1
kind: Config
current-context: x
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:1234
    insecure-skip-tls-verify: true
users:
- name: u
  user:
    client-certificate: certs/c.pem
    client-key: certs/k.pem
    tokenFile: tok
contexts:
- name: x
  context: {cluster: c, user: u}
`;
    expect(parseKubeconfig(yaml, dir)).toEqual({
      server: 'https://127.0.0.1:1234',
      insecureSkipTlsVerify: true,
      clientCertPem: 'FILE CERT',
      clientKeyPem: 'FILE KEY',
      token: 'file-token',
      tokenFile: join(dir, 'tok'),
    });
  });

  test('several files merge as kubectl merges them: first definition and first current-context win', () => {
    const first = kubeconfig('a', {
      clusters: [{ name: 'dev-cluster', cluster: { server: 'https://override:1' } }],
    });
    const second = kubeconfig('b', twoContexts);
    const creds = loadKubeconfig([join(dir, 'missing'), first, second]);
    expect(creds.server).toBe('https://override:1');
    expect(creds.clientCertPem).toBe('CERT');
  });

  test('says what is wrong: no current context, unknown context or cluster, exec plugins', () => {
    expect(() => parseKubeconfig(JSON.stringify({ ...twoContexts, 'current-context': '' }), dir)).toThrow(
      /no current-context/,
    );
    expect(() => parseKubeconfig(JSON.stringify(twoContexts), dir, { context: 'nope' })).toThrow(
      /context "nope" not found/,
    );
    const badCluster = { ...twoContexts, contexts: [{ name: 'dev', context: { cluster: 'gone', user: 'dev-user' } }] };
    expect(() => parseKubeconfig(JSON.stringify(badCluster), dir)).toThrow(/cluster "gone", which is not defined/);
    const exec = { ...twoContexts, users: [{ name: 'dev-user', user: { exec: { command: 'aws' } } }] };
    expect(() => parseKubeconfig(JSON.stringify(exec), dir)).toThrow(/exec plugin, which is not supported/);
    expect(() => loadKubeconfig(join(dir, 'missing'))).toThrow();
  });
});

describe('in-cluster config', () => {
  function serviceAccount(): string {
    const sa = join(dir, 'sa');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), 'sa-token\n');
    writeFileSync(join(sa, 'ca.crt'), 'CLUSTER CA');
    writeFileSync(join(sa, 'namespace'), 'kubevisor-system');
    return sa;
  }

  test('from the service account and KUBERNETES_SERVICE_HOST/PORT, with the token file to re-read', () => {
    const sa = serviceAccount();
    const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
    expect(loadInClusterConfig({ env, serviceAccountDir: sa })).toEqual({
      server: 'https://10.96.0.1:443',
      caPem: 'CLUSTER CA',
      token: 'sa-token',
      tokenFile: join(sa, 'token'),
      namespace: 'kubevisor-system',
    });
  });

  test('brackets an IPv6 service address; fails clearly outside a cluster or without a token', () => {
    const sa = serviceAccount();
    expect(
      loadInClusterConfig({
        env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' },
        serviceAccountDir: sa,
      }).server,
    ).toBe('https://[fd00::1]:443');
    expect(() => loadInClusterConfig({ env: {}, serviceAccountDir: sa })).toThrow(/not running in a cluster/);
    rmSync(join(sa, 'token'));
    expect(() =>
      loadInClusterConfig({
        env: { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' },
        serviceAccountDir: sa,
      }),
    ).toThrow(/cannot read .*token/);
  });

  test('loadKubeCredentials tries an explicit kubeconfig, then $KUBECONFIG, then in-cluster, then ~/.kube/config', () => {
    const sa = serviceAccount();
    writeFileSync(join(dir, 'ca.pem'), 'PROD CA');
    const explicit = kubeconfig('explicit', { ...twoContexts, 'current-context': 'prod' });
    const fromEnv = kubeconfig('env', twoContexts);
    mkdirSync(join(dir, 'home', '.kube'), { recursive: true });
    writeFileSync(
      join(dir, 'home', '.kube', 'config'),
      JSON.stringify({ ...twoContexts, clusters: [{ name: 'dev-cluster', cluster: { server: 'https://home:1' } }] }),
    );
    const inCluster = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };
    const base = { serviceAccountDir: sa, homeDir: join(dir, 'home') };
    expect(
      loadKubeCredentials({ ...base, kubeconfig: explicit, env: { ...inCluster, KUBECONFIG: fromEnv } }).server,
    ).toBe('https://prod:6443');
    expect(loadKubeCredentials({ ...base, env: { ...inCluster, KUBECONFIG: fromEnv } }).server).toBe(
      'https://dev:6443',
    );
    expect(loadKubeCredentials({ ...base, env: inCluster }).server).toBe('https://10.0.0.1:443');
    expect(loadKubeCredentials({ ...base, env: {} }).server).toBe('https://home:1');
    expect(() => loadKubeCredentials({ serviceAccountDir: sa, homeDir: join(dir, 'nohome'), env: {} })).toThrow(
      /no Kubernetes credentials/,
    );
  });
});
