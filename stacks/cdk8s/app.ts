/**
 * The example cdk8s app: the platform (operator, CRDs, node setup) in one chart, the example VMs (and a Service in
 * front of `web`) in another that depends on it, so the platform comes first in the output and in `kubectl apply`, and
 * the example nested cluster in a third (it needs Cluster API installed besides the platform).
 */
import { App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { KubevisorPlatform, NestedCluster, NodeSetup, VirtualMachine, vmPodSelector } from '../../constructs/cdk8s';
import { EXAMPLES, NESTED_CLUSTER_EXAMPLE, WEB_SERVICE } from '../examples';

export function buildApp(outdir: string): App {
  const app = new App({ outdir });
  const platform = new Chart(app, 'platform', { disableResourceNameHashes: true });
  // clusterApi: the controller is also the infrastructure provider of the nested cluster below (it waits, logging,
  // until Cluster API is installed).
  new KubevisorPlatform(platform, 'kubevisor', { clusterApi: true });
  new NodeSetup(platform, 'node-setup');
  const examples = new Chart(app, 'examples');
  examples.addDependency(platform);
  const vms = Object.entries(EXAMPLES).map(([id, props]) => new VirtualMachine(examples, id, props));
  const web = vms.find((vm) => vm.node.id === 'web')!;
  new kplus.Service(examples, 'web-service', {
    metadata: { name: WEB_SERVICE.name, namespace: WEB_SERVICE.namespace },
    selector: kplus.Pods.select(examples, 'web-pods', { labels: vmPodSelector(web.name) }),
    ports: [{ port: WEB_SERVICE.port, targetPort: WEB_SERVICE.port }],
  });
  const nested = new Chart(app, 'nested-cluster');
  nested.addDependency(platform);
  new NestedCluster(nested, 'tenant-a', NESTED_CLUSTER_EXAMPLE);
  return app;
}
