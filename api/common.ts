/** Schema pieces shared by several kinds: names, images, conditions, pod scheduling fields. */
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

export const imagePullPolicy = string({
  description:
    'When the kubelet pulls the image: Always, IfNotPresent or Never. Defaults to the kubelet default (Always for :latest, else IfNotPresent).',
  enum: ['Always', 'IfNotPresent', 'Never'] as const,
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
    requests: resourceList('Minimum resources for the VM pod; the VMM overhead is added to memory (see the README).'),
    limits: resourceList('Maximum resources for the VM pod.'),
  },
  {
    description:
      'Extra resources for the VM pod. Guest memory, hugepages and the VMM overhead are added by kubevisor; set these for CPU or to reserve more.',
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
    key: string({ description: 'Taint key; empty with Exists matches every taint.', maxLength: 317 }),
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
    rules: [
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

export const scheduling = {
  nodeSelector: map(string({ description: 'Label value.', maxLength: 63 }), {
    description: 'Node labels the VM pod must match.',
    maxProperties: 64,
  }),
  affinity: opaque<Record<string, unknown>>({
    description: 'Affinity rules (core/v1 Affinity) copied to the VM pod.',
  }),
  tolerations: array(toleration, { description: 'Tolerations copied to the VM pod.', maxItems: 64 }),
};
