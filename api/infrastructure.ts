/**
 * The Cluster API infrastructure kinds (contract v1beta2): KubevisorCluster, KubevisorMachine and
 * KubevisorMachineTemplate in `infrastructure.cluster.x-k8s.io`. Cluster API's core and kubeadm controllers own the
 * cluster's lifecycle; these kinds say where its machines run (one VirtualMachine each) and how its control plane is
 * reached (a Service selecting the control-plane VM pods).
 * @see https://cluster-api.sigs.k8s.io/developer/providers/contracts/infra-cluster
 */
import { array, boolean, integer, map, object, string } from './schema';
import { conditions } from './common';
import { virtualMachineSpec } from './virtualmachine';

export const INFRASTRUCTURE_GROUP = 'infrastructure.cluster.x-k8s.io';
export const INFRASTRUCTURE_VERSION = 'v1alpha1';
export const INFRASTRUCTURE_API_VERSION = `${INFRASTRUCTURE_GROUP}/${INFRASTRUCTURE_VERSION}`;
/** Cluster API's own group and the version of its contract these kinds implement. */
export const CLUSTER_API_GROUP = 'cluster.x-k8s.io';
export const CLUSTER_API_CONTRACT = 'v1beta2';
/** The provider's name as clusterctl and Cluster API's labels know it. */
export const INFRASTRUCTURE_PROVIDER = 'infrastructure-kubevisor';
/** Port of the nested API server in its control-plane VMs, and of the Service in front of them. */
export const CONTROL_PLANE_PORT = 6443;
/**
 * Name of the volume (and disk) the provider adds to each machine's VM for the bootstrap data; a machine template
 * may not use it.
 */
export const BOOTSTRAP_VOLUME = 'cluster-api-bootstrap';

/**
 * Cluster API's labels and annotations (the contract names them; Cluster API sets them on Machines), shared by the
 * provider (operator/controller) and the nested cluster renderer (constructs/nested-cluster*.ts).
 */
export const CLUSTER_NAME_LABEL = `${CLUSTER_API_GROUP}/cluster-name`;
export const CONTROL_PLANE_LABEL = `${CLUSTER_API_GROUP}/control-plane`;
export const DEPLOYMENT_NAME_LABEL = `${CLUSTER_API_GROUP}/deployment-name`;
/** On an infrastructure cluster: another system owns it, and the provider must not touch it at all. */
export const MANAGED_BY_LABEL = `${CLUSTER_API_GROUP}/managed-by`;
/** On any Cluster API object: reconcile nothing of it (clusterctl move, a user holding it). */
export const PAUSED_ANNOTATION = `${CLUSTER_API_GROUP}/paused`;
/** `group/version` of Cluster API's core kinds (Cluster, Machine) in the contract these kinds implement. */
export const CLUSTER_API_VERSION = `${CLUSTER_API_GROUP}/${CLUSTER_API_CONTRACT}`;
/**
 * Type of the Secrets Cluster API writes (the kubeadm bootstrap data among them, labelled {@link CLUSTER_NAME_LABEL});
 * the provider hands a machine's VM only a bootstrap Secret of this type and of the machine's cluster.
 */
export const CLUSTER_API_SECRET_TYPE = `${CLUSTER_API_GROUP}/secret`;
/**
 * On the control-plane Service: the KubevisorCluster it fronts (its Service-name form). Only the provider sets it; its
 * Service cache selects by it.
 */
export const KUBEVISOR_CLUSTER_LABEL = `${INFRASTRUCTURE_GROUP}/kubevisor-cluster`;
/**
 * Scheme of the provider IDs: `kubevisor://<VM UID>` on the KubevisorMachine, and the same from the guest's kubelet
 * (its cloud-init instance-id is the VM UID).
 */
export const PROVIDER_ID_SCHEME = 'kubevisor://';
/** The pod labels selecting a cluster's control-plane VM pods (the provider copies them from the Machines). */
export const controlPlaneSelector = (cluster: string): Record<string, string> => ({
  [CLUSTER_NAME_LABEL]: cluster,
  [CONTROL_PLANE_LABEL]: '',
});
/** A DNS-1035 label without its length bound (63): what a Service name must be. */
export const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** A label key's syntax (optional DNS-subdomain prefix and '/', then a name of at most 63 characters). */
const LABEL_KEY_PATTERN =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$';
/** A label value's syntax (at most 63 characters, or empty). */
const LABEL_VALUE_PATTERN = '^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$';
/** Keys of labels and annotations: the syntax, and the prefix (a DNS subdomain) at most 253 characters. */
const keyRule = (what: string) => ({
  rule: `self.all(k, k.matches('${LABEL_KEY_PATTERN}') && !k.matches('^[^/]{254,}/'))`,
  message:
    `${what} keys must be label keys: an optional DNS-subdomain prefix (at most 253 characters) and '/', then a ` +
    "name of at most 63 characters (alphanumerics, '-', '_', '.'; starting and ending with an alphanumeric)",
});

