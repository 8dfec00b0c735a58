/** The Pulumi VirtualMachine component: a thin frontend over {@link renderVirtualMachine}. */
import * as pulumi from '@pulumi/pulumi';
import { CustomResource } from '@pulumi/kubernetes/apiextensions';
import type { VirtualMachineStatus } from '../../api';
import { API_VERSION, VM_IMMUTABLE_FIELDS } from '../../api';
import type {
  AddDiskOptions,
  CloudInitOptions,
  InterfaceBinding,
  NetworkSource,
  VirtualMachineProps,
  VolumeSource,
} from '../virtual-machine';
import { deviceParts, renderVirtualMachine } from '../virtual-machine';
import type { DeepInput, DeepInputs } from './inputs';
import { assertKnownArgsValid, renderedObject } from './inputs';

/**
 * Arguments of the VirtualMachine component: the cdk8s construct's props, each value (at any depth) also accepted as
 * a `pulumi.Input`. Build disks, volumes, interfaces and networks in pairs with {@link VirtualMachineArgsBuilder}.
 */
export type VirtualMachineArgs = DeepInputs<VirtualMachineProps>;

/**
 * A Cloud Hypervisor virtual machine (`kubevisor.io/v1alpha1` VirtualMachine) as a Pulumi component. Registers one
 * child CustomResource `${name}` with exactly the object the cdk8s construct synthesizes, at construction (so preview
 * shows it). Every rule of the CRD is checked on the resolved args: with every value known, invalid args throw a
 * `KubevisorValidationError` before anything is registered; with Outputs, they fail the deployment naming the
 * resource and each field (no value when the args hold a secret). Changing an immutable field (cpu, memory, kernel,
 * interfaces, networks, an existing volume's source) replaces the VM (deleted first: its name is fixed), and with it
 * what depends on it, such as a migration. While an arg is unknown in a preview the whole object is, so the preview
 * shows an update where `up` may replace.
 */
export class VirtualMachine extends pulumi.ComponentResource {
  /** The VM's Kubernetes name. */
  public readonly vmName: pulumi.Output<string>;
  /** The VM's namespace. */
  public readonly namespace: pulumi.Output<string | undefined>;
  /** Lifecycle phase as the API server last returned it: at create, empty; current after `pulumi up --refresh`. */
  public readonly phase: pulumi.Output<string | undefined>;
  /** The node running the VM (see {@link phase} for when it is current). */
  public readonly nodeName: pulumi.Output<string | undefined>;
  /** The guest's IP addresses, every interface (see {@link phase} for when they are current). */
  public readonly guestIps: pulumi.Output<string[]>;
  /** The VM's CustomResource. */
  public readonly resource: CustomResource;

  constructor(name: string, args: VirtualMachineArgs = {}, opts?: pulumi.ComponentResourceOptions) {
    assertKnownArgsValid(name, args, renderVirtualMachine);
    super('kubevisor:index:VirtualMachine', name, args, opts);
    const object = renderedObject(name, args, renderVirtualMachine, this);
    this.resource = new CustomResource(
      name,
      {
        apiVersion: API_VERSION,
        kind: 'VirtualMachine',
        metadata: object.metadata,
        spec: object.apply((o) => o.spec),
        // Not an input: asks the provider for the live object's status as an output.
        status: undefined,
      },
      { parent: this, replaceOnChanges: [...VM_IMMUTABLE_FIELDS], deleteBeforeReplace: true },
    );
    const status = (this.resource as unknown as { status: pulumi.Output<VirtualMachineStatus | undefined> }).status;
    this.vmName = this.resource.metadata.name;
    this.namespace = this.resource.metadata.namespace;
    this.phase = status.apply((s) => s?.phase);
    this.nodeName = status.apply((s) => s?.nodeName);
    this.guestIps = status.apply((s) => (s?.interfaces ?? []).flatMap((i) => i.ipAddresses ?? []));
    this.registerOutputs({
      vmName: this.vmName,
      namespace: this.namespace,
      phase: this.phase,
      nodeName: this.nodeName,
      guestIps: this.guestIps,
    });
  }
}

/**
 * Builds {@link VirtualMachineArgs} with the cdk8s construct's conveniences: each `add…` adds a pair named alike (a
 * disk and its volume, an interface and its network), values may be Inputs.
 *
 * @example
 * new VirtualMachine('web', new VirtualMachineArgsBuilder({ memory: { size: '2Gi' } })
 *   .addDisk('root', VolumeSources.containerDisk('quay.io/containerdisks/debian:12'))
 *   .addCloudInit({ userDataSecretName: secret.metadata.name })
 *   .addInterface('pod', NetworkSources.pod(), Bindings.masquerade({ ports: [{ port: 80 }] }))
 *   .build());
 */
