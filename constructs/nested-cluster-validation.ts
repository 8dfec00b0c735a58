/**
 * Checks of the nested cluster's props, before anything is rendered: every problem at once, each as `field: Invalid
 * value: <value>: <rule>` with the prop's path, as the platform's props are checked (constructs/platform/).
 */
import { DNS_1035_LABEL, LIMITS, compareQuantities, parseQuantity } from '../api';
import type { Cidr } from './nested-cluster-cidr';
import { overlaps, parseCidr } from './nested-cluster-cidr';
import { CONTROL_PLANE_SUFFIX, MAX_CLUSTER_AND_POOL_NAME, MAX_CLUSTER_NAME } from './nested-cluster-names';
import type {
  CniProps,
  ControlPlaneProps,
  EtcdProps,
  HealthCheckProps,
  MachineSize,
  NestedClusterProps,
  NestedEndpointProps,
  NestedNetworkProps,
  WorkerPoolProps,
} from './nested-cluster-props';
import { NESTED_CLUSTER_DEFAULTS, nodeImagesFor } from './nested-cluster-props';

type Problems = string[];

const show = (v: unknown) => JSON.stringify(v);
const invalid = (problems: Problems, field: string, value: unknown, rule: string) =>
  problems.push(`${field}: Invalid value: ${show(value)}: ${rule}`);
const required = (problems: Problems, field: string, rule: string) =>
  problems.push(`${field}: Required value: ${rule}`);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const IMAGE = /^[^\s\u0000-\u001f]{1,512}$/;
/** `v<major>.<minor>.<patch>`, with an optional semver pre-release and build (what Cluster API's webhooks accept). */
const VERSION = /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
/** The sizes the VirtualMachine accepts (api/virtualmachine.ts). */
const SIZE = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/;
const ABSOLUTE_PATH = /^\/[^\0]{0,510}$/;
const ETCD_ENDPOINT = /^https?:\/\/[^\s/]+(:\d{1,5})?\/?$/;
/** kubeadm's preflight minimum of a control-plane node (ControlPlaneNumCPU, ControlPlaneMem). */
const CONTROL_PLANE_MIN = { cpuCores: 2, memory: '1700Mi' } as const;
/** A ConfigMap holds at most 1 MiB; leave room for its metadata. */
const MAX_MANIFESTS_BYTES = 1000 * 1024;
const MAX_POOLS = 32;

function wholeNumber(problems: Problems, field: string, v: number | undefined, min: number, max: number) {
  if (v !== undefined && (!Number.isInteger(v) || v < min || v > max))
    invalid(problems, field, v, `must be a whole number from ${min} to ${max}`);
}

function dns1035(problems: Problems, field: string, v: string) {
  if (!DNS_1035_LABEL.test(v))
    invalid(problems, field, v, "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter");
}

function image(problems: Problems, field: string, v: unknown) {
  if (typeof v !== 'string' || !IMAGE.test(v))
    invalid(problems, field, v, 'must be an image reference (no spaces, at most 512 characters)');
}

function size(problems: Problems, field: string, s: MachineSize | undefined, controlPlane: boolean) {
  const d = NESTED_CLUSTER_DEFAULTS.size;
  wholeNumber(problems, `${field}.cpuCores`, s?.cpuCores, 1, LIMITS.maxVcpus);
  const memory = s?.memory ?? d.memory;
  if (!SIZE.test(memory)) invalid(problems, `${field}.memory`, memory, 'must be a size such as 4Gi');
  const rootfs = s?.rootfsSize ?? d.rootfsSize;
  if (!SIZE.test(rootfs)) invalid(problems, `${field}.rootfsSize`, rootfs, 'must be a size such as 8Gi');
  else if (compareQuantities(parseQuantity(rootfs), parseQuantity(LIMITS.maxRootfsSize)) > 0)
    invalid(problems, `${field}.rootfsSize`, rootfs, `must be at most ${LIMITS.maxRootfsSize}`);
  if (!controlPlane) return;
  const cores = s?.cpuCores ?? d.cpuCores;
  if (Number.isInteger(cores) && cores >= 1 && cores < CONTROL_PLANE_MIN.cpuCores)
    invalid(
      problems,
      `${field}.cpuCores`,
      cores,
      `must be at least 2 on the control plane (kubeadm's preflight check)`,
    );
  if (SIZE.test(memory) && compareQuantities(parseQuantity(memory), parseQuantity(CONTROL_PLANE_MIN.memory)) < 0)
    invalid(
      problems,
      `${field}.memory`,
      memory,
      `must be at least 1700Mi on the control plane (kubeadm's preflight check)`,
    );
}

