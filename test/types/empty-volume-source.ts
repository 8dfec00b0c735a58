// Mistake: a disk whose volume has no source.
import { App, Chart } from 'cdk8s';
import { VirtualMachine } from '../../constructs/cdk8s';

new VirtualMachine(new Chart(new App(), 'vms'), 'web').addDisk('root', {});
