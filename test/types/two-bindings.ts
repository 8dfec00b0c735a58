// Mistake: an interface with two bindings at once.
import { App, Chart } from 'cdk8s';
import { NetworkSources, VirtualMachine } from '../../constructs/cdk8s';

new VirtualMachine(new Chart(new App(), 'vms'), 'web').addInterface('pod', NetworkSources.pod(), {
  bridge: {},
  masquerade: {},
});
