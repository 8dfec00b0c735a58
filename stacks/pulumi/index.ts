/**
 * The example Pulumi program (`pulumi up` with Pulumi.yaml at the repository root): the platform and node setup,
 * then the example VMs, which depend on the platform (its CRDs), and a Service in front of `web` whose selector comes
 * from the VM's `vmName` Output. Every example is validated before any resource is registered, so an invalid program
 * deploys nothing.
 */
import * as k8s from '@pulumi/kubernetes';
import { KubevisorPlatform, NodeSetup, VirtualMachine, assertValid, vmPodSelector } from '../../constructs/pulumi';
import { renderVirtualMachine } from '../../constructs';
import { EXAMPLES, WEB_SERVICE } from '../examples';

assertValid(
  Object.entries(EXAMPLES).map(([name, props]) => ({ path: name, object: renderVirtualMachine(name, props) })),
);

const platform = new KubevisorPlatform('kubevisor');
new NodeSetup('node-setup', {}, { dependsOn: platform });

const machines = Object.fromEntries(
  Object.entries(EXAMPLES).map(([name, props]) => [name, new VirtualMachine(name, props, { dependsOn: platform })]),
);
const web = machines.web!;
new k8s.core.v1.Service(WEB_SERVICE.name, {
  metadata: { name: WEB_SERVICE.name, namespace: WEB_SERVICE.namespace },
  spec: {
    selector: web.vmName.apply(vmPodSelector),
    ports: [{ port: WEB_SERVICE.port, targetPort: WEB_SERVICE.port }],
  },
});

export const namespace = platform.namespace;
export const vms = Object.values(machines).map((vm) => vm.vmName);
/** Each VM's phase and guest addresses as of the last `pulumi up` or `pulumi refresh`. */
export const status = Object.fromEntries(
  Object.entries(machines).map(([name, vm]) => [name, { phase: vm.phase, guestIps: vm.guestIps }]),
);
