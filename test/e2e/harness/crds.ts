// Installs kubevisor's CRDs, exactly as committed in deploy/crds, and waits until the API server serves them.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { KubeClient, KubeObject } from './kube-client';

const CRD_DIR = path.join(__dirname, '..', '..', '..', 'deploy', 'crds');

export function crdObjects(): KubeObject[] {
  return readdirSync(CRD_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => parse(readFileSync(path.join(CRD_DIR, f), 'utf8')) as KubeObject);
}

export async function installCrds(client: KubeClient): Promise<void> {
  await client.createCrdsAndWaitEstablished(crdObjects());
}
