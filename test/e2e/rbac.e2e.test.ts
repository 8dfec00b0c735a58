/**
 * Least privilege, proven on the real API server. Every other e2e file runs the operator's processes as
 * ServiceAccounts with exactly the install's rules (the controller: harness/operator-identity.ts; the node daemons:
 * harness/node-identity.ts), and the API server audits every ServiceAccount request (harness/control-plane.ts). This
 * file runs last (test/e2e/sequencer.js) and
 *
 * 1. reduces the audit log to the distinct calls each operator role made — (verb, group, resource, subresource,
 *    namespace, and the name where the rules name objects) — with the suites' namespaces mapped to what they stand
 *    for: the namespace a role's ServiceAccount lived in is the install's kubevisor-system, any other a tenant's;
 * 2. applies the platform's own RBAC objects (ServiceAccounts, roles, bindings) and asks the API server, by
 *    SubjectAccessReview for each role's platform ServiceAccount, whether each needed call is allowed;
 * 3. asks the same for a table of calls each role must never be able to make, each for its own reason.
 *
 * The needed calls are checked against the install with the Cluster API provider on (platform prop `clusterApi`: the
 * nested-cluster suite runs the provider), the forbidden ones against the default install, which grants less.
 *
 * and prints `rbac: allowed N/N needed, denied M/M forbidden` once all of it holds. A needed call the platform's rules
 * refuse fails the test with the call named.
 */
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { GROUP } from '../../api';
import { PLATFORM_NAMESPACE, serviceAccountUser } from '../../constructs/platform/names';
import { renderPlatform } from '../../constructs/platform/render';
import { DEFAULT_CA_CONFIGMAP_NAME, DEFAULT_CA_SECRET_NAME, MIGRATION_SIGNER_NAME } from '../../operator/migration-pki';
import type { PolicyRule } from '../../operator/rbac';
import type { KubeObject } from './harness/kube-client';
import { OPERATOR_SERVICE_ACCOUNTS, operatorRoleOf, type OperatorRole } from './harness/operator-identity';
import { sharedControlPlane, sharedControlPlaneInfo } from './harness/shared';
import { waitFor } from './harness/wait';

const admin = sharedControlPlane();
const info = sharedControlPlaneInfo();
const FIELD_MANAGER = 'kubevisor-e2e';
/** Where the suites' calls in their own namespaces are asked about: any namespace but the install's is a tenant's. */
const TENANT = 'tenant-a';
const RBAC_KINDS = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);
const ROLES = Object.keys(OPERATOR_SERVICE_ACCOUNTS) as OperatorRole[];

/** The platform's RBAC objects, exactly as the install renders them (the cdk8s constructs, synthesized in memory). */
function platformRbacObjects(clusterApi = false): KubeObject[] {
  return renderPlatform({ clusterApi })
    .filter((o) => RBAC_KINDS.has(o.kind))
    .map((o) => o as unknown as KubeObject);
}

/** One API call, as RBAC sees it. `namespace` '' is cluster scope (or all namespaces); `name` '' is any name. */
interface Call {
  role: OperatorRole;
  verb: string;
  group: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  /** A non-resource request (discovery, /version): its path; then only `verb` applies. */
  nonResourcePath?: string;
  /** Why it is needed beyond the audit log, if it was not recorded as such. */
  implied?: string;
}

const describeCall = (c: Call): string =>
  c.nonResourcePath !== undefined
    ? `${c.role}: ${c.verb} ${c.nonResourcePath}`
    : `${c.role}: ${c.verb} ${c.resource}${c.subresource ? `/${c.subresource}` : ''}` +
      `${c.group ? `.${c.group}` : ''} in ${c.namespace || '(cluster)'}${c.name ? ` name ${c.name}` : ''}` +
      `${c.implied ? ` (implied: ${c.implied})` : ''}`;
const callKey = (c: Call): string =>
  JSON.stringify([c.role, c.verb, c.group, c.resource, c.subresource, c.namespace, c.name, c.nonResourcePath ?? null]);

