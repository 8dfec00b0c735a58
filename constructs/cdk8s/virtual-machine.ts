/** The cdk8s VirtualMachine construct: a thin frontend over {@link renderVirtualMachine}. */
import type { ApiObject } from 'cdk8s';
import { Lazy } from 'cdk8s';
import { dnsLabelOf } from './names';
import { ValidatedApiObject } from './validated-api-object';
import { Construct } from 'constructs';
import type { VmDisk, VmFileSystem, VmInterface, VmNetwork, VmVolume } from '../../api';
import { API_VERSION } from '../../api';
import type {
  AddDiskOptions,
  CloudInitOptions,
  InterfaceBinding,
  NetworkSource,
  VirtualMachineProps,
  VolumeSource,
} from '../virtual-machine';
import { deviceParts, renderVirtualMachine } from '../virtual-machine';

export type { AddDiskOptions, CloudInitOptions };

/**
 * A Cloud Hypervisor virtual machine (`kubevisor.io/v1alpha1` VirtualMachine).
 *
 * The spec is rendered lazily, so disks, interfaces and cloud-init added after construction still reach the
 * manifest. The underlying ApiObject is the default child (`ApiObject.of(vm)`) for JSON-patch escape hatches.
 * Every rule of the CRD is checked at synth time; errors name the construct path and the field path.
 *
 * @see https://github.com/kubevisor/kubevisor/blob/main/README.md
 */
export class VirtualMachine extends Construct {
  /** The ApiObject holding the manifest. */
  public readonly apiObject: ApiObject;
  /** The object's name. */
  public readonly name: string;

  private readonly props: VirtualMachineProps;
  private readonly disks: VmDisk[];
  private readonly fileSystems: VmFileSystem[];
  private readonly volumes: VmVolume[];
  private readonly interfaces: VmInterface[];
  private readonly networks: VmNetwork[];

  constructor(scope: Construct, id: string, props: VirtualMachineProps = {}) {
    super(scope, id);
    this.props = props;
    this.disks = [...(props.disks ?? [])];
    this.fileSystems = [...(props.fileSystems ?? [])];
    this.volumes = [...(props.volumes ?? [])];
    this.interfaces = [...(props.interfaces ?? [])];
    this.networks = [...(props.networks ?? [])];
    this.name = props.metadata?.name ?? dnsLabelOf(this);
    this.apiObject = new ValidatedApiObject(this, 'Resource', {
      apiVersion: API_VERSION,
      kind: 'VirtualMachine',
      metadata: { name: this.name, ...(props.metadata?.namespace ? { namespace: props.metadata.namespace } : {}) },
      spec: Lazy.any({ produce: () => this._toKube().spec }),
    });
    // Labels and annotations go through the ApiObject so chart-level labels merge as cdk8s users expect.
    for (const [k, v] of Object.entries(props.metadata?.labels ?? {})) this.apiObject.metadata.addLabel(k, v);
    for (const [k, v] of Object.entries(props.metadata?.annotations ?? {})) this.apiObject.metadata.addAnnotation(k, v);
    // The object as written (JSON patches included), not only as rendered.
    this.node.addValidation({ validate: () => (this.apiObject as ValidatedApiObject).problems() });
  }

  /** Attaches a volume as a disk (both named `name`). Disks boot in the order they are added. */
  public addDisk(name: string, source: VolumeSource, options: AddDiskOptions = {}): this {
    const { volume, disk } = deviceParts.disk(name, source, options);
    this.volumes.push(volume);
    this.disks.push(disk);
    return this;
  }

  /** Shares a persistentVolumeClaim or dataVolume volume with the guest over virtio-fs. */
  public addFileSystem(name: string, source: VolumeSource): this {
    const { volume, fileSystem } = deviceParts.fileSystem(name, source);
    this.volumes.push(volume);
    this.fileSystems.push(fileSystem);
    return this;
  }

  /** Attaches a cloud-init NoCloud disk. */
  public addCloudInit(data: CloudInitOptions, name = 'cloudinit'): this {
    const { volume, disk } = deviceParts.cloudInit(data, name);
    this.volumes.push(volume);
    this.disks.push(disk);
    return this;
  }

  /**
   * Adds a network interface and the network it connects to (both named `name`).
   *
   * @param binding how the interface binds to the network. @default bridge
   * @param mac guest MAC. @default - derived from the VM and interface names
   */
  public addInterface(name: string, network: NetworkSource, binding: InterfaceBinding = {}, mac?: string): this {
    const parts = deviceParts.iface(name, network, binding, mac);
    this.networks.push(parts.network);
    this.interfaces.push(parts.iface);
    return this;
  }

  /** @internal The rendered object (defaults applied). */
  public _toKube() {
    const { metadata, ...rest } = this.props;
    return renderVirtualMachine(this.name, {
      ...rest,
      metadata: { ...metadata, name: this.name },
      disks: this.disks,
      fileSystems: this.fileSystems,
      volumes: this.volumes,
      interfaces: this.interfaces,
      networks: this.networks,
    });
  }
}
