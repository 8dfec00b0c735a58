/** Schema pieces shared by several kinds: names, images, conditions, pod scheduling fields. */
export type { Condition, ResourceRequirements, Toleration } from './generated/types';
export type * from './affinity';
import type { Affinity } from './affinity';
import { array, integer, map, object, opaque, quantity, string } from './schema';

export const GROUP = 'kubevisor.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** DNS-1123 label: what Kubernetes requires of container, volume and port names. */
export const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/** DNS-1123 subdomain: what Kubernetes requires of most object names (Secrets, PVCs). */
export const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

export const name = (description: string) => string({ description, pattern: DNS_LABEL, minLength: 1, maxLength: 63 });

export const objectName = (description: string) =>
  string({ description, pattern: DNS_SUBDOMAIN, minLength: 1, maxLength: 253 });

export const image = (description: string) => string({ description, minLength: 1, maxLength: 512 });

/**
 * Pull policy of a user image (containerDisk, containerRootfs, kernel). `Always` by default: with IfNotPresent or
 * Never the kubelet starts a pod from any image already on the node, so a VM in one namespace could boot a private
 * image that another tenant's credentials pulled there. Always makes the kubelet check with the registry (with this
 * pod's pull credentials) on every start; layers already on the node are not downloaded again.
 */
export const imagePullPolicy = string({
  description:
    'When the kubelet pulls the image: Always (default), IfNotPresent or Never. IfNotPresent and Never start from an ' +
    'image already on the node without asking the registry, so a private image another namespace pulled there could ' +
    'be used; Always checks access on every start.',
  enum: ['Always', 'IfNotPresent', 'Never'] as const,
  default: 'Always',
  maxLength: 16,
});

export const condition = object(
  {
    type: string({ description: 'Condition type in CamelCase, e.g. Ready.', maxLength: 316 }),
    status: string({
      description: 'True, False or Unknown.',
      enum: ['True', 'False', 'Unknown'] as const,
      maxLength: 7,
    }),
    observedGeneration: integer({
      description: 'The .metadata.generation the condition was set from.',
      minimum: 0,
      int64: true,
    }),
    lastTransitionTime: string({ description: 'When the status last changed (RFC 3339).', maxLength: 64 }),
    reason: string({ description: 'CamelCase reason for the last transition.', maxLength: 1024 }),
    message: string({ description: 'Human-readable details.', maxLength: 32768 }),
  },
  {
    description: 'A standard Kubernetes condition (metav1.Condition).',
    typeName: 'Condition',
    required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
  },
);

export const conditions = array(condition, {
  description: 'Standard conditions, one per type.',
  maxItems: 16,
  key: 'type',
});

const resourceList = (description: string) =>
  map(quantity({ description: 'A quantity, e.g. 2, 500m, 4Gi.' }), { description, maxProperties: 8 });

export const resources = object(
  {
    requests: resourceList(
      'Requested on top of what kubevisor computes for the VM pod (guest memory + VMM overhead, devices, disk space).',
    ),
    limits: resourceList('Limits on top of what kubevisor computes for the VM pod; never below its requests.'),
  },
  {
    description:
      'Extra resources for the VM pod, added to what kubevisor computes (guest memory and VMM overhead, hugepages, ' +
      'devices, ephemeral storage for its disks); they can never lower it. Set these for CPU or to reserve more.',
    typeName: 'ResourceRequirements',
    rules: [
      {
        rule: '!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits) || !quantity(string(self.requests[k])).isGreaterThan(quantity(string(self.limits[k]))))',
        message: 'each request must be less than or equal to its limit',
        fieldPath: '.requests',
      },
    ],
  },
);

export const toleration = object(
  {
    key: string({
      description: 'Taint key (required: a toleration of every taint is refused).',
      maxLength: 317,
    }),
    operator: string({
      description: 'Exists or Equal.',
      enum: ['Exists', 'Equal'] as const,
      default: 'Equal',
      maxLength: 8,
    }),
    value: string({ description: 'Taint value for Equal.', maxLength: 63 }),
    effect: string({
      description: 'Taint effect to match; empty matches all.',
      enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const,
      maxLength: 16,
    }),
    tolerationSeconds: integer({ description: 'How long a NoExecute taint is tolerated.', int64: true }),
  },
  {
    description: 'A toleration copied to the VM pod.',
    typeName: 'Toleration',
    rules: [
      {
        // An empty key with Exists tolerates every taint: it would let VM pods onto control-plane nodes and nodes
        // other teams dedicated with taints.
        rule: "has(self.key) && self.key != ''",
        message: 'name the taint key: a toleration without a key tolerates every taint, which VM pods may not',
        fieldPath: '.key',
        reason: 'FieldValueRequired',
      },
      {
        rule: "self.operator != 'Exists' || !has(self.value) || self.value == ''",
        message: 'value must be empty when operator is Exists',
        fieldPath: '.value',
      },
      {
        rule: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        message: "tolerationSeconds applies only to effect 'NoExecute'",
        fieldPath: '.tolerationSeconds',
      },
    ],
  },
);

/** The label the node setup puts on nodes prepared for VMs; every VM pod selects it. */
export const KVM_NODE_LABEL = 'kubevisor.io/kvm';
/**
 * Labels node setup puts on each node about its CPU, for migration compatibility: a guest sees the host's CPU model
 * and feature flags, so it may only move to a node whose flags include them all (equal hashes are the simple case).
 */
export const CPU_VENDOR_LABEL = 'kubevisor.io/cpu-vendor';
export const CPU_MODEL_LABEL = 'kubevisor.io/cpu-model';
export const CPU_FEATURES_LABEL = 'kubevisor.io/cpu-features';
/** Annotation node setup writes on each node: what it found and did, as JSON (devices, modules, hugepages). */
export const NODE_SETUP_ANNOTATION = 'kubevisor.io/node-setup';

export const scheduling = {
  nodeSelector: map(string({ description: 'Label value.', maxLength: 63 }), {
    description: `Node labels the VM pod must match, besides ${KVM_NODE_LABEL}: "true", which every VM pod selects.`,
    maxProperties: 64,
    rules: [
      {
        rule: `!('${KVM_NODE_LABEL}' in self) || self['${KVM_NODE_LABEL}'] == 'true'`,
        message: `${KVM_NODE_LABEL} must be "true": VM pods run only on nodes the node setup prepared (kubevisor selects them itself)`,
      },
    ],
  }),
  affinity: opaque<Affinity>({
    description: 'Affinity rules (core/v1 Affinity) copied to the VM pod.',
    external: { name: 'Affinity', from: './affinity' },
  }),
  tolerations: array(toleration, { description: 'Tolerations copied to the VM pod.', maxItems: 64 }),
};