function metadata(problems: Problems, p: NestedClusterProps, name: string) {
  const at = p.metadata?.name !== undefined ? 'metadata.name' : 'name';
  dns1035(problems, at, name);
  if (name.length > MAX_CLUSTER_NAME)
    invalid(
      problems,
      at,
      name,
      `must be at most ${MAX_CLUSTER_NAME} characters (the control plane's template, <name>-control-plane-<hash>, must be a DNS label)`,
    );
  const namespace = p.metadata?.namespace;
  if (namespace !== undefined && !DNS_LABEL.test(namespace))
    invalid(problems, 'metadata.namespace', namespace, 'must be a DNS label (a-z, 0-9, -; at most 63)');
  for (const [k, v] of Object.entries(p.metadata?.labels ?? {})) {
    if (!LABEL_KEY.test(k)) invalid(problems, `metadata.labels[${k}]`, k, 'must be a label key');
    if (typeof v !== 'string' || !LABEL_VALUE.test(v))
      invalid(problems, `metadata.labels[${k}]`, v, 'must be a label value');
  }
}

function versionAndImages(problems: Problems, p: NestedClusterProps) {
  const version = p.kubernetesVersion;
  if (typeof version !== 'string' || !VERSION.test(version)) {
    invalid(problems, 'kubernetesVersion', version, 'must be a version such as v1.34.2 (a v, then a semantic version)');
    return;
  }
  if (p.images === undefined || p.images === null) {
    required(problems, 'images', `the node images of ${version} are needed`);
    return;
  }
  const images = nodeImagesFor(p.images, version);
  const at = typeof p.images === 'function' ? `images(${show(version)})` : `images[${version}]`;
  if (!images) {
    const known =
      typeof p.images === 'function' ? '' : ` (images are given for: ${Object.keys(p.images).join(', ') || 'none'})`;
    invalid(problems, 'images', version, `has no node images for kubernetesVersion${known}`);
    return;
  }
  image(problems, `${at}.kernelImage`, images.kernelImage);
  image(problems, `${at}.rootfsImage`, images.rootfsImage);
  const cmdline = images.kernelCmdline;
  if (cmdline !== undefined && (cmdline.trim() === '' || cmdline.length > 2048))
    invalid(problems, `${at}.kernelCmdline`, cmdline, 'must be a kernel command line of 1 to 2048 characters');
}

function controlPlane(problems: Problems, cp: ControlPlaneProps | undefined, etcd: EtcdProps | undefined) {
  const replicas = cp?.replicas ?? NESTED_CLUSTER_DEFAULTS.controlPlaneReplicas;
  const external = etcd?.external;
  wholeNumber(problems, 'controlPlane.replicas', cp?.replicas, 1, 7);
  if (!external && Number.isInteger(replicas) && replicas >= 1 && replicas <= 7 && replicas % 2 === 0)
    invalid(
      problems,
      'controlPlane.replicas',
      replicas,
      'must be odd with stacked etcd (its members need a majority); use an external etcd for an even count',
    );
  size(problems, 'controlPlane.size', cp?.size, true);
  if (!external) return;
  const at = 'etcd.external';
  const endpoints = external.endpoints ?? [];
  if (endpoints.length < 1 || endpoints.length > 50)
    invalid(problems, `${at}.endpoints`, endpoints, 'must list 1 to 50 etcd client URLs');
  endpoints.forEach((e, i) => {
    if (typeof e !== 'string' || !ETCD_ENDPOINT.test(e))
      invalid(problems, `${at}.endpoints[${i}]`, e, 'must be an etcd client URL such as https://etcd-0.etcd:2379');
  });
  for (const key of ['caFile', 'certFile', 'keyFile'] as const) {
    const v = external[key];
    if (v !== undefined && !ABSOLUTE_PATH.test(v))
      invalid(problems, `${at}.${key}`, v, 'must be an absolute path on the control-plane nodes');
  }
}

