/**
 * The platform and node setup as Pulumi components. Each renders the cdk8s construct of the same name in memory
 * (constructs/platform/render.ts) and registers every object it synthesizes as the matching @pulumi/kubernetes
 * resource, as children: one renderer, so `pulumi up` installs exactly what `cdk8s synth` writes.
 */
import * as pulumi from '@pulumi/pulumi';
import { ConfigGroup } from '@pulumi/kubernetes/yaml';
import type { KubevisorPlatformProps, NodeSetupProps } from '../platform/props';
import type * as Render from '../platform/render';
import type { ManifestObject } from '../platform/render';

/**
 * The renderer, loaded on first use: it needs cdk8s, constructs and cdk8s-plus-27 (optional peers), which a Pulumi
 * program that declares only VMs does not have to install.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy on purpose, see above
const render = (): typeof Render => require('../platform/render') as typeof Render;

/**
 * Arguments of {@link KubevisorPlatform}: the cdk8s construct's props, as plain values known when the program runs
 * (the platform is rendered by cdk8s at construction, so that preview shows every object it installs).
 */
export type KubevisorPlatformArgs = KubevisorPlatformProps;
/** Arguments of {@link NodeSetup}: the cdk8s construct's props. */
export type NodeSetupArgs = NodeSetupProps;

/** Registers rendered objects under `parent` (kind and namespace/name make each child's name). */
function register(parent: pulumi.ComponentResource, name: string, objects: ManifestObject[]): ConfigGroup {
  // ConfigGroup (client-side, not the provider's yaml/v2 component) creates the typed resource of each kind, so each
  // child is a Deployment, a ClusterRole, … exactly as if declared one by one.
  return new ConfigGroup(
    `${name}-objects`,
    {
      objs: objects,
      resourcePrefix: name,
      // Deleting a CRD deletes every object of its kind: `pulumi destroy` of the platform (or a rename) must never take
      // the cluster's VMs with it. The CRDs stay; removing them is a deliberate `kubectl delete crd`.
      transformations: [
        (o: ManifestObject, opts: pulumi.CustomResourceOptions) => {
          if (o.kind === 'CustomResourceDefinition') opts.retainOnDelete = true;
        },
      ],
    },
    { parent },
  );
}

/**
 * kubevisor's operator and API (CRDs, controller, node daemon, RBAC) as a Pulumi component; see the cdk8s
 * `KubevisorPlatform` for what it installs. Throws a `KubevisorValidationError` listing every problem of the args
 * before registering anything. Make VirtualMachines depend on it (`dependsOn`), so the CRDs exist first. The CRDs are
 * retained when the component is deleted (`retainOnDelete`): deleting them would delete every VM in the cluster.
 */
export class KubevisorPlatform extends pulumi.ComponentResource {
  /** The objects as registered. */
  public readonly objects: ConfigGroup;
  /** The operator's namespace. */
  public readonly namespace: string;

  constructor(name: string, args: KubevisorPlatformArgs = {}, opts?: pulumi.ComponentResourceOptions) {
    const objects = render().renderPlatformOnly(args);
    super('kubevisor:index:KubevisorPlatform', name, args, opts);
    this.namespace = objects.find((o) => o.kind === 'Namespace')!.metadata.name;
    this.objects = register(this, name, objects);
    this.registerOutputs({ namespace: this.namespace });
  }
}

/**
 * Node setup (the DaemonSet that prepares and labels nodes for VMs) as a Pulumi component; see the cdk8s `NodeSetup`.
 * Depends on the platform's namespace: pass `dependsOn: platform`.
 */
export class NodeSetup extends pulumi.ComponentResource {
  /** The objects as registered. */
  public readonly objects: ConfigGroup;

  constructor(name: string, args: NodeSetupArgs = {}, opts?: pulumi.ComponentResourceOptions) {
    const objects = render().renderNodeSetup(args);
    super('kubevisor:index:NodeSetup', name, args, opts);
    this.objects = register(this, name, objects);
    this.registerOutputs({});
  }
}