interface AuditEvent {
  verb: string;
  requestURI: string;
  user?: { username?: string };
  objectRef?: {
    resource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
    subresource?: string;
  };
  responseStatus?: { code?: number };
}

/** Every event of the audit log, rotated files included (oldest first). */
async function readAuditLog(): Promise<AuditEvent[]> {
  const dir = path.dirname(info.auditLogPath);
  const base = path.basename(info.auditLogPath, '.log');
  const rotated = readdirSync(dir)
    .filter((f) => f.startsWith(`${base}-`) && f.endsWith('.log'))
    .sort()
    .map((f) => path.join(dir, f));
  const events: AuditEvent[] = [];
  for (const file of [...rotated, info.auditLogPath]) {
    if (!existsSync(file)) continue;
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    for await (const line of lines) if (line.trim()) events.push(JSON.parse(line) as AuditEvent);
  }
  return events;
}

/** Rules of each role in the platform's objects: those of every role bound to the role's ServiceAccount. */
function rulesByRole(objects: KubeObject[]): Record<OperatorRole, { namespace: string; rules: PolicyRule[] }[]> {
  type Binding = KubeObject & {
    roleRef: { kind: string; name: string };
    subjects?: { kind: string; name: string; namespace?: string }[];
  };
  type RoleObject = KubeObject & { rules?: PolicyRule[] };
  const result = Object.fromEntries(ROLES.map((r) => [r, []])) as unknown as Record<
    OperatorRole,
    { namespace: string; rules: PolicyRule[] }[]
  >;
  for (const binding of objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding')) {
    const { roleRef, subjects = [], metadata } = binding as Binding;
    const roleObject = objects.find(
      (o) =>
        o.kind === roleRef.kind &&
        o.metadata.name === roleRef.name &&
        (roleRef.kind === 'ClusterRole' || o.metadata.namespace === metadata.namespace),
    ) as RoleObject | undefined;
    for (const role of ROLES) {
      const bound = subjects.some(
        (s) =>
          s.kind === 'ServiceAccount' &&
          s.name === OPERATOR_SERVICE_ACCOUNTS[role] &&
          s.namespace === PLATFORM_NAMESPACE,
      );
      if (bound && roleObject)
        result[role].push({ namespace: metadata.namespace ?? '', rules: roleObject.rules ?? [] });
    }
  }
  return result;
}

/**
 * The calls the operator's roles made, from the audit log. Namespaces map to what they stood for. A name is kept only
 * where the platform's rules name that object (`named`: group/resource → names); any other name is decided by RBAC
 * exactly as no name is (only rules without resourceNames grant it), so it becomes '' and equal calls merge. A create
 * has no name for RBAC (the object does not exist yet), though the audit event shows the new object's.
 */
