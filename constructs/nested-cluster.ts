/**
 * The nested cluster renderer: typed props in, the Cluster API (v1beta2) object graph of one cluster out, whose
 * machines are kubevisor VirtualMachines. The cdk8s construct and the Pulumi component both call
 * {@link renderNestedCluster}; nothing else knows the graph's shape.
 *
 * ```
 * Cluster <name> ── infrastructureRef ─▶ KubevisorCluster <name> (the provider's Service in front of the API servers)
 *   └─ controlPlaneRef ─▶ KubeadmControlPlane <name>-control-plane ─▶ KubevisorMachineTemplate <name>-control-plane-<hash>
 * MachineDeployment <name>-<pool> ─▶ KubeadmConfigTemplate <name>-<pool>-<hash>, KubevisorMachineTemplate <name>-<pool>-<hash>
 * MachineHealthCheck <name>-control-plane, <name>-<pool>
 * ClusterResourceSet <name>-cni (+ ConfigMap <name>-cni): the CNI, applied into the nested cluster
 * ```
 */
import type { KubevisorClusterSpec, KubevisorObject } from '../api';
import { INFRASTRUCTURE_API_VERSION } from '../api';
import type { CommonMetadata, NestedClusterObject } from './nested-cluster-addons';
import { cniObjects, machineHealthCheck, meta } from './nested-cluster-addons';
import {
  controlPlaneKubeadmConfig,
  kubeadmConfigTemplateName,
  workerKubeadmConfigTemplateSpec,
} from './nested-cluster-kubeadm';
import { controlPlaneSelector, machineTemplate, poolSelector } from './nested-cluster-machine';
import {
  CAPI_GROUPS,
  CAPI_LABELS,
  NESTED_CLUSTER_LABEL,
  capiApiVersion,
  nestedClusterNames,
} from './nested-cluster-names';
import type { NestedClusterProps } from './nested-cluster-props';
import { NESTED_CLUSTER_DEFAULTS, nodeImagesFor } from './nested-cluster-props';
import { nestedClusterPropsProblems } from './nested-cluster-validation';
import { KubevisorValidationError, problemsOf } from './validation';

export type { NestedClusterObject } from './nested-cluster-addons';

/** The infrastructure provider's objects, which `validateObject` knows. */
export const isKubevisorObject = (o: NestedClusterObject): o is NestedClusterObject & KubevisorObject =>
  o.apiVersion === INFRASTRUCTURE_API_VERSION;

const ref = (apiGroup: string, kind: string, name: string) => ({ apiGroup, kind, name });

/** The KubevisorCluster's spec: the Service's type, and the endpoint only when the user fixes it. */
function infrastructureClusterSpec(p: NestedClusterProps): KubevisorClusterSpec {
  const e = p.endpoint ?? {};
  return {
    controlPlaneService: {
      type: e.service ?? NESTED_CLUSTER_DEFAULTS.service,
      ...(e.loadBalancerClass !== undefined ? { loadBalancerClass: e.loadBalancerClass } : {}),
    },
    // Left out otherwise: the provider sets it from the Service, and Cluster API copies it into the Cluster.
    ...(e.host !== undefined
      ? { controlPlaneEndpoint: { host: e.host, port: e.port ?? NESTED_CLUSTER_DEFAULTS.endpointPort } }
      : {}),
  };
}

/**
 * Renders every object of the nested cluster (named `metadata.name`, else `defaultName`), in the order to apply them. Throws one
 * {@link KubevisorValidationError} listing every problem of the props (each with its prop path, prefixed `[path]`),
 * and — props being valid — every problem the API server would find in the kubevisor objects. Pure: the same props
 * always give the same objects, and the machine templates' names change exactly when their content does.
 *
 * @param path where the cluster is declared, for error messages. @default - `defaultName`
 */
