/**
 * The platform's objects without a cdk8s app of the caller's: the cdk8s constructs synthesized in memory. The Pulumi
 * components, `deploy/kubevisor.yaml` and the tests use this, so every frontend installs exactly what the cdk8s
 * constructs synthesize (one renderer).
 */
import { App, Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { NodeSetup } from '../cdk8s/node-setup';
import { KubevisorPlatform } from '../cdk8s/platform';
import type { KubevisorPlatformProps, NodeSetupProps } from './props';

/** A Kubernetes object as plain JSON. */
export type ManifestObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};

/** Synthesizes what `build` adds to an in-memory chart (validations run; nothing is written). */
export function synthInMemory(build: (chart: Construct) => void): ManifestObject[] {
  const app = new App({ outdir: '/nonexistent' });
  const chart = new Chart(app, 'kubevisor', { disableResourceNameHashes: true });
  build(chart);
  return chart.toJson() as ManifestObject[];
}

/** Every object of {@link KubevisorPlatform}. */
export const renderPlatformOnly = (props: KubevisorPlatformProps = {}) =>
  synthInMemory((chart) => new KubevisorPlatform(chart, 'platform', props));

/** Every object of {@link NodeSetup}. */
export const renderNodeSetup = (props: NodeSetupProps = {}) =>
  synthInMemory((chart) => new NodeSetup(chart, 'node-setup', props));

/** The whole install: the platform, then node setup (in the platform's namespace unless told otherwise). */
export function renderPlatform(props: KubevisorPlatformProps = {}, nodeSetup: NodeSetupProps = {}): ManifestObject[] {
  return [
    ...renderPlatformOnly(props),
    ...renderNodeSetup({
      ...(props.image ? { image: props.image } : {}),
      ...(props.imagePullPolicy ? { imagePullPolicy: props.imagePullPolicy } : {}),
      ...(props.namespace ? { namespace: props.namespace } : {}),
      ...nodeSetup,
    }),
  ];
}