const metadataLabels = map(
  string({
    description: 'Label value.',
    maxLength: 63,
    pattern: LABEL_VALUE_PATTERN,
  }),
  { description: 'Labels.', maxProperties: 64, rules: [keyRule('label')] },
);
const metadataAnnotations = map(string({ description: 'Annotation value.', maxLength: 4096 }), {
  description: 'Annotations.',
  maxProperties: 64,
  rules: [keyRule('annotation')],
});
const objectMeta = (description: string) =>
  object({ labels: metadataLabels, annotations: metadataAnnotations }, { description, typeName: 'TemplateMetadata' });

const endpoint = object(
  {
    host: string({
      description: 'Host name or IP address of the API server endpoint.',
      minLength: 1,
      maxLength: 512,
      pattern: '^[^\\s/]+$',
    }),
    port: integer({ description: 'Port of the API server endpoint.', minimum: 1, maximum: 65535 }),
  },
  {
    description:
      'Where the nested cluster API server is reached. Leave it out and the provider sets it from the control-plane ' +
      'Service (its load balancer address, or its cluster IP); set it when something else (an external load ' +
      'balancer, DNS) fronts the control plane.',
    typeName: 'ApiEndpoint',
    required: ['host', 'port'],
  },
);

const initialization = (what: string, typeName: string) =>
  object(
    {
      provisioned: boolean({
        description: `True once ${what}; Cluster API waits for it (contract v1beta2).`,
      }),
    },
    { description: 'Initialization progress, as Cluster API reads it.', typeName },
  );

export const kubevisorClusterSpec = object(
  {
    controlPlaneEndpoint: endpoint,
    controlPlaneService: object(
      {
        type: string({
          description:
            'ClusterIP: reachable inside the management cluster (its cluster IP becomes the endpoint). ' +
            'LoadBalancer: the load balancer address becomes the endpoint once one is assigned; only where the ' +
            'platform allows it (controller flag --cluster-api-load-balancers), else Ready is False ' +
            '(LoadBalancerNotAllowed).',
          enum: ['ClusterIP', 'LoadBalancer'] as const,
          default: 'ClusterIP',
          maxLength: 16,
        }),
        loadBalancerClass: string({
          description: 'Load balancer implementation (Service spec.loadBalancerClass), with type LoadBalancer.',
          minLength: 1,
          maxLength: 316,
        }),
      },
      {
        description: 'The Service in front of the control-plane VMs (port 6443), created and kept by the provider.',
        typeName: 'ControlPlaneService',
        rules: [
          {
            rule: "!has(self.loadBalancerClass) || self.type == 'LoadBalancer'",
            message: 'loadBalancerClass applies only to type LoadBalancer',
            fieldPath: '.loadBalancerClass',
          },
        ],
      },
    ),
  },
  {
    description: 'Desired state of the KubevisorCluster.',
    typeName: 'KubevisorClusterSpec',
    rules: [
      {
        // Cluster API copies the endpoint into the Cluster, where it cannot change either: every kubeconfig and
        // certificate of the nested cluster names it.
        rule: '!has(oldSelf.controlPlaneEndpoint) || (has(self.controlPlaneEndpoint) && self.controlPlaneEndpoint == oldSelf.controlPlaneEndpoint)',
        message: 'controlPlaneEndpoint cannot change once set (kubeconfigs and certificates name it)',
        fieldPath: '.controlPlaneEndpoint',
      },
      {
        // The endpoint is the Service's address (or something fronting it): another type or class is another address.
        rule:
          '!has(oldSelf.controlPlaneEndpoint) || (' +
          "(has(self.controlPlaneService) && has(self.controlPlaneService.type) ? self.controlPlaneService.type : 'ClusterIP') == " +
          "(has(oldSelf.controlPlaneService) && has(oldSelf.controlPlaneService.type) ? oldSelf.controlPlaneService.type : 'ClusterIP') && " +
          "(has(self.controlPlaneService) && has(self.controlPlaneService.loadBalancerClass) ? self.controlPlaneService.loadBalancerClass : '') == " +
          "(has(oldSelf.controlPlaneService) && has(oldSelf.controlPlaneService.loadBalancerClass) ? oldSelf.controlPlaneService.loadBalancerClass : ''))",
        message:
          'controlPlaneService cannot change once controlPlaneEndpoint is set (the endpoint names the address of ' +
          'the Service as it is)',
        fieldPath: '.controlPlaneService',
      },
    ],
  },
);

export const kubevisorClusterStatus = object(
  {
    initialization: initialization('the control-plane endpoint is known', 'ClusterInitialization'),
    serviceName: string({ description: 'The control-plane Service the provider keeps.', maxLength: 253 }),
    conditions,
  },
  { description: 'Observed state of the KubevisorCluster.', typeName: 'KubevisorClusterStatus' },
);

