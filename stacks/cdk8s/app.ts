/** The example cdk8s app: one chart holding the example VMs. */
import { App, Chart } from 'cdk8s';
import { VirtualMachine } from '../../constructs/cdk8s';
import { EXAMPLES } from '../examples';

export function buildApp(outdir: string): App {
  const app = new App({ outdir });
  const chart = new Chart(app, 'examples');
  for (const [id, props] of Object.entries(EXAMPLES)) new VirtualMachine(chart, id, props);
  return app;
}
