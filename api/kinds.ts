/**
 * The registry of kinds: for each, its schema, CRD metadata (names, printer columns) and the entry points that
 * every frontend shares — default, validate, and the CRD object itself.
 */
import type { OpenAPISchema, Rule } from './schema';
import { object } from './schema';
import { GROUP, VERSION } from './common';
import { virtualMachineSpec, virtualMachineStatus } from './virtualmachine';
import { virtualMachineMigrationSpec, virtualMachineMigrationStatus } from './virtualmachinemigration';
import {
  CLUSTER_API_CONTRACT,
  CLUSTER_API_GROUP,
  INFRASTRUCTURE_GROUP,
  INFRASTRUCTURE_PROVIDER,
  INFRASTRUCTURE_VERSION,
  kubevisorClusterSpec,
  kubevisorClusterStatus,
  kubevisorMachineSpec,
  kubevisorMachineStatus,
  kubevisorMachineTemplateSpec,
} from './infrastructure';
import { applyDefaults } from './defaults';
import type { FieldError } from './validate';
import { validateValue } from './validate';

export interface PrinterColumn {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'date' | 'boolean';
  readonly jsonPath: string;
  readonly description: string;
  readonly priority?: number;
}

export interface KindInfo {
  /** API group. @default kubevisor.io */
  readonly group?: string;
  /** API version within the group. @default v1alpha1 */
  readonly version?: string;
  /** Labels of the CRD (Cluster API finds its providers' kinds by their contract label). */
  readonly crdLabels?: Readonly<Record<string, string>>;
  /** Categories of `kubectl get <category>`. @default ['kubevisor'] */
  readonly categories?: readonly string[];
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly description: string;
  readonly printerColumns: readonly PrinterColumn[];
  /** The schema of the whole object (apiVersion, kind, metadata, spec, status). */
  readonly schema: OpenAPISchema;
  /** Fields the API server filters lists and watches by (`fieldSelector`), e.g. each node daemon its own VMs. */
  readonly selectableFields: readonly string[];
}

// Pod names and labels derive from the VM name, so it must be a DNS label (the API server itself only
// requires a DNS subdomain of custom-resource names).
const vmNameRule: Rule = {
  // The API server already requires a DNS subdomain; a label is one with no dots and at most 63 characters.
  rule: "self.metadata.name.size() <= 63 && !self.metadata.name.contains('.')",
  message:
    "the VM name must be a DNS label: at most 63 lowercase letters, digits and '-' (it becomes the guest hostname)",
};

/** `group/version` of a kind. */
export const apiVersionOf = (info: KindInfo): string => `${info.group ?? GROUP}/${info.version ?? VERSION}`;

function root(description: string, spec: OpenAPISchema, status?: OpenAPISchema, rules: Rule[] = []): OpenAPISchema {
  const s = object(
    { spec: { openapi: spec }, ...(status ? { status: { openapi: status } } : {}) },
    { description, required: ['spec'], rules },
  ).openapi;
  // apiVersion, kind and metadata are validated by the API server itself; the CRD lists them without detail.
  s.properties = {
    apiVersion: { type: 'string', description: 'APIVersion of this representation.' },
    kind: { type: 'string', description: 'Kind of this representation.' },
    metadata: { type: 'object' },
    ...s.properties,
  };
  return s;
}

export const VirtualMachineKind: KindInfo = {
  kind: 'VirtualMachine',
  plural: 'virtualmachines',
  singular: 'virtualmachine',
  shortNames: ['vm'],
  description: 'A Cloud Hypervisor virtual machine, run in its own pod.',
  printerColumns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Lifecycle phase.' },
    { name: 'Node', type: 'string', jsonPath: '.status.nodeName', description: 'Node running the VM.' },
    { name: 'IP', type: 'string', jsonPath: '.status.interfaces[0].ipAddresses[0]', description: 'First guest IP.' },
    { name: 'RunPolicy', type: 'string', jsonPath: '.spec.runPolicy', description: 'When the VM runs.', priority: 1 },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Age.' },
  ],
  selectableFields: ['.status.nodeName'],
  schema: root(
    'VirtualMachine runs a Cloud Hypervisor guest in a pod of its own.',
    virtualMachineSpec.openapi,
    virtualMachineStatus.openapi,
    [vmNameRule],
  ),
};