function neededCalls(
  events: AuditEvent[],
  named: Map<string, Set<string>>,
): { calls: Call[]; users: Map<string, OperatorRole> } {
  const users = new Map<string, OperatorRole>();
  const calls = new Map<string, Call>();
  const add = (call: Call) => {
    const key = callKey(call);
    if (!calls.has(key)) calls.set(key, call);
  };
  for (const event of events) {
    const username = event.user?.username ?? '';
    const identity = operatorRoleOf(username);
    if (!identity) continue;
    // 401: a token no longer valid (its pod gone) authenticates as no one — nothing RBAC decides.
    if (event.responseStatus?.code === 401) continue;
    const { role, platformNamespace } = identity;
    users.set(username, role);
    const ref = event.objectRef;
    if (!ref?.resource) {
      add({
        role,
        verb: event.verb,
        group: '',
        resource: '',
        subresource: '',
        namespace: '',
        name: '',
        nonResourcePath: event.requestURI.split('?')[0],
      });
      continue;
    }
    const group = ref.apiGroup ?? '';
    const subresource = ref.subresource ?? '';
    const resource = ref.resource;
    // "Who am I" (SelfSubjectReview): the migration file asks it with a daemon's token to check the token's node; no
    // operator process does. Every authenticated user may, so leaving it out hides no rule the operator lacks.
    if (group === 'authentication.k8s.io' && resource === 'selfsubjectreviews') continue;
    const namespace = !ref.namespace
      ? ''
      : ref.namespace === platformNamespace || ref.namespace === PLATFORM_NAMESPACE
        ? PLATFORM_NAMESPACE
        : TENANT;
    const fullResource = subresource ? `${resource}/${subresource}` : resource;
    const keepName =
      (named.get(`${group}/${fullResource}`)?.has(ref.name ?? '') ?? false) &&
      !(event.verb === 'create' && !subresource);
    const call: Call = {
      role,
      verb: event.verb,
      group,
      resource,
      subresource,
      namespace,
      name: keepName ? (ref.name ?? '') : '',
    };
    add(call);
    // The install's controller watches every namespace (watchNamespace unset); the suites ran it in one namespace.
    if (role === 'controller' && namespace === TENANT && (call.verb === 'list' || call.verb === 'watch')) {
      add({ ...call, namespace: '', implied: 'the install watches every namespace' });
    }
    // Approving or issuing a CSR's certificate also takes `approve` or `sign` on its signer, which the API server
    // checks itself (not a request of the operator, so not in the log). The operator signs for its signer only.
    if (group === 'certificates.k8s.io' && resource === 'certificatesigningrequests' && event.verb === 'update') {
      const verb = subresource === 'approval' ? 'approve' : subresource === 'status' ? 'sign' : '';
      if (verb) {
        add({
          role,
          verb,
          group,
          resource: 'signers',
          subresource: '',
          namespace: '',
          name: MIGRATION_SIGNER_NAME,
          implied: `update of certificatesigningrequests/${subresource}`,
        });
      }
    }
  }
  return { calls: [...calls.values()], users };
}

/**
 * The platform's grants that no needed call used, per role: rules broader than what the suites exercised. Reported,
 * not failed — some serve what the suites cannot show (an admission plugin this API server does not run, a flag).
 */
function unexercisedGrants(): string[] {
  const out: string[] = [];
  for (const role of ROLES) {
    for (const { namespace, rules: roleRules } of rules[role]) {
      for (const rule of roleRules) {
        for (const group of rule.apiGroups) {
          for (const resource of rule.resources) {
            const [res, sub = ''] = resource.split('/');
            for (const verb of rule.verbs) {
              for (const name of rule.resourceNames?.length ? rule.resourceNames : ['']) {
                const used = needed.some(
                  (c) =>
                    c.role === role &&
                    c.nonResourcePath === undefined &&
                    c.group === group &&
                    c.resource === res &&
                    c.subresource === sub &&
                    c.verb === verb &&
                    (!name || c.name === name) &&
                    (!namespace || c.namespace === namespace),
                );
                if (!used) {
                  out.push(
                    `${role}: ${verb} ${resource}${group ? `.${group}` : ''}` +
                      `${namespace ? ` in ${namespace}` : ''}${name ? ` name ${name}` : ''}`,
                  );
                }
              }
            }
          }
        }
      }
    }
  }
  return out;
}

interface SubjectAccessReview {
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

/** Whether the platform's ServiceAccount of `role` may make `call`, as the API server's authorizer decides. */
async function allowed(call: Call): Promise<{ allowed: boolean; reason: string }> {
  const spec: Record<string, unknown> = {
    user: serviceAccountUser(OPERATOR_SERVICE_ACCOUNTS[call.role]),
    groups: ['system:serviceaccounts', `system:serviceaccounts:${PLATFORM_NAMESPACE}`, 'system:authenticated'],
  };
  if (call.nonResourcePath !== undefined) {
    spec.nonResourceAttributes = { path: call.nonResourcePath, verb: call.verb };
  } else {
    spec.resourceAttributes = {
      verb: call.verb,
      group: call.group,
      resource: call.resource,
      ...(call.subresource ? { subresource: call.subresource } : {}),
      ...(call.namespace ? { namespace: call.namespace } : {}),
      ...(call.name ? { name: call.name } : {}),
    };
  }
  const review = await admin.request<SubjectAccessReview>(
    'POST',
    '/apis/authorization.k8s.io/v1/subjectaccessreviews',
    {
      body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec },
    },
  );
  const status = review.status ?? {};
  return { allowed: status.allowed === true, reason: status.reason ?? status.evaluationError ?? '' };
}

