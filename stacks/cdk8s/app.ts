/**
 * The example cdk8s app: the platform (operator, CRDs, node setup) in one chart, the example VMs in another that
 * depends on it, so the platform comes first in the output and in `kubectl apply`.
 */
import { App, Chart } from 'cdk8s';
import { KubevisorPlatform, NodeSetup, VirtualMachine } from '../../constructs/cdk8s';
import { EXAMPLES } from '../examples';

export function buildApp(outdir: string): App {
  const app = new App({ outdir });
  const platform = new Chart(app, 'platform', { disableResourceNameHashes: true });
  new KubevisorPlatform(platform, 'kubevisor');
  new NodeSetup(platform, 'node-setup');
  const examples = new Chart(app, 'examples');
  examples.addDependency(platform);
  for (const [id, props] of Object.entries(EXAMPLES)) new VirtualMachine(examples, id, props);
  return app;
}
