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
 * resource and each field. Changing an immutable field (cpu, memory, kernel, interfaces, networks) replaces the VM
 * (deleted first: its name is fixed).
 */
export class VirtualMachine extends pulumi.ComponentResource {
  /** The VM's Kubernetes name. */
  public readonly vmName: pulumi.Output<string>;
  /** The VM's namespace. */
  public readonly namespace: pulumi.Output<string | undefined>;
  /** Lifecycle phase as of the last `up` or `refresh` (the status the API server returned). */
  public readonly phase: pulumi.Output<string | undefined>;
  /** The node running the VM, as of the last `up` or `refresh`. */
  public readonly nodeName: pulumi.Output<string | undefined>;
  /** The guest's IP addresses (every interface), as of the last `up` or `refresh`. */
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
  private readonly disks: DeepInput<NonNullable<VirtualMachineProps['disks']>[number]>[] = [];
  private readonly fileSystems: DeepInput<NonNullable<VirtualMachineProps['fileSystems']>[number]>[] = [];
  private readonly volumes: DeepInput<NonNullable<VirtualMachineProps['volumes']>[number]>[] = [];
  private readonly interfaces: DeepInput<NonNullable<VirtualMachineProps['interfaces']>[number]>[] = [];
  private readonly networks: DeepInput<NonNullable<VirtualMachineProps['networks']>[number]>[] = [];

  /** @param base every other arg; its own disks, volumes, interfaces and networks come first */
  constructor(base: VirtualMachineArgs = {}) {
    this.base = base;
  }

  /** Attaches a volume as a disk (both named `name`). Disks boot in the order they are added. */
  public addDisk(name: string, source: DeepInputObject<VolumeSource>, options: AddDiskOptions = {}): this {
    const { volume, disk } = deviceParts.disk(name, source, options);
    this.volumes.push(volume as DeepInput<NonNullable<VirtualMachineProps['volumes']>[number]>);
    this.disks.push(disk);
    return this;
  }

  /** Shares a persistentVolumeClaim or dataVolume volume with the guest over virtio-fs. */
  public addFileSystem(name: string, source: DeepInputObject<VolumeSource>): this {
    const { volume, fileSystem } = deviceParts.fileSystem(name, source);
    this.volumes.push(volume as DeepInput<NonNullable<VirtualMachineProps['volumes']>[number]>);
    this.fileSystems.push(fileSystem);
    return this;
  }

  /** Attaches a cloud-init NoCloud disk (e.g. `{ userDataSecretName: secret.metadata.name }`). */
  public addCloudInit(data: DeepInputObject<CloudInitOptions>, name = 'cloudinit'): this {
    const { volume, disk } = deviceParts.cloudInit(data, name);
    this.volumes.push(volume as DeepInput<NonNullable<VirtualMachineProps['volumes']>[number]>);
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
    network: DeepInputObject<NetworkSource>,
    binding: DeepInputObject<InterfaceBinding> = {},
    mac?: string,
  ): this {
    const parts = deviceParts.iface(name, network, binding, mac);
    this.networks.push(parts.network as DeepInput<NonNullable<VirtualMachineProps['networks']>[number]>);
    this.interfaces.push(parts.iface as DeepInput<NonNullable<VirtualMachineProps['interfaces']>[number]>);
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

/** An object (not itself an Input) whose values may be Inputs: what the builder spreads into a pair. */
type DeepInputObject<T> = T extends object ? { readonly [K in keyof T]: DeepInput<T[K]> } : never;