/** A call a role must never be able to make, and why. */
interface Probe {
  role: OperatorRole;
  verb: string;
  group?: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  why: string;
}

const CRD = 'apiextensions.k8s.io';
const RBAC_GROUP = 'rbac.authorization.k8s.io';
const CSR = 'certificates.k8s.io';
const CLIENT_SIGNER = 'kubernetes.io/kube-apiserver-client';

/**
 * What each role must be refused. Not here, because the rules grant it (see operator/rbac.ts): the controller's `get`,
 * `create`, `patch` and `delete` of Secrets and its `create` of pods reach every namespace, kube-system included.
 */
const FORBIDDEN: readonly Probe[] = [
  // The controller.
  { role: 'controller', verb: 'list', resource: 'secrets', why: 'enumerate every Secret of the cluster' },
  { role: 'controller', verb: 'watch', resource: 'secrets', why: 'follow every Secret as it changes' },
  { role: 'controller', verb: 'get', resource: 'configmaps', namespace: TENANT, why: "read a tenant's ConfigMaps" },
  {
    role: 'controller',
    verb: 'update',
    resource: 'configmaps',
    namespace: PLATFORM_NAMESPACE,
    name: 'kube-root-ca.crt',
    why: "rewrite the cluster CA bundle the operator namespace's pods trust",
  },
  {
    role: 'controller',
    verb: 'create',
    resource: 'pods',
    subresource: 'exec',
    namespace: TENANT,
    why: "run commands in a tenant's pods",
  },
  {
    role: 'controller',
    verb: 'create',
    resource: 'pods',
    subresource: 'attach',
    namespace: TENANT,
    why: "attach to a running container's console",
  },
  {
    role: 'controller',
    verb: 'patch',
    resource: 'pods',
    subresource: 'ephemeralcontainers',
    namespace: TENANT,
    why: 'inject a container into a running pod',
  },
  {
    role: 'controller',
    verb: 'get',
    resource: 'nodes',
    subresource: 'proxy',
    why: "reach kubelets' APIs through the API server",
  },
  { role: 'controller', verb: 'create', resource: 'nodes', why: 'register a node of its own to attract VMs' },
  { role: 'controller', verb: 'patch', resource: 'nodes', why: 'label or taint nodes to steer workloads' },
  {
    role: 'controller',
    verb: 'patch',
    resource: 'nodes',
    subresource: 'status',
    why: "fake a node's conditions or capacity",
  },
  { role: 'controller', verb: 'delete', resource: 'nodes', why: 'remove a node from the cluster' },
  {
    role: 'controller',
    verb: 'delete',
    resource: 'namespaces',
    name: TENANT,
    why: "delete a tenant's namespace and all in it",
  },
  {
    role: 'controller',
    verb: 'create',
    group: CRD,
    resource: 'customresourcedefinitions',
    why: 'add kinds to the API',
  },
  {
    role: 'controller',
    verb: 'update',
    group: CRD,
    resource: 'customresourcedefinitions',
    name: `virtualmachines.${GROUP}`,
    why: 'weaken the VM schema and its validation rules',
  },
  {
    role: 'controller',
    verb: 'delete',
    group: CRD,
    resource: 'customresourcedefinitions',
    name: `virtualmachines.${GROUP}`,
    why: 'delete every VM of the cluster with their CRD',
  },
  {
    role: 'controller',
    verb: 'create',
    group: GROUP,
    resource: 'virtualmachines',
    namespace: TENANT,
    why: 'create VMs on its own',
  },
  {
    role: 'controller',
    verb: 'delete',
    group: GROUP,
    resource: 'virtualmachines',
    namespace: TENANT,
    why: "delete a tenant's VM",
  },
  {
    role: 'controller',
    verb: 'delete',
    resource: 'persistentvolumeclaims',
    namespace: TENANT,
    why: "delete a tenant's disks",
  },
  { role: 'controller', verb: 'create', group: RBAC_GROUP, resource: 'clusterroles', why: 'define new powers' },
  {
    role: 'controller',
    verb: 'escalate',
    group: RBAC_GROUP,
    resource: 'clusterroles',
    why: 'grant rules it does not hold itself',
  },
  {
    role: 'controller',
    verb: 'bind',
    group: RBAC_GROUP,
    resource: 'clusterroles',
    name: 'cluster-admin',
    why: 'bind cluster-admin to anyone',
  },
  {
    role: 'controller',
    verb: 'create',
    group: RBAC_GROUP,
    resource: 'clusterrolebindings',
    why: 'bind itself to any ClusterRole cluster-wide',
  },
  {
    role: 'controller',
    verb: 'create',
    group: RBAC_GROUP,
    resource: 'rolebindings',
    namespace: TENANT,
    why: "grant rights inside a tenant's namespace",
  },
  { role: 'controller', verb: 'impersonate', resource: 'users', why: 'act as any user' },
  { role: 'controller', verb: 'impersonate', resource: 'groups', name: 'system:masters', why: 'act as system:masters' },
  {
    role: 'controller',
    verb: 'create',
    resource: 'serviceaccounts',
    subresource: 'token',
    namespace: TENANT,
    why: "mint tokens of a tenant's ServiceAccounts",
  },
  {
    role: 'controller',
    verb: 'approve',
    group: CSR,
    resource: 'signers',
    name: CLIENT_SIGNER,
    why: 'approve API client certificates for any user',
  },
  {
    role: 'controller',
    verb: 'sign',
    group: CSR,
    resource: 'signers',
    name: CLIENT_SIGNER,
    why: 'issue API client certificates for any user',
  },
  {
    role: 'controller',
    verb: 'create',
    group: 'admissionregistration.k8s.io',
    resource: 'mutatingwebhookconfigurations',
    why: 'intercept and rewrite every write to the API',
  },
  {
    role: 'controller',
    verb: 'update',
    group: 'coordination.k8s.io',
    resource: 'leases',
    namespace: 'kube-system',
    name: 'kube-scheduler',
    why: "take another component's leader Lease",
  },
  {
    role: 'controller',
    verb: 'create',
    group: 'apps',
    resource: 'daemonsets',
    namespace: 'kube-system',
    why: 'run a workload of its choice on every node',
  },

  // The node daemon (one per node: a node compromised must not reach beyond its VMs).
  {
    role: 'daemon',
    verb: 'get',
    resource: 'secrets',
    namespace: TENANT,
    why: "read a tenant's Secrets (cloud-init data, keys)",
  },
  { role: 'daemon', verb: 'list', resource: 'secrets', why: 'enumerate every Secret of the cluster' },
  {
    role: 'daemon',
    verb: 'get',
    resource: 'secrets',
    namespace: PLATFORM_NAMESPACE,
    name: DEFAULT_CA_SECRET_NAME,
    why: "read the migration CA's private key",
  },
  { role: 'daemon', verb: 'create', resource: 'pods', namespace: TENANT, why: 'start pods of its own' },
  { role: 'daemon', verb: 'delete', resource: 'pods', namespace: TENANT, why: 'kill VMs, its node’s or others’' },
  {
    role: 'daemon',
    verb: 'patch',
    resource: 'pods',
    subresource: 'status',
    namespace: TENANT,
    why: "forge a VM pod's status, which the controller trusts",
  },
  {
    role: 'daemon',
    verb: 'create',
    resource: 'pods',
    subresource: 'exec',
    namespace: TENANT,
    why: 'run commands in pods',
  },
  { role: 'daemon', verb: 'patch', resource: 'nodes', why: 'label or taint nodes to attract VMs' },
  {
    role: 'daemon',
    verb: 'patch',
    resource: 'nodes',
    subresource: 'status',
    why: "fake a node's conditions or capacity",
  },
  {
    role: 'daemon',
    verb: 'patch',
    group: GROUP,
    resource: 'virtualmachines',
    namespace: TENANT,
    why: "change a VM's spec (disks, images, cloud-init)",
  },
  { role: 'daemon', verb: 'delete', group: GROUP, resource: 'virtualmachines', namespace: TENANT, why: 'delete VMs' },
  {
    role: 'daemon',
    verb: 'delete',
    resource: 'persistentvolumeclaims',
    namespace: TENANT,
    why: "delete a tenant's disks",
  },
  {
    role: 'daemon',
    verb: 'update',
    group: CSR,
    resource: 'certificatesigningrequests',
    subresource: 'approval',
    why: 'approve its own certificate request',
  },
  {
    role: 'daemon',
    verb: 'update',
    group: CSR,
    resource: 'certificatesigningrequests',
    subresource: 'status',
    why: 'write a certificate into a request',
  },
  {
    role: 'daemon',
    verb: 'sign',
    group: CSR,
    resource: 'signers',
    name: MIGRATION_SIGNER_NAME,
    why: 'issue migration certificates for any node',
  },
  {
    role: 'daemon',
    verb: 'delete',
    group: CSR,
    resource: 'certificatesigningrequests',
    why: "remove other nodes' certificate requests",
  },
  {
    role: 'daemon',
    verb: 'list',
    resource: 'configmaps',
    namespace: PLATFORM_NAMESPACE,
    why: 'read ConfigMaps of the operator namespace beyond the CA bundle',
  },
  {
    role: 'daemon',
    verb: 'update',
    resource: 'configmaps',
    namespace: PLATFORM_NAMESPACE,
    name: DEFAULT_CA_CONFIGMAP_NAME,
    why: 'replace the migration CA bundle with a CA it holds',
  },
  {
    role: 'daemon',
    verb: 'create',
    resource: 'serviceaccounts',
    subresource: 'token',
    namespace: TENANT,
    why: 'mint ServiceAccount tokens',
  },
  {
    role: 'daemon',
    verb: 'update',
    group: 'coordination.k8s.io',
    resource: 'leases',
    namespace: PLATFORM_NAMESPACE,
    name: 'kubevisor-controller',
    why: "take the controller's leader Lease",
  },
  { role: 'daemon', verb: 'impersonate', resource: 'users', why: 'act as any user' },
  {
    role: 'daemon',
    verb: 'create',
    group: RBAC_GROUP,
    resource: 'clusterrolebindings',
    why: 'grant itself more rights',
  },

  // Node setup (labels its node; RBAC cannot narrow the patch to it, an admission policy does).
  { role: 'node-setup', verb: 'get', resource: 'secrets', namespace: TENANT, why: 'read Secrets' },
  { role: 'node-setup', verb: 'create', resource: 'pods', namespace: TENANT, why: 'start pods' },
  {
    role: 'node-setup',
    verb: 'create',
    resource: 'pods',
    subresource: 'exec',
    namespace: TENANT,
    why: 'run commands in pods',
  },
  { role: 'node-setup', verb: 'create', resource: 'nodes', why: 'register nodes' },
  { role: 'node-setup', verb: 'delete', resource: 'nodes', why: 'remove nodes' },
  {
    role: 'node-setup',
    verb: 'patch',
    resource: 'nodes',
    subresource: 'status',
    why: "fake a node's conditions or capacity (it labels nodes only)",
  },
  {
    role: 'node-setup',
    verb: 'patch',
    group: GROUP,
    resource: 'virtualmachines',
    subresource: 'status',
    namespace: TENANT,
    why: "forge a VM's status",
  },
  {
    role: 'node-setup',
    verb: 'create',
    group: CSR,
    resource: 'certificatesigningrequests',
    why: 'request certificates',
  },
  {
    role: 'node-setup',
    verb: 'create',
    group: RBAC_GROUP,
    resource: 'clusterrolebindings',
    why: 'grant itself more rights',
  },
];