export const VirtualMachineMigrationKind: KindInfo = {
  kind: 'VirtualMachineMigration',
  plural: 'virtualmachinemigrations',
  singular: 'virtualmachinemigration',
  shortNames: ['vmm'],
  description: 'A live migration of one VirtualMachine to another node.',
  printerColumns: [
    { name: 'VM', type: 'string', jsonPath: '.spec.vmName', description: 'VM being migrated.' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Migration phase.' },
    { name: 'Source', type: 'string', jsonPath: '.status.sourceNodeName', description: 'Source node.' },
    { name: 'Target', type: 'string', jsonPath: '.status.targetNodeName', description: 'Target node.' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Age.' },
  ],
  selectableFields: ['.status.sourceNodeName', '.status.targetNodeName'],
  schema: root(
    'VirtualMachineMigration moves a running VirtualMachine to another node without stopping it.',
    virtualMachineMigrationSpec.openapi,
    virtualMachineMigrationStatus.openapi,
  ),
};

// The infrastructure kinds of Cluster API (contract v1beta2): CAPI finds them by the contract label, whose value lists
// the served versions it may use.
const infrastructure = {
  group: INFRASTRUCTURE_GROUP,
  version: INFRASTRUCTURE_VERSION,
  crdLabels: {
    [`${CLUSTER_API_GROUP}/${CLUSTER_API_CONTRACT}`]: INFRASTRUCTURE_VERSION,
    [`${CLUSTER_API_GROUP}/provider`]: INFRASTRUCTURE_PROVIDER,
  },
  categories: ['cluster-api', 'kubevisor'],
  selectableFields: [],
} as const;

const clusterNameColumn: PrinterColumn = {
  name: 'Cluster',
  type: 'string',
  jsonPath: `.metadata.labels.${CLUSTER_API_GROUP.replace(/\./g, '\\.')}/cluster-name`,
  description: 'Cluster API cluster this belongs to.',
};
const ageColumn: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Age.',
};

export const KubevisorClusterKind: KindInfo = {
  ...infrastructure,
  kind: 'KubevisorCluster',
  plural: 'kubevisorclusters',
  singular: 'kubevisorcluster',
  shortNames: ['kvcluster'],
  description: 'The infrastructure of a nested Kubernetes cluster (Cluster API): its control-plane endpoint.',
  printerColumns: [
    clusterNameColumn,
    { name: 'Host', type: 'string', jsonPath: '.spec.controlPlaneEndpoint.host', description: 'API endpoint host.' },
    { name: 'Port', type: 'integer', jsonPath: '.spec.controlPlaneEndpoint.port', description: 'API endpoint port.' },
    {
      name: 'Provisioned',
      type: 'boolean',
      jsonPath: '.status.initialization.provisioned',
      description: 'Endpoint known.',
    },
    ageColumn,
  ],
  schema: root(
    'KubevisorCluster is the infrastructure of a Cluster API cluster whose machines are kubevisor VMs.',
    kubevisorClusterSpec.openapi,
    kubevisorClusterStatus.openapi,
  ),
};

export const KubevisorMachineKind: KindInfo = {
  ...infrastructure,
  kind: 'KubevisorMachine',
  plural: 'kubevisormachines',
  singular: 'kubevisormachine',
  shortNames: ['kvmachine'],
  description: 'A Cluster API machine run as a kubevisor VirtualMachine.',
  printerColumns: [
    clusterNameColumn,
    { name: 'VM', type: 'string', jsonPath: '.status.vmName', description: 'The VirtualMachine.' },
    { name: 'Node', type: 'string', jsonPath: '.status.nodeName', description: 'Node running the VM.' },
    { name: 'ProviderID', type: 'string', jsonPath: '.spec.providerID', description: 'Provider ID.', priority: 1 },
    {
      name: 'Provisioned',
      type: 'boolean',
      jsonPath: '.status.initialization.provisioned',
      description: 'VM running.',
    },
    ageColumn,
  ],
  schema: root(
    'KubevisorMachine is a Cluster API machine that runs as one kubevisor VirtualMachine of the same name.',
    kubevisorMachineSpec.openapi,
    kubevisorMachineStatus.openapi,
    // The VM gets the machine's name, so it must be a DNS label too.
    [vmNameRule],
  ),
};

export const KubevisorMachineTemplateKind: KindInfo = {
  ...infrastructure,
  kind: 'KubevisorMachineTemplate',
  plural: 'kubevisormachinetemplates',
  singular: 'kubevisormachinetemplate',
  shortNames: ['kvmt'],
  description: 'A template of KubevisorMachines (Cluster API clones it for each machine).',
  printerColumns: [clusterNameColumn, ageColumn],
  schema: root(
    'KubevisorMachineTemplate is what Cluster API clones into KubevisorMachines; it never changes (roll out a new one).',
    kubevisorMachineTemplateSpec.openapi,
  ),
};

export const KINDS: readonly KindInfo[] = [
  VirtualMachineKind,
  VirtualMachineMigrationKind,
  KubevisorClusterKind,
  KubevisorMachineKind,
  KubevisorMachineTemplateKind,
];

export function kindInfo(kind: string): KindInfo {
  const k = KINDS.find((x) => x.kind === kind);
  if (!k) throw new Error(`unknown kind ${kind}: expected one of ${KINDS.map((x) => x.kind).join(', ')}`);
  return k;
}

/** A kubevisor object as it appears in a manifest. */
export interface KubevisorObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  spec: unknown;
  status?: unknown;
}

