// NodeCsrApi over the API server: create the CSR, wait for the signer with a bounded watch on that one CSR, and
// read the CA bundle ConfigMap. The daemon needs only create/get/watch on CSRs and get on that ConfigMap.
import { isGone } from '../kube/errors';
import type { KubeClient } from '../kube/client';
import type { KubeObject } from '../kube/object';
import { CSR_API_VERSION, CSR_KIND, CSR_PATH, csrState, type CertificateSigningRequest } from './csr-object';
import { CA_BUNDLE_KEY, DEFAULT_CA_CONFIGMAP_NAME, DEFAULT_PKI_NAMESPACE } from './node-identity';
import type { NodeCsrApi } from './node-certificate';

/** What the API needs of a client. */
export type NodeCsrClient = Pick<KubeClient, 'create' | 'get' | 'watch'>;

export interface KubeNodeCsrApiOptions {
  /** @default 'kubevisor-system' */
  namespace?: string;
  /** @default 'kubevisor-migration-ca' */
  configMapName?: string;
}

/** Issued, denied or failed: nothing more will happen to it. */
function finished(csr: CertificateSigningRequest): boolean {
  const state = csrState(csr);
  return state === 'issued' || state === 'denied' || state === 'failed';
}

/** The daemon's NodeCsrApi on a KubeClient authenticated with its pod-bound token. */
export class KubeNodeCsrApi implements NodeCsrApi {
  constructor(
    private readonly client: NodeCsrClient,
    private readonly options: KubeNodeCsrApiOptions = {},
  ) {}

  async createCsr(csr: CertificateSigningRequest): Promise<string> {
    const created = await this.client.create(csr);
    const name = created.metadata.name;
    if (!name) throw new Error('the API server returned a CSR without a name');
    return name;
  }

  async waitForCsr(
    name: string,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<CertificateSigningRequest> {
    const deadline = Date.now() + options.timeoutMs;
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => stop.abort(), options.timeoutMs);
    try {
      while (!stop.signal.aborted) {
        // Get first (the signer may have been quick), then watch this one CSR from that version.
        const current = await this.client.get<CertificateSigningRequest>(CSR_API_VERSION, CSR_KIND, name);
        if (finished(current)) return current;
        let result: CertificateSigningRequest | undefined;
        const watch = new AbortController();
        const stopWatch = (): void => watch.abort();
        stop.signal.addEventListener('abort', stopWatch, { once: true });
        try {
          await this.client.watch<CertificateSigningRequest>(
            CSR_PATH,
            {
              resourceVersion: current.metadata.resourceVersion,
              fieldSelector: `metadata.name=${name}`,
              timeoutSeconds: Math.max(1, Math.min(60, Math.ceil((deadline - Date.now()) / 1000))),
            },
            (event) => {
              if (event.type === 'DELETED') throw new Error(`CSR ${name} was deleted before it was issued`);
              if ((event.type === 'ADDED' || event.type === 'MODIFIED') && finished(event.object)) {
                result = event.object;
                watch.abort();
              }
            },
            watch.signal,
          );
        } catch (error) {
          // 410: our version is too old; get again. Anything else is the caller's to retry.
          if (!isGone(error)) throw error;
        } finally {
          stop.signal.removeEventListener('abort', stopWatch);
        }
        if (result) return result;
      }
      if (options.signal?.aborted) throw new Error(`waiting for CSR ${name}: aborted`);
      throw new Error(`CSR ${name} was not issued, denied or failed within ${options.timeoutMs} ms`);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async readCaBundle(): Promise<string> {
    const namespace = this.options.namespace ?? DEFAULT_PKI_NAMESPACE;
    const name = this.options.configMapName ?? DEFAULT_CA_CONFIGMAP_NAME;
    const configMap = await this.client.get<KubeObject & { data?: Record<string, string> }>(
      'v1',
      'ConfigMap',
      name,
      namespace,
    );
    const bundle = configMap.data?.[CA_BUNDLE_KEY];
    if (!bundle) throw new Error(`ConfigMap ${namespace}/${name} has no ${CA_BUNDLE_KEY}`);
    return bundle;
  }
}