/** Calls each role must have made in the suites: if one is missing, the suites did not run as the operator. */
const CORE: Readonly<Partial<Record<OperatorRole, readonly Partial<Call>[]>>> = {
  controller: [
    { verb: 'create', group: '', resource: 'pods', subresource: '', namespace: TENANT },
    { verb: 'watch', group: GROUP, resource: 'virtualmachines', subresource: '' },
    { verb: 'patch', group: GROUP, resource: 'virtualmachines', subresource: 'status', namespace: TENANT },
    { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: PLATFORM_NAMESPACE },
    { verb: 'update', group: CSR, resource: 'certificatesigningrequests', subresource: 'approval' },
    { verb: 'update', group: CSR, resource: 'certificatesigningrequests', subresource: 'status' },
  ],
  daemon: [
    { verb: 'watch', group: '', resource: 'pods', subresource: '' },
    { verb: 'patch', group: GROUP, resource: 'virtualmachines', subresource: 'status', namespace: TENANT },
    { verb: 'create', group: CSR, resource: 'certificatesigningrequests', subresource: '' },
    { verb: 'get', group: '', resource: 'configmaps', namespace: PLATFORM_NAMESPACE, name: DEFAULT_CA_CONFIGMAP_NAME },
  ],
};

/** Objects this file created (not those that were there before), removed in afterAll, newest first. */
const created: KubeObject[] = [];
let platformObjects: KubeObject[] = [];
let needed: Call[] = [];
let users = new Map<string, OperatorRole>();
let rules: ReturnType<typeof rulesByRole>;