export const kubevisorMachineSpec = object(
  {
    providerID: string({
      description:
        `${PROVIDER_ID_SCHEME}<VM UID>, set by the provider once the VM exists; the kubelet in the guest reports the same ` +
        '(its cloud-init instance-id is the VM UID).',
      minLength: 1,
      maxLength: 512,
    }),
    virtualMachine: object(
      {
        metadata: objectMeta('Labels and annotations of the VirtualMachine (and so of its pod).'),
        spec: virtualMachineSpec,
      },
      {
        description:
          `The VirtualMachine this machine runs as (named after the machine). The provider adds a cloud-init volume ` +
          `and disk named ${BOOTSTRAP_VOLUME} that reference the bootstrap data Secret; nothing secret is copied.`,
        typeName: 'MachineVirtualMachine',
        required: ['spec'],
        rules: [
          {
            rule: '!has(self.spec.volumes) || !self.spec.volumes.exists(v, has(v.cloudInit))',
            message: 'the provider adds the cloud-init volume (the bootstrap data): leave cloudInit out',
            fieldPath: '.spec.volumes',
          },
          {
            rule: `(!has(self.spec.volumes) || !self.spec.volumes.exists(v, v.name == '${BOOTSTRAP_VOLUME}')) && (!has(self.spec.instance.disks) || !self.spec.instance.disks.exists(d, d.name == '${BOOTSTRAP_VOLUME}'))`,
            message: `the name ${BOOTSTRAP_VOLUME} is the provider's (the bootstrap data)`,
            fieldPath: '.spec',
          },
          {
            rule: "!has(self.spec.runPolicy) || self.spec.runPolicy == 'Always' || self.spec.runPolicy == 'Once'",
            message:
              'a machine runs with runPolicy Always (restarted in place) or Once (replaced by Cluster API when it stops)',
            fieldPath: '.spec.runPolicy',
          },
        ],
      },
    ),
  },
  {
    description: 'Desired state of the KubevisorMachine.',
    typeName: 'KubevisorMachineSpec',
    required: ['virtualMachine'],
    rules: [
      {
        rule: '!has(oldSelf.providerID) || (has(self.providerID) && self.providerID == oldSelf.providerID)',
        message: 'providerID cannot change once set',
        fieldPath: '.providerID',
      },
      {
        // A machine is replaced, never changed: Cluster API rolls out a new template instead.
        rule: 'self.virtualMachine == oldSelf.virtualMachine',
        message: 'virtualMachine is immutable: change the machine template and let Cluster API roll the machines',
        fieldPath: '.virtualMachine',
      },
    ],
  },
);

const address = object(
  {
    type: string({
      description: 'Address type.',
      enum: ['Hostname', 'ExternalIP', 'InternalIP', 'ExternalDNS', 'InternalDNS'] as const,
      maxLength: 16,
    }),
    address: string({ description: 'The address.', minLength: 1, maxLength: 256 }),
  },
  { description: 'An address of the machine.', typeName: 'MachineAddress', required: ['type', 'address'] },
);

export const kubevisorMachineStatus = object(
  {
    initialization: initialization('the VM runs', 'MachineInitialization'),
    addresses: array(address, { description: 'Addresses of the machine (host name, guest IPs).', maxItems: 32 }),
    vmName: string({ description: 'The VirtualMachine of this machine.', maxLength: 63 }),
    nodeName: string({ description: 'Node of the management cluster running the VM.', maxLength: 253 }),
    conditions,
  },
  { description: 'Observed state of the KubevisorMachine.', typeName: 'KubevisorMachineStatus' },
);

export const kubevisorMachineTemplateSpec = object(
  {
    template: object(
      {
        metadata: objectMeta('Labels and annotations of the machines made from this template.'),
        spec: kubevisorMachineSpec,
      },
      {
        description: 'The machines Cluster API makes from this template.',
        typeName: 'KubevisorMachineTemplateResource',
        required: ['spec'],
      },
    ),
  },
  {
    description: 'Desired state of the KubevisorMachineTemplate.',
    typeName: 'KubevisorMachineTemplateSpec',
    required: ['template'],
    rules: [
      {
        rule: 'self == oldSelf',
        message: 'a machine template is immutable: create one with a new name (the constructs hash the content)',
      },
    ],
  },
);

// Written by `npm run types` from the declarations above (see api/virtualmachine.ts).
export type {
  ApiEndpoint,
  ControlPlaneService,
  KubevisorClusterSpec,
  KubevisorClusterStatus,
  KubevisorMachineSpec,
  KubevisorMachineStatus,
  KubevisorMachineTemplateSpec,
  MachineAddress,
  MachineVirtualMachine,
  TemplateMetadata,
} from './generated/types';
