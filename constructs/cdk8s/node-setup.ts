/**
 * Node setup as a cdk8s construct: a DaemonSet running `kubevisor node-setup` on every node that may host VMs, its
 * ServiceAccount, and an admission policy that confines its Node writes to its own node and kubevisor's labels.
 */
import { ApiObject, Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { KUBEVISOR_VERSION } from '../../api';
import { NODE_SETUP_RULES } from '../platform/rbac-rules';
import { NODE_SETUP_SERVICE_ACCOUNT, PLATFORM_NAMESPACE, serviceAccountUser } from '../platform/names';
import type { NodeSetupProps } from '../platform/props';
import { DEFAULT_IMAGE } from '../platform/props';
import { nodeSetupPropsProblems } from '../platform/validate-props';
import {
  assertProps,
  componentLabels,
  containerResources,
  kplusPullPolicy,
  podSpecPatch,
  podTolerations,
} from './platform';
import { clusterGrant } from './rbac';

/** Where the node-setup container sees the host's /dev. */
const HOST_DEV = '/host/dev';

/** The prefix of every label and annotation node setup may write on a Node. */
const OWN_PREFIX = 'kubevisor.io/';

/**
 * CEL: `field` (labels or annotations) changed only in keys under kubevisor.io/. Keys are at most 317 characters and
 * a node has few labels, so the cost stays far below the API server's budget.
 */
const onlyOwnKeys = (field: 'labels' | 'annotations') => {
  const now = `(has(object.metadata.${field}) ? object.metadata.${field} : {})`;
  const before = `(has(oldObject.metadata.${field}) ? oldObject.metadata.${field} : {})`;
  return (
    `${now}.all(k, k.startsWith('${OWN_PREFIX}') || (k in ${before} && ${before}[k] == ${now}[k])) && ` +
    `${before}.all(k, k.startsWith('${OWN_PREFIX}') || k in ${now})`
  );
};

/** CEL: a metadata list is as it was (absent stays absent). */
const unchanged = (field: 'ownerReferences' | 'finalizers') =>
  `has(object.metadata.${field}) == has(oldObject.metadata.${field}) && ` +
  `(!has(object.metadata.${field}) || object.metadata.${field} == oldObject.metadata.${field})`;

/**
 * What each node needs to host VMs, checked and prepared by a DaemonSet (`kubevisor node-setup`, privileged):
 * `/dev/kvm` and `/dev/net/tun` present (loading kvm, kvm_intel or kvm_amd, tun and vhost_net when allowed),
 * hugepages reserved as the props say, and the node labelled — `kubevisor.io/kvm: "true"` only when KVM and TUN work
 * (every VM pod and the node daemon select it), the CPU vendor, model and a hash of its feature flags for migration
 * compatibility — with what it found in the `kubevisor.io/node-setup` annotation. It checks again every
 * `recheckSeconds`.
 *
 * Its ServiceAccount may get and patch Nodes; a ValidatingAdmissionPolicy (in-process, no webhook) lets it change only
 * the Node its pod runs on (the token's bound node) and only labels and annotations under `kubevisor.io/`.
 *
 * @see https://github.com/kubevisor/kubevisor/blob/main/README.md
 */
export class NodeSetup extends Construct {
  /** The node-setup DaemonSet. */
  public readonly daemonSet: kplus.DaemonSet;
  /** Its ServiceAccount. */
  public readonly serviceAccount: kplus.ServiceAccount;

  constructor(scope: Construct, id: string, props: NodeSetupProps = {}) {
    super(scope, id);
    assertProps(this.node.path, nodeSetupPropsProblems(props));
    const ns = props.namespace ?? PLATFORM_NAMESPACE;
    const image = props.image ?? DEFAULT_IMAGE;
    const loadModules = props.loadModules ?? true;
    const labels = componentLabels('node-setup');

    this.serviceAccount = new kplus.ServiceAccount(this, 'sa', {
      metadata: { name: NODE_SETUP_SERVICE_ACCOUNT, namespace: ns },
      automountToken: true,
    });
    clusterGrant(this, 'role', 'kubevisor-node-setup', NODE_SETUP_RULES, this.serviceAccount);

    const user = serviceAccountUser(NODE_SETUP_SERVICE_ACCOUNT, ns);
    const policyName = 'kubevisor-node-setup';
    new ApiObject(this, 'policy', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: policyName, labels },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['nodes'] }],
        },
        // Only node setup's own requests: the policy never stands in anyone else's way.
        matchConditions: [{ name: 'node-setup', expression: `request.userInfo.username == '${user}'` }],
        validations: [
          {
            expression:
              "has(request.userInfo.extra) && 'authentication.kubernetes.io/node-name' in request.userInfo.extra && " +
              "request.userInfo.extra['authentication.kubernetes.io/node-name'].exists(n, n == object.metadata.name)",
            message: 'node setup may change only the node its pod runs on',
          },
          { expression: 'object.spec == oldObject.spec', message: 'node setup may not change a node spec' },
          // An owner reference to a missing object makes the garbage collector delete the Node; a finalizer blocks
          // its deletion.
          { expression: unchanged('ownerReferences'), message: 'node setup may not change owner references' },
          { expression: unchanged('finalizers'), message: 'node setup may not change finalizers' },
          { expression: onlyOwnKeys('labels'), message: `node setup may change only labels under ${OWN_PREFIX}` },
          {
            expression: onlyOwnKeys('annotations'),
            message: `node setup may change only annotations under ${OWN_PREFIX}`,
          },
        ],
      },
    });
    new ApiObject(this, 'policy-binding', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: policyName, labels },
      spec: { policyName, validationActions: ['Deny'] },
    });

    const args = [
      'node-setup',
      loadModules ? '--load-modules' : '--no-load-modules',
      '--dev-root', HOST_DEV,
      '--recheck', String(props.recheckSeconds ?? 300),
      ...(props.hugepages2Mi !== undefined ? ['--hugepages-2mi', String(props.hugepages2Mi)] : []),
      ...(props.hugepages1Gi !== undefined ? ['--hugepages-1gi', String(props.hugepages1Gi)] : []),
    ]; // prettier-ignore
    // The host's /dev, live: a privileged container's own /dev is a copy made at its start, so device nodes a module
    // load creates later would never appear there.
    const hostDev = kplus.Volume.fromHostPath(this, 'host-dev', 'host-dev', {
      path: '/dev',
      type: kplus.HostPathVolumeType.DIRECTORY,
    });
    const modules = kplus.Volume.fromHostPath(this, 'modules', 'modules', {
      path: '/lib/modules',
      type: kplus.HostPathVolumeType.DIRECTORY,
    });
    this.daemonSet = new kplus.DaemonSet(this, 'daemon-set', {
      metadata: { name: 'kubevisor-node-setup', namespace: ns, labels },
      select: false,
      podMetadata: { labels: { ...labels, 'app.kubernetes.io/version': KUBEVISOR_VERSION } },
      serviceAccount: this.serviceAccount,
      automountServiceAccountToken: true,
      terminationGracePeriod: Duration.seconds(5),
      securityContext: { ensureNonRoot: false, user: 0, group: 0 },
      containers: [
        {
          name: 'node-setup',
          image,
          imagePullPolicy: kplusPullPolicy(props.imagePullPolicy ?? 'IfNotPresent'),
          args,
          envVariables: { NODE_NAME: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.NODE_NAME) },
          resources: containerResources({ cpuRequestMillis: 10, memoryRequestMiB: 64, memoryLimitMiB: 256 }),
          // Privileged: loading kernel modules and writing the host's hugepages counts in /sys need it.
          securityContext: {
            ensureNonRoot: false,
            user: 0,
            group: 0,
            privileged: true,
            allowPrivilegeEscalation: true,
            readOnlyRootFilesystem: true,
          },
          volumeMounts: [
            { path: HOST_DEV, volume: hostDev, readOnly: true },
            ...(loadModules ? [{ path: '/lib/modules', volume: modules, readOnly: true }] : []),
          ],
        },
      ],
    });
    this.daemonSet.select(kplus.LabelSelector.of({ labels }));
    podSpecPatch(this.daemonSet, {
      priorityClassName: 'system-node-critical',
      tolerations: podTolerations(props.tolerations),
      ...(props.nodeSelector ? { nodeSelector: { ...props.nodeSelector } } : {}),
    });
  }
}