beforeAll(async () => {
  platformObjects = platformRbacObjects(true);
  rules = rulesByRole(platformObjects);
  // The objects the rules name, by group/resource: for these names the name of a call matters to RBAC.
  const named = new Map<string, Set<string>>();
  for (const role of ROLES) {
    for (const rule of rules[role].flatMap((grant) => grant.rules)) {
      for (const key of rule.apiGroups.flatMap((g) => rule.resources.map((r) => `${g}/${r}`))) {
        for (const name of rule.resourceNames ?? []) named.set(key, (named.get(key) ?? new Set()).add(name));
      }
    }
  }
  ({ calls: needed, users } = neededCalls(await readAuditLog(), named));

  // The install's namespace (the daemon and migration files may have just deleted theirs: wait until it is gone).
  await waitFor(
    `namespace ${PLATFORM_NAMESPACE} to finish terminating`,
    async () =>
      (await admin.tryGet('v1', 'Namespace', PLATFORM_NAMESPACE))?.metadata.deletionTimestamp ? undefined : true,
    { timeoutMs: 120_000, intervalMs: 250 },
  );
  if (!(await admin.tryGet('v1', 'Namespace', PLATFORM_NAMESPACE))) {
    const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PLATFORM_NAMESPACE } };
    await admin.create(namespace);
    created.push(namespace);
  }
  for (const object of platformObjects) {
    const { apiVersion, kind, metadata } = object;
    const existed = await admin.tryGet(apiVersion, kind, metadata.name ?? '', metadata.namespace);
    await admin.apply(object, { fieldManager: FIELD_MANAGER, force: true });
    if (!existed) created.push(object);
  }
});