function workers(problems: Problems, cluster: string, pools: readonly WorkerPoolProps[] | undefined) {
  if (!pools) return;
  if (pools.length > MAX_POOLS) invalid(problems, 'workers', pools.length, `must hold at most ${MAX_POOLS} pools`);
  const seen = new Set<string>();
  pools.forEach((pool, i) => {
    const at = `workers[${i}]`;
    const name = pool.name;
    if (typeof name !== 'string') {
      required(problems, `${at}.name`, 'each pool needs a name');
      return;
    }
    dns1035(problems, `${at}.name`, name);
    if (name === CONTROL_PLANE_SUFFIX)
      invalid(problems, `${at}.name`, name, "is the control plane's: choose another pool name");
    if (seen.has(name)) problems.push(`${at}.name: Duplicate value: ${show(name)}: pool names must be unique`);
    seen.add(name);
    if (cluster.length + name.length > MAX_CLUSTER_AND_POOL_NAME)
      invalid(
        problems,
        `${at}.name`,
        name,
        `must have at most ${Math.max(0, MAX_CLUSTER_AND_POOL_NAME - cluster.length)} characters with this cluster name ` +
          `(together at most ${MAX_CLUSTER_AND_POOL_NAME}: the machines, <cluster>-<pool>-xxxxx-xxxxx, must be DNS labels)`,
      );
    wholeNumber(problems, `${at}.replicas`, pool.replicas, 0, 100);
    size(problems, `${at}.size`, pool.size, false);
  });
}

function cidr(problems: Problems, field: string, text: unknown): Cidr | undefined {
  if (typeof text !== 'string') {
    invalid(problems, field, text, 'must be a CIDR such as 10.0.0.0/16 or fd00::/48');
    return undefined;
  }
  const parsed = parseCidr(text);
  if (typeof parsed === 'string') {
    invalid(problems, field, text, parsed);
    return undefined;
  }
  return parsed;
}

function prefixWithin(problems: Problems, field: string, c: Cidr, v4: [number, number], v6: [number, number]) {
  const [min, max] = c.family === 4 ? v4 : v6;
  if (c.prefix < min || c.prefix > max)
    invalid(problems, field, c.text, `must have a prefix length from /${min} to /${max} (IPv${c.family})`);
}

function network(problems: Problems, n: NestedNetworkProps | undefined) {
  const d = NESTED_CLUSTER_DEFAULTS;
  const pods = cidr(problems, 'network.podCidr', n?.podCidr ?? d.podCidr);
  const services = cidr(problems, 'network.serviceCidr', n?.serviceCidr ?? d.serviceCidr);
  // The controller manager gives each node a /24 (IPv4) or /64 (IPv6) of the pod CIDR, at most 16 bits below it.
  if (pods) prefixWithin(problems, 'network.podCidr', pods, [8, 24], [48, 64]);
  // kubeadm allows at most 20 bits of Service addresses; CoreDNS takes the tenth.
  if (services) prefixWithin(problems, 'network.serviceCidr', services, [12, 28], [108, 124]);
  if (pods && services) {
    if (pods.family !== services.family)
      invalid(
        problems,
        'network.serviceCidr',
        services.text,
        `must be of the pod CIDR's IP family (IPv${pods.family})`,
      );
    else if (overlaps(pods, services))
      invalid(problems, 'network.serviceCidr', services.text, `must not overlap the pod CIDR ${pods.text}`);
  }
  const domain = n?.serviceDomain ?? d.serviceDomain;
  if (domain.length > 253 || !DNS_SUBDOMAIN.test(domain))
    invalid(problems, 'network.serviceDomain', domain, 'must be a DNS subdomain such as cluster.local');
  (n?.hostCidrs ?? []).forEach((text, i) => {
    const host = cidr(problems, `network.hostCidrs[${i}]`, text);
    if (!host) return;
    if (pods && overlaps(pods, host))
      invalid(problems, 'network.podCidr', pods.text, `must not overlap the management cluster's ${host.text}`);
    if (services && overlaps(services, host))
      invalid(problems, 'network.serviceCidr', services.text, `must not overlap the management cluster's ${host.text}`);
  });
}