export function renderNestedCluster(
  defaultName: string,
  props: NestedClusterProps,
  path = defaultName,
): NestedClusterObject[] {
  const name = props.metadata?.name ?? defaultName;
  const propsProblems = nestedClusterPropsProblems(name, props);
  if (propsProblems.length) throw new KubevisorValidationError(propsProblems.map((p) => `[${path}] ${p}`));

  const names = nestedClusterNames(name);
  const version = props.kubernetesVersion;
  const images = nodeImagesFor(props.images, version)!;
  const userLabels = { ...props.metadata?.labels };
  const common: CommonMetadata = {
    ...(props.metadata?.namespace ? { namespace: props.metadata.namespace } : {}),
    labels: { ...userLabels, [CAPI_LABELS.clusterName]: name, [NESTED_CLUSTER_LABEL]: name },
  };
  const d = NESTED_CLUSTER_DEFAULTS;
  const network = props.network ?? {};
  const cp = props.controlPlane ?? {};

  const cpTemplate = machineTemplate(
    names.controlPlane,
    version,
    { selector: controlPlaneSelector(name), size: cp.size, images, controlPlane: true, labels: userLabels },
    common,
  );
  const objects: NestedClusterObject[] = [
    {
      apiVersion: capiApiVersion('core'),
      kind: 'Cluster',
      metadata: meta(names.cluster, common),
      spec: {
        clusterNetwork: {
          pods: { cidrBlocks: [network.podCidr ?? d.podCidr] },
          services: { cidrBlocks: [network.serviceCidr ?? d.serviceCidr] },
          serviceDomain: network.serviceDomain ?? d.serviceDomain,
        },
        controlPlaneRef: ref(CAPI_GROUPS.controlPlane, 'KubeadmControlPlane', names.controlPlane),
        infrastructureRef: ref(CAPI_GROUPS.infrastructure, 'KubevisorCluster', names.infrastructureCluster),
      },
    },
    {
      apiVersion: INFRASTRUCTURE_API_VERSION,
      kind: 'KubevisorCluster',
      metadata: meta(names.infrastructureCluster, common),
      spec: infrastructureClusterSpec(props),
    },
    cpTemplate,
    {
      apiVersion: capiApiVersion('controlPlane'),
      kind: 'KubeadmControlPlane',
      metadata: meta(names.controlPlane, common),
      spec: {
        replicas: cp.replicas ?? d.controlPlaneReplicas,
        version,
        machineTemplate: {
          spec: {
            infrastructureRef: ref(CAPI_GROUPS.infrastructure, 'KubevisorMachineTemplate', cpTemplate.metadata.name),
          },
        },
        kubeadmConfigSpec: controlPlaneKubeadmConfig(props.etcd?.external),
      },
    },
  ];

  const healthChecks = props.healthChecks === false ? undefined : (props.healthChecks ?? {});
  if (healthChecks)
    objects.push(
      machineHealthCheck(names.controlPlaneHealthCheck, name, controlPlaneSelector(name), healthChecks, common),
    );

  for (const pool of props.workers ?? []) {
    const deployment = names.pool(pool.name);
    const selector = poolSelector(name, deployment);
    const infraTemplate = machineTemplate(
      deployment,
      version,
      { selector, size: pool.size, images, controlPlane: false, labels: userLabels },
      common,
    );
    const bootstrapSpec = workerKubeadmConfigTemplateSpec();
    const bootstrapName = kubeadmConfigTemplateName(deployment, version, bootstrapSpec);
    objects.push(
      infraTemplate,
      {
        apiVersion: capiApiVersion('bootstrap'),
        kind: 'KubeadmConfigTemplate',
        metadata: meta(bootstrapName, common),
        spec: bootstrapSpec,
      },
      {
        apiVersion: capiApiVersion('core'),
        kind: 'MachineDeployment',
        metadata: meta(deployment, common),
        spec: {
          clusterName: name,
          replicas: pool.replicas ?? d.workerReplicas,
          selector: { matchLabels: { ...selector } },
          template: {
            metadata: { labels: { ...selector } },
            spec: {
              clusterName: name,
              version,
              bootstrap: { configRef: ref(CAPI_GROUPS.bootstrap, 'KubeadmConfigTemplate', bootstrapName) },
              infrastructureRef: ref(
                CAPI_GROUPS.infrastructure,
                'KubevisorMachineTemplate',
                infraTemplate.metadata.name,
              ),
            },
          },
        },
      },
    );
    if (healthChecks) objects.push(machineHealthCheck(deployment, name, selector, healthChecks, common));
  }

  if (props.cni) objects.push(...cniObjects(names.cni, { [NESTED_CLUSTER_LABEL]: name }, props.cni, common));

  // The kubevisor kinds, checked as the API server checks them (schema and CEL rules).
  const objectProblems = objects
    .filter(isKubevisorObject)
    .flatMap((o) => problemsOf(o).map((p) => `[${path}] ${o.kind}/${o.metadata.name}: ${p}`));
  if (objectProblems.length) throw new KubevisorValidationError(objectProblems);
  return objects;
}