afterAll(async () => {
  for (const { apiVersion, kind, metadata } of [...created].reverse()) {
    await admin.delete(apiVersion, kind, metadata.name ?? '', metadata.namespace, { ignoreNotFound: true });
  }
  admin.close();
});

test('rbac: every call the operator made is allowed by the platform, every forbidden call denied', async () => {
  // The suites really ran as the operator's identities (the whole e2e project must run first, in band).
  const byRole = (role: OperatorRole) => needed.filter((c) => c.role === role);
  const missingCore = (Object.keys(CORE) as OperatorRole[]).flatMap((role) =>
    (CORE[role] ?? [])
      .filter((want) => !byRole(role).some((c) => Object.entries(want).every(([k, v]) => c[k as keyof Call] === v)))
      .map((want) => `${role}: ${JSON.stringify(want)}`),
  );
  if (byRole('controller').length === 0 || byRole('daemon').length === 0 || missingCore.length > 0) {
    const seen = [...users].map(([user, role]) => `${user} (${role})`).join(', ') || 'none';
    throw new Error(
      `the audit log (${info.auditLogPath}) lacks the operator's calls — run the whole e2e project ` +
        `(npm run test:e2e), not this file alone. Users seen: ${seen}; ` +
        `controller calls: ${byRole('controller').length}, daemon calls: ${byRole('daemon').length}; ` +
        `missing core calls:\n  ${missingCore.join('\n  ')}\nrecorded:\n  ${needed.map(describeCall).join('\n  ')}`,
    );
  }
  for (const role of ['controller', 'daemon'] as const) expect(rules[role].length).toBeGreaterThan(0);

  const neededResults = await Promise.all(needed.map(async (call) => ({ call, ...(await allowed(call)) })));
  const refused = neededResults.filter((r) => !r.allowed);
  // Back to the default install for the forbidden calls: without the provider's objects.
  const defaults = new Set(platformRbacObjects().map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`));
  const providerOnly = platformObjects.filter(
    (o) => !defaults.has(`${o.kind}/${o.metadata.namespace}/${o.metadata.name}`),
  );
  expect(providerOnly.map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRole', 'ClusterRoleBinding']);
  for (const { apiVersion, kind, metadata } of providerOnly) {
    await admin.delete(apiVersion, kind, metadata.name ?? '', metadata.namespace, { ignoreNotFound: true });
  }
  // The authorizer's caches follow the deletion shortly after: wait until a provider-only grant is gone.
  const providerGrant: Call = {
    role: 'controller',
    verb: 'create',
    group: GROUP,
    resource: 'virtualmachines',
    subresource: '',
    namespace: TENANT,
    name: '',
  };
  await waitFor(
    'the provider-only grants revoked',
    async () => ((await allowed(providerGrant)).allowed ? undefined : true),
    {
      timeoutMs: 30_000,
      intervalMs: 200,
    },
  );
  const probeResults = await Promise.all(
    FORBIDDEN.map(async (probe) => ({
      probe,
      ...(await allowed({
        role: probe.role,
        verb: probe.verb,
        group: probe.group ?? '',
        resource: probe.resource,
        subresource: probe.subresource ?? '',
        namespace: probe.namespace ?? '',
        name: probe.name ?? '',
      })),
    })),
  );
  const leaked = probeResults.filter((r) => r.allowed);
  const problems = [
    ...refused.map((r) => `needed but DENIED — ${describeCall(r.call)}${r.reason ? ` (${r.reason})` : ''}`),
    ...leaked.map(
      ({ probe: p, reason }) =>
        `forbidden but ALLOWED — ${p.role}: ${p.verb} ${p.resource}${p.subresource ? `/${p.subresource}` : ''}` +
        `${p.group ? `.${p.group}` : ''} in ${p.namespace ?? '(cluster)'}${p.name ? ` name ${p.name}` : ''}: ${p.why}` +
        `${reason ? ` (${reason})` : ''}`,
    ),
  ];
  if (problems.length > 0) {
    throw new Error(`the platform's RBAC does not match what the operator needs:\n  ${problems.join('\n  ')}`);
  }
  expect(refused).toEqual([]);
  expect(leaked).toEqual([]);
  // Distinct reasons: two probes for one reason would count one risk twice.
  expect(new Set(FORBIDDEN.map((p) => `${p.role}: ${p.why}`)).size).toBe(FORBIDDEN.length);

  process.stdout.write(
    `rbac: allowed ${neededResults.length - refused.length}/${needed.length} needed, ` +
      `denied ${probeResults.length - leaked.length}/${FORBIDDEN.length} forbidden\n`,
  );
  const unused = unexercisedGrants();
  if (unused.length > 0) process.stdout.write(`granted, never used in the e2e suites: ${unused.join('; ')}\n`);
});