export class VirtualMachineArgsBuilder {
  private readonly base: VirtualMachineArgs;
  private readonly disks: Item<'disks'>[] = [];
  private readonly fileSystems: Item<'fileSystems'>[] = [];
  private readonly volumes: Item<'volumes'>[] = [];
  private readonly interfaces: Item<'interfaces'>[] = [];
  private readonly networks: Item<'networks'>[] = [];

  /** @param base every other arg; its own disks, volumes, interfaces and networks come first */
  constructor(base: VirtualMachineArgs = {}) {
    this.base = base;
  }

  /** Attaches a volume as a disk (both named `name`). Disks boot in the order they are added. */
  public addDisk(name: string, source: SourceInput<VolumeSource>, options: AddDiskOptions = {}): this {
    this.volumes.push(spread(source, (s) => deviceParts.disk(name, s, options).volume) as Item<'volumes'>);
    this.disks.push(deviceParts.disk(name, {}, options).disk);
    return this;
  }

  /** Shares a persistentVolumeClaim or dataVolume volume with the guest over virtio-fs. */
  public addFileSystem(name: string, source: SourceInput<VolumeSource>): this {
    this.volumes.push(spread(source, (s) => deviceParts.fileSystem(name, s).volume) as Item<'volumes'>);
    this.fileSystems.push(deviceParts.fileSystem(name, {}).fileSystem);
    return this;
  }

  /** Attaches a cloud-init NoCloud disk (e.g. `{ userDataSecretName: secret.metadata.name }`). */
  public addCloudInit(data: SourceInput<CloudInitOptions>, name = 'cloudinit'): this {
    const { volume, disk } = deviceParts.cloudInit(data, name);
    this.volumes.push(volume as Item<'volumes'>);
    this.disks.push(disk);
    return this;
  }

  /**
   * Adds a network interface and the network it connects to (both named `name`).
   *
   * @param binding how the interface binds to the network. @default bridge
   * @param mac guest MAC. @default - derived from the VM and interface names
   */
  public addInterface(
    name: string,
    network: SourceInput<NetworkSource>,
    binding: SourceInput<InterfaceBinding> = {},
    mac?: pulumi.Input<string>,
  ): this {
    this.networks.push(spread(network, (n) => deviceParts.iface(name, n, {}).network) as Item<'networks'>);
    const iface = spread(binding, (b) => deviceParts.iface(name, {}, b).iface);
    this.interfaces.push(
      (mac === undefined
        ? iface
        : pulumi.all([iface as pulumi.Input<object>, mac]).apply(([i, m]) => ({ ...i, mac: m }))) as Item<'interfaces'>,
    );
    return this;
  }

  /** The args: the base's lists, then what was added. */
  public build(): VirtualMachineArgs {
    // A plain list stays plain, so args without Outputs are still checked at construction.
    const join = (base: unknown, added: readonly unknown[]): unknown =>
      base === undefined || Array.isArray(base)
        ? [...((base as unknown[] | undefined) ?? []), ...added]
        : pulumi.output(base as pulumi.Input<unknown[]>).apply((b) => [...b, ...added]);
    return {
      ...this.base,
      disks: join(this.base.disks, this.disks),
      fileSystems: join(this.base.fileSystems, this.fileSystems),
      volumes: join(this.base.volumes, this.volumes),
      interfaces: join(this.base.interfaces, this.interfaces),
      networks: join(this.base.networks, this.networks),
    } as VirtualMachineArgs;
  }
}

/** A source the builder pairs with a name: an object whose values may be Inputs, or the whole object as an Input. */
type SourceInput<T> =
  (T extends object ? { readonly [K in keyof T]: DeepInput<T[K]> } : never) | pulumi.OutputInstance<T> | Promise<T>;
type Item<K extends 'disks' | 'fileSystems' | 'volumes' | 'interfaces' | 'networks'> = DeepInput<
  NonNullable<VirtualMachineProps[K]>[number]
>;

/** `make(source)`, or, for a source that is an Output or a Promise, an Output of it once the source resolves. */
function spread<S>(source: S | pulumi.OutputInstance<S> | Promise<S>, make: (s: S) => object): unknown {
  return pulumi.Output.isInstance(source) || source instanceof Promise
    ? pulumi.output(source as pulumi.Input<S>).apply((s) => make(s as S))
    : make(source as S);
}