const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Applies the CRD's defaults, exactly as the API server would on create. */
export function defaultObject<T extends KubevisorObject>(obj: T): T {
  return applyDefaults(kindInfo(obj.kind).schema, obj);
}

/**
 * Validates an object as the API server would on create (or on update when `old` is given): the object is
 * defaulted first, then checked against the schema and every CEL rule. Returns all errors, empty when valid.
 */
export function validateObject(obj: KubevisorObject, old?: KubevisorObject): FieldError[] {
  const info = kindInfo(obj.kind);
  const errors: FieldError[] = [];
  const apiVersion = apiVersionOf(info);
  if (obj.apiVersion !== apiVersion) {
    errors.push({
      field: 'apiVersion',
      type: 'Unsupported value',
      detail: `${JSON.stringify(obj.apiVersion)}: supported values: "${apiVersion}"`,
    });
    return errors;
  }
  const n = obj.metadata?.name;
  if (!n) errors.push({ field: 'metadata.name', type: 'Required value', detail: 'name or generateName is required' });
  else if (n.length > 253 || !DNS_SUBDOMAIN_RE.test(n)) {
    errors.push({
      field: 'metadata.name',
      type: 'Invalid value',
      detail: `${JSON.stringify(n)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`,
    });
  }
  if (errors.length) return errors;
  const { metadata, ...rest } = defaultObject(obj);
  const oldRest = old ? (({ metadata: _m, ...r }) => r)(defaultObject(old)) : undefined;
  // metadata is checked above; CEL sees only name and generateName of it, as in the API server.
  const celMeta = { name: metadata.name, ...(metadata.generateName ? { generateName: metadata.generateName } : {}) };
  errors.push(
    ...validateValue(
      info.schema,
      { ...rest, metadata: celMeta },
      '',
      oldRest ? { ...oldRest, metadata: celMeta } : undefined,
    ),
  );
  return errors;
}

/** The CustomResourceDefinition of a kind, as written to deploy/crds. */
export function customResourceDefinition(info: KindInfo): Record<string, unknown> {
  const group = info.group ?? GROUP;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${info.plural}.${group}`,
      labels: { 'app.kubernetes.io/part-of': 'kubevisor', ...info.crdLabels },
    },
    spec: {
      group,
      names: {
        kind: info.kind,
        listKind: `${info.kind}List`,
        plural: info.plural,
        singular: info.singular,
        shortNames: [...info.shortNames],
        categories: [...(info.categories ?? ['kubevisor'])],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: info.version ?? VERSION,
          served: true,
          storage: true,
          ...(info.schema.properties?.status ? { subresources: { status: {} } } : {}),
          additionalPrinterColumns: info.printerColumns.map((c) => ({ ...c })),
          ...(info.selectableFields.length
            ? { selectableFields: info.selectableFields.map((jsonPath) => ({ jsonPath })) }
            : {}),
          schema: { openAPIV3Schema: info.schema },
        },
      ],
    },
  };
}
