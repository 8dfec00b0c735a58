/** The cdk8s VirtualMachineMigration construct. */
import type { ApiObject } from 'cdk8s';
import { Lazy } from 'cdk8s';
import { dnsLabelOf } from './names';
import { ValidatedApiObject } from './validated-api-object';
import { Construct } from 'constructs';
import { API_VERSION } from '../../api';
import type { VirtualMachineMigrationProps } from '../virtual-machine-migration';
import { renderVirtualMachineMigration } from '../virtual-machine-migration';

/**
 * A live migration of one VirtualMachine to another node (`kubevisor.io/v1alpha1` VirtualMachineMigration).
 * Its spec is immutable: create a new object to migrate again.
 */
export class VirtualMachineMigration extends Construct {
  /** The ApiObject holding the manifest. */
  public readonly apiObject: ApiObject;
  /** The object's name. */
  public readonly name: string;
  private readonly props: VirtualMachineMigrationProps;

  constructor(scope: Construct, id: string, props: VirtualMachineMigrationProps) {
    super(scope, id);
    this.props = props;
    this.name = props.metadata?.name ?? dnsLabelOf(this);
    this.apiObject = new ValidatedApiObject(this, 'Resource', {
      apiVersion: API_VERSION,
      kind: 'VirtualMachineMigration',
      metadata: { name: this.name, ...(props.metadata?.namespace ? { namespace: props.metadata.namespace } : {}) },
      spec: Lazy.any({ produce: () => this._toKube().spec }),
    });
    for (const [k, v] of Object.entries(props.metadata?.labels ?? {})) this.apiObject.metadata.addLabel(k, v);
    for (const [k, v] of Object.entries(props.metadata?.annotations ?? {})) this.apiObject.metadata.addAnnotation(k, v);
    // The object as written (JSON patches included), not only as rendered.
    this.node.addValidation({ validate: () => (this.apiObject as ValidatedApiObject).problems() });
  }

  /** @internal The rendered object (defaults applied). */
  public _toKube() {
    return renderVirtualMachineMigration(this.name, {
      ...this.props,
      metadata: { ...this.props.metadata, name: this.name },
    });
  }
}
