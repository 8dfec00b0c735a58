/**
 * The registry of kinds: for each, its schema, CRD metadata (names, printer columns) and the entry points that
 * every frontend shares — default, validate, and the CRD object itself.
 */
import type { OpenAPISchema, Rule } from './schema';
import { object } from './schema';
import { API_VERSION, GROUP, VERSION } from './common';
import { virtualMachineSpec, virtualMachineStatus } from './virtualmachine';
import { virtualMachineMigrationSpec, virtualMachineMigrationStatus } from './virtualmachinemigration';
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

function root(description: string, spec: OpenAPISchema, status: OpenAPISchema, rules: Rule[] = []): OpenAPISchema {
  const s = object(
    { spec: { openapi: spec }, status: { openapi: status } },
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

export const KINDS: readonly KindInfo[] = [VirtualMachineKind, VirtualMachineMigrationKind];

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
  if (obj.apiVersion !== API_VERSION) {
    errors.push({
      field: 'apiVersion',
      type: 'Unsupported value',
      detail: `${JSON.stringify(obj.apiVersion)}: supported values: "${API_VERSION}"`,
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
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${info.plural}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'kubevisor' } },
    spec: {
      group: GROUP,
      names: {
        kind: info.kind,
        listKind: `${info.kind}List`,
        plural: info.plural,
        singular: info.singular,
        shortNames: [...info.shortNames],
        categories: ['kubevisor'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: info.printerColumns.map((c) => ({ ...c })),
          selectableFields: info.selectableFields.map((jsonPath) => ({ jsonPath })),
          schema: { openAPIV3Schema: info.schema },
        },
      ],
    },
  };
}
