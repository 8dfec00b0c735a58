/**
 * The kubevisor platform as a cdk8s construct built with cdk8s-plus-27: the CRDs, the controller Deployment, the node
 * daemon DaemonSet, their ServiceAccounts and least-privilege RBAC (operator/rbac.ts). No webhook and no
 * cert-manager: nothing a failed install leaves behind can block the API server.
 */
import { ApiObject, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { KUBEVISOR_VERSION, KVM_NODE_LABEL } from '../../api';
import {
  CLUSTER_API_AGGREGATE_LABEL,
  CLUSTER_API_CONTROLLER_RULES,
  CLUSTER_API_MANAGER_RULES,
  CONTROLLER_NAMESPACED_RULES,
  CONTROLLER_RULES,
  DAEMON_CLUSTER_RULES,
  DAEMON_NAMESPACED_RULES,
  SIGNER_CLUSTER_RULES,
  SIGNER_NAMESPACED_RULES,
} from '../platform/rbac-rules';
import {
  CONTROLLER_SERVICE_ACCOUNT,
  DAEMON_SERVICE_ACCOUNT,
  PLATFORM_NAMESPACE,
  serviceAccountUser,
} from '../platform/names';
import type { ContainerResources, KubevisorPlatformProps, Toleration } from '../platform/props';
import { DEFAULT_IMAGE } from '../platform/props';
import { platformPropsProblems } from '../platform/validate-props';
import { KubevisorValidationError } from '../validation';
import { Crds } from './crds';
import { clusterGrant, namespacedGrant } from './rbac';

/** Ports of the operator's /metrics, /healthz and /readyz (the processes' defaults). */
export const CONTROLLER_METRICS_PORT = 8080;
export const DAEMON_METRICS_PORT = 8081;

/** The recommended labels of one component, also its pod selector. */
export const componentLabels = (component: string) => ({
  'app.kubernetes.io/name': 'kubevisor',
  'app.kubernetes.io/component': component,
});

/** cdk8s-plus resources from the props' whole numbers. */
export function containerResources(r: ContainerResources): kplus.ContainerResources {
  const cpu = {
    ...(r.cpuRequestMillis !== undefined ? { request: kplus.Cpu.millis(r.cpuRequestMillis) } : {}),
    ...(r.cpuLimitMillis !== undefined ? { limit: kplus.Cpu.millis(r.cpuLimitMillis) } : {}),
  };
  const memory = {
    ...(r.memoryRequestMiB !== undefined ? { request: Size.mebibytes(r.memoryRequestMiB) } : {}),
    ...(r.memoryLimitMiB !== undefined ? { limit: Size.mebibytes(r.memoryLimitMiB) } : {}),
  };
  return { cpu, memory };
}

/** A workload's pod spec fields cdk8s-plus-27 has no prop for, set by JSON patch on the synthesized object. */
export function podSpecPatch(workload: kplus.Deployment | kplus.DaemonSet, fields: Record<string, unknown>): void {
  const object = ApiObject.of(workload);
  for (const [k, v] of Object.entries(fields)) {
    if (v !== undefined) object.addJsonPatch(JsonPatch.add(`/spec/template/spec/${k}`, v));
  }
  // cdk8s-plus labels every pod with its construct path; the path differs between a user's chart and the in-memory one
  // the Pulumi components render, and the objects must be the same.
  object.addJsonPatch(JsonPatch.remove('/spec/template/metadata/labels/cdk8s.io~1metadata.addr'));
}

/** The tolerations as the pod takes them; by default every taint (node agents run on every node). */
export const podTolerations = (list: readonly Toleration[] | undefined) =>
  // The operator explicitly: Kubernetes defaults it to Equal, the props to Exists when no value is given.
  (list ?? [{}]).map((t) => ({ ...t, operator: t.operator ?? (t.value === undefined ? 'Exists' : 'Equal') }));

/** Turns the props' problems into one error, before anything is created. */
export function assertProps(construct: string, problems: string[]): void {
  if (problems.length) throw new KubevisorValidationError(problems.map((p) => `[${construct}] ${p}`));
}

/**
 * kubevisor's operator and API: install it once per cluster, before any VirtualMachine.
 *
 * Creates the namespace (Pod Security `privileged`: the node daemon needs host namespaces; VMs belong in other
 * namespaces, which `baseline` suffices for), the CRDs, ServiceAccounts `kubevisor-controller` and `kubevisor-daemon`
 * with exactly the rules their code calls (operator/rbac.ts), the controller Deployment (leader election, probes on
 * /healthz and /readyz, a PodDisruptionBudget) and the node daemon DaemonSet (host network and PID namespace,
 * privileged: it prepares VM pods' networks and mounts from outside, serves the KVM and TUN device plugins).
 * Nodes that may host VMs also need {@link NodeSetup}.
 *
 * @see https://github.com/kubevisor/kubevisor/blob/main/README.md
 */
export class KubevisorPlatform extends Construct {
  /** The operator's namespace. */
  public readonly namespace: string;
  /** The operator image. */
  public readonly image: string;
  /** The controller's ServiceAccount. */
  public readonly controllerServiceAccount: kplus.ServiceAccount;
  /** The node daemon's ServiceAccount. */
  public readonly daemonServiceAccount: kplus.ServiceAccount;
  /** The controller Deployment. */
  public readonly controller: kplus.Deployment;
  /** The node daemon DaemonSet. */
  public readonly daemon: kplus.DaemonSet;

  constructor(scope: Construct, id: string, props: KubevisorPlatformProps = {}) {
    super(scope, id);
    assertProps(this.node.path, platformPropsProblems(props));
    const ns = props.namespace ?? PLATFORM_NAMESPACE;
    this.namespace = ns;
    this.image = props.image ?? DEFAULT_IMAGE;
    const pullPolicy = props.imagePullPolicy ?? 'IfNotPresent';

    new kplus.Namespace(this, 'namespace', {
      metadata: {
        name: ns,
        labels: {
          ...componentLabels('platform'),
          'pod-security.kubernetes.io/enforce': 'privileged',
        },
      },
    });
    new Crds(this, 'crds');

    // --- controller -----------------------------------------------------------------------------------------
    const controllerSa = new kplus.ServiceAccount(this, 'controller-sa', {
      metadata: { name: CONTROLLER_SERVICE_ACCOUNT, namespace: ns },
      automountToken: true,
    });
    this.controllerServiceAccount = controllerSa;
    clusterGrant(
      this,
      'controller-role',
      'kubevisor-controller',
      [...CONTROLLER_RULES, ...SIGNER_CLUSTER_RULES],
      controllerSa,
    );
    namespacedGrant(
      this,
      'controller-ns-role',
      'kubevisor-controller',
      ns,
      [...CONTROLLER_NAMESPACED_RULES, ...SIGNER_NAMESPACED_RULES],
      controllerSa,
    );
    if (props.clusterApi) {
      // A role of its own: the install without Cluster API grants none of it.
      clusterGrant(
        this,
        'controller-cluster-api-role',
        'kubevisor-controller-cluster-api',
        CLUSTER_API_CONTROLLER_RULES,
        controllerSa,
      );
      // No binding: Cluster API's manager role aggregates every ClusterRole with this label.
      new kplus.k8s.KubeClusterRole(this, 'cluster-api-manager-role', {
        metadata: { name: 'kubevisor-cluster-api-manager', labels: { [CLUSTER_API_AGGREGATE_LABEL]: 'true' } },
        rules: CLUSTER_API_MANAGER_RULES.map((r) => ({
          apiGroups: [...r.apiGroups],
          resources: [...r.resources],
          verbs: [...r.verbs],
        })),
      });
    }

    const c = props.controller ?? {};
    const controllerLabels = componentLabels('controller');
    const args = [
      'controller',
      '--image', this.image,
      '--leader-elect',
      '--lease-namespace', ns,
      '--pki-namespace', ns,
      '--daemon-user', serviceAccountUser(DAEMON_SERVICE_ACCOUNT, ns),
      '--metrics-port', String(CONTROLLER_METRICS_PORT),
      '--node-loss-grace', String(c.nodeLossGraceSeconds ?? 60),
      ...(c.watchNamespace ? ['--namespace', c.watchNamespace] : []),
      ...(props.clusterApi ? ['--cluster-api'] : []),
      ...(typeof props.clusterApi === 'object' && props.clusterApi.loadBalancers
        ? ['--cluster-api-load-balancers']
        : []),
    ]; // prettier-ignore
    this.controller = new kplus.Deployment(this, 'controller', {
      metadata: { name: 'kubevisor-controller', namespace: ns, labels: controllerLabels },
      replicas: c.replicas ?? 2,
      select: false,
      podMetadata: { labels: { ...controllerLabels, 'app.kubernetes.io/version': KUBEVISOR_VERSION } },
      serviceAccount: controllerSa,
      automountServiceAccountToken: true,
      securityContext: { ensureNonRoot: true, user: 65532, group: 65532 },
      containers: [
        {
          name: 'controller',
          image: this.image,
          imagePullPolicy: kplusPullPolicy(pullPolicy),
          args,
          ports: [{ name: 'metrics', number: CONTROLLER_METRICS_PORT }],
          liveness: kplus.Probe.fromHttpGet('/healthz', {
            port: CONTROLLER_METRICS_PORT,
            periodSeconds: Duration.seconds(10),
          }),
          readiness: kplus.Probe.fromHttpGet('/readyz', {
            port: CONTROLLER_METRICS_PORT,
            periodSeconds: Duration.seconds(5),
          }),
          resources: containerResources({
            cpuRequestMillis: 100,
            memoryRequestMiB: 256,
            memoryLimitMiB: 512,
            ...c.resources,
          }),
          securityContext: {
            ensureNonRoot: true,
            user: 65532,
            group: 65532,
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            privileged: false,
          },
        },
      ],
    });
    this.controller.select(kplus.LabelSelector.of({ labels: controllerLabels }));
    podSpecPatch(this.controller, {
      priorityClassName: c.priorityClassName ?? 'system-cluster-critical',
      // Pod Security `restricted` for the controller: it needs no privilege at all.
      'securityContext/seccompProfile': { type: 'RuntimeDefault' },
      'containers/0/securityContext/capabilities': { drop: ['ALL'] },
      ...(c.nodeSelector ? { nodeSelector: { ...c.nodeSelector } } : {}),
      ...(c.tolerations ? { tolerations: podTolerations(c.tolerations) } : {}),
    });
    new kplus.k8s.KubePodDisruptionBudget(this, 'controller-pdb', {
      metadata: { name: 'kubevisor-controller', namespace: ns, labels: controllerLabels },
      // One at a time: a drain never takes the standby and the leader together, and a single replica can still move.
      spec: { maxUnavailable: kplus.k8s.IntOrString.fromNumber(1), selector: { matchLabels: controllerLabels } },
    });

    // --- node daemon ----------------------------------------------------------------------------------------
    const d = props.daemon ?? {};
    const daemonSa = new kplus.ServiceAccount(this, 'daemon-sa', {
      metadata: { name: DAEMON_SERVICE_ACCOUNT, namespace: ns },
      automountToken: true,
    });
    this.daemonServiceAccount = daemonSa;
    clusterGrant(this, 'daemon-role', 'kubevisor-daemon', DAEMON_CLUSTER_RULES, daemonSa);
    namespacedGrant(this, 'daemon-ns-role', 'kubevisor-daemon', ns, DAEMON_NAMESPACED_RULES, daemonSa);
    const kubeletRoot = d.kubeletRootDir ?? '/var/lib/kubelet';
    const daemonLabels = componentLabels('daemon');
    // Bidirectional: the daemon's bind mounts (hot-plugged volumes) must reach the VM pods' containers.
    const kubeletDir = kplus.Volume.fromHostPath(this, 'kubelet-dir', 'kubelet', {
      path: kubeletRoot,
      type: kplus.HostPathVolumeType.DIRECTORY,
    });
    const podLogs = kplus.Volume.fromHostPath(this, 'pod-logs', 'pod-logs', {
      path: '/var/log/pods',
      type: kplus.HostPathVolumeType.DIRECTORY,
    });
    const tmp = kplus.Volume.fromEmptyDir(this, 'daemon-tmp', 'tmp', { sizeLimit: Size.mebibytes(64) });
    this.daemon = new kplus.DaemonSet(this, 'daemon', {
      metadata: { name: 'kubevisor-daemon', namespace: ns, labels: daemonLabels },
      select: false,
      podMetadata: { labels: { ...daemonLabels, 'app.kubernetes.io/version': KUBEVISOR_VERSION } },
      serviceAccount: daemonSa,
      automountServiceAccountToken: true,
      hostNetwork: true,
      // Guests keep running without the daemon; a long grace only delays its restart.
      terminationGracePeriod: Duration.seconds(30),
      securityContext: { ensureNonRoot: false, user: 0, group: 0 },
      containers: [
        {
          name: 'daemon',
          image: this.image,
          imagePullPolicy: kplusPullPolicy(pullPolicy),
          args: [
            'daemon',
            '--kubelet-root', kubeletRoot,
            '--device-plugin-dir', `${kubeletRoot}/device-plugins`,
            '--pki-namespace', ns,
            '--metrics-port', String(DAEMON_METRICS_PORT),
          ], // prettier-ignore
          envVariables: {
            NODE_NAME: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.NODE_NAME),
            NODE_IP: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.NODE_IP),
          },
          ports: [{ name: 'metrics', number: DAEMON_METRICS_PORT }],
          liveness: kplus.Probe.fromHttpGet('/healthz', {
            port: DAEMON_METRICS_PORT,
            periodSeconds: Duration.seconds(10),
          }),
          readiness: kplus.Probe.fromHttpGet('/readyz', {
            port: DAEMON_METRICS_PORT,
            periodSeconds: Duration.seconds(5),
          }),
          resources: containerResources({
            cpuRequestMillis: 100,
            memoryRequestMiB: 128,
            memoryLimitMiB: 512,
            ...d.resources,
          }),
          // Privileged: it enters VM pods' network namespaces (nftables, tap, bridge), bind-mounts hot-plugged volumes
          // with Bidirectional propagation and reads their Cloud Hypervisor sockets; none of it is possible with fewer
          // capabilities through a container runtime.
          securityContext: {
            ensureNonRoot: false,
            user: 0,
            group: 0,
            privileged: true,
            allowPrivilegeEscalation: true,
            readOnlyRootFilesystem: true,
          },
          volumeMounts: [
            { path: kubeletRoot, volume: kubeletDir, propagation: kplus.MountPropagation.BIDIRECTIONAL },
            { path: '/var/log/pods', volume: podLogs, readOnly: true },
            { path: '/tmp', volume: tmp },
          ],
        },
      ],
    });
    this.daemon.select(kplus.LabelSelector.of({ labels: daemonLabels }));
    podSpecPatch(this.daemon, {
      // The VM pods' processes (Cloud Hypervisor, the pause process that holds the netns) by PID. Spelled as the
      // cdk8s L1 names it (patches apply before it maps its props to the Kubernetes names).
      hostPid: true,
      dnsPolicy: 'ClusterFirstWithHostNet',
      // Where VM pods may run: the nodes NodeSetup found ready for VMs (VM pods select the same label).
      nodeSelector: { [KVM_NODE_LABEL]: 'true' },
      priorityClassName: d.priorityClassName ?? 'system-node-critical',
      tolerations: podTolerations(d.tolerations),
    });
  }
}

/** The props' pull policy as cdk8s-plus names it. */
export function kplusPullPolicy(p: 'Always' | 'IfNotPresent' | 'Never'): kplus.ImagePullPolicy {
  return p === 'Always'
    ? kplus.ImagePullPolicy.ALWAYS
    : p === 'Never'
      ? kplus.ImagePullPolicy.NEVER
      : kplus.ImagePullPolicy.IF_NOT_PRESENT;
}