/**
 * What the KubevisorCluster cannot say: a port without a host. The endpoint's values (service type, load balancer
 * class, host, port) are the CRD's to check (api/infrastructure.ts); the renderer validates the KubevisorCluster
 * against it, so they are reported at synth with the object's field path.
 */
function endpoint(problems: Problems, e: NestedEndpointProps | undefined) {
  if (!e) return;
  if (e.port !== undefined && e.host === undefined)
    invalid(problems, 'endpoint.port', e.port, 'applies only with endpoint.host (the Service always listens on 6443)');
}

function healthChecks(problems: Problems, h: HealthCheckProps | false | undefined) {
  if (!h) return;
  wholeNumber(problems, 'healthChecks.unhealthySeconds', h.unhealthySeconds, 1, 86_400);
  const startup = h.nodeStartupSeconds;
  if (startup !== undefined && startup !== 0)
    wholeNumber(problems, 'healthChecks.nodeStartupSeconds', startup, 30, 86_400);
}

function cni(problems: Problems, c: CniProps | undefined) {
  if (!c) return;
  const configMaps = c.configMaps ?? [];
  const secrets = c.secrets ?? [];
  if (c.manifests === undefined && !configMaps.length && !secrets.length)
    required(problems, 'cni', 'give the manifests, or name ConfigMaps or Secrets holding them');
  if (c.manifests !== undefined) {
    const bytes = Buffer.byteLength(c.manifests, 'utf8');
    if (c.manifests.trim() === '') invalid(problems, 'cni.manifests', '', 'must hold the CNI manifests');
    else if (bytes > MAX_MANIFESTS_BYTES)
      invalid(
        problems,
        'cni.manifests',
        `${bytes} bytes`,
        'must be at most 1000 KiB (a ConfigMap holds at most 1 MiB)',
      );
  }
  for (const [field, names] of [
    ['cni.configMaps', configMaps],
    ['cni.secrets', secrets],
  ] as const) {
    names.forEach((n, i) => {
      if (typeof n !== 'string' || n.length > 253 || !DNS_SUBDOMAIN.test(n))
        invalid(problems, `${field}[${i}]`, n, 'must be the name of an object (a DNS subdomain)');
    });
  }
  if (configMaps.length + secrets.length + (c.manifests !== undefined ? 1 : 0) > 100)
    invalid(problems, 'cni', configMaps.length + secrets.length, 'may apply at most 100 ConfigMaps and Secrets');
  if (c.strategy !== undefined && c.strategy !== 'ApplyOnce' && c.strategy !== 'Reconcile')
    invalid(problems, 'cni.strategy', c.strategy, 'must be ApplyOnce or Reconcile');
}

/** Every problem of the props of the nested cluster `name`, each naming the prop's path. */
export function nestedClusterPropsProblems(name: string, p: NestedClusterProps): string[] {
  const problems: Problems = [];
  metadata(problems, p, name);
  versionAndImages(problems, p);
  controlPlane(problems, p.controlPlane, p.etcd);
  workers(problems, name, p.workers);
  network(problems, p.network);
  endpoint(problems, p.endpoint);
  healthChecks(problems, p.healthChecks);
  cni(problems, p.cni);
  return problems;
}
