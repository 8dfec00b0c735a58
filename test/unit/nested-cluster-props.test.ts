/**
 * Bad props of a nested cluster (constructs/nested-cluster-validation.ts): each case breaks one distinct rule and is
 * refused at synth with the prop's path and the rule; several problems are reported at once.
 */
import type { NestedClusterProps } from '../../constructs';
import { KubevisorValidationError, renderNestedCluster } from '../../constructs';

const images = { 'v1.34.2': { kernelImage: 'example.com/kernel:6.12', rootfsImage: 'example.com/rootfs:v1.34.2' } };
const good: NestedClusterProps = { kubernetesVersion: 'v1.34.2', images, workers: [{ name: 'md-0', replicas: 2 }] };

/** The problems of `props` (cluster `name`), without the `[path] ` prefix. */
function problems(props: NestedClusterProps, name = 'tenant'): string[] {
  try {
    renderNestedCluster(name, props);
    return [];
  } catch (e) {
    if (!(e instanceof KubevisorValidationError)) throw e;
    return e.problems.map((p) => p.replace(/^\[[^\]]*\] /, ''));
  }
}

test('the good props render', () => {
  expect(problems(good)).toEqual([]);
});

// [rule, props, cluster name, expected problem (field path: type: value: rule)]
const cases: [string, NestedClusterProps, string, RegExp][] = [
  ['name is a DNS-1035 label', good, '1tenant', /^name: Invalid value: "1tenant": must be a DNS-1035 label/],
  ['metadata.name is checked under its path', { ...good, metadata: { name: 'Tenant' } }, 'x', /^metadata\.name: Invalid value: "Tenant": must be a DNS-1035 label/],
  ['name has at most 40 characters', good, 'a'.repeat(41), /^name: Invalid value: "a{41}": must be at most 40 characters/],
  ['namespace is a DNS label', { ...good, metadata: { namespace: 'Tenants' } }, 'tenant', /^metadata\.namespace: Invalid value: "Tenants": must be a DNS label/],
  ['label keys are label keys', { ...good, metadata: { labels: { 'bad key': 'x' } } }, 'tenant', /^metadata\.labels\[bad key\]: Invalid value: "bad key": must be a label key/],
  ['label values are label values', { ...good, metadata: { labels: { team: 'a b' } } }, 'tenant', /^metadata\.labels\[team\]: Invalid value: "a b": must be a label value/],
  ['the version is v<semver>', { ...good, kubernetesVersion: '1.34.2' }, 'tenant', /^kubernetesVersion: Invalid value: "1\.34\.2": must be a version such as v1\.34\.2/],
  ['the version has node images', { ...good, kubernetesVersion: 'v1.35.0' }, 'tenant', /^images: Invalid value: "v1\.35\.0": has no node images for kubernetesVersion \(images are given for: v1\.34\.2\)/],
  ['an images function that has none for the version', { ...good, images: () => undefined }, 'tenant', /^images: Invalid value: "v1\.34\.2": has no node images for kubernetesVersion$/],
  ['node images are image references', { ...good, images: { 'v1.34.2': { kernelImage: 'has space', rootfsImage: 'r' } } }, 'tenant', /^images\[v1\.34\.2\]\.kernelImage: Invalid value: "has space": must be an image reference/],
  ['the kernel command line is not blank', { ...good, images: { 'v1.34.2': { ...images['v1.34.2'], kernelCmdline: ' ' } } }, 'tenant', /^images\[v1\.34\.2\]\.kernelCmdline: Invalid value: " ": must be a kernel command line/],
  ['control-plane replicas from 1 to 7', { ...good, controlPlane: { replicas: 0 } }, 'tenant', /^controlPlane\.replicas: Invalid value: 0: must be a whole number from 1 to 7/],
  ['control-plane replicas odd with stacked etcd', { ...good, controlPlane: { replicas: 4 } }, 'tenant', /^controlPlane\.replicas: Invalid value: 4: must be odd with stacked etcd/],
  ['cpu cores are whole numbers', { ...good, workers: [{ name: 'md-0', size: { cpuCores: 1.5 } }] }, 'tenant', /^workers\[0\]\.size\.cpuCores: Invalid value: 1\.5: must be a whole number from 1 to 254/],
  ['the control plane has at least 2 cores', { ...good, controlPlane: { size: { cpuCores: 1 } } }, 'tenant', /^controlPlane\.size\.cpuCores: Invalid value: 1: must be at least 2 on the control plane/],
  ['the control plane has at least 1700Mi', { ...good, controlPlane: { size: { memory: '1Gi' } } }, 'tenant', /^controlPlane\.size\.memory: Invalid value: "1Gi": must be at least 1700Mi on the control plane/],
  ['memory is a size', { ...good, workers: [{ name: 'md-0', size: { memory: '4 GB' } }] }, 'tenant', /^workers\[0\]\.size\.memory: Invalid value: "4 GB": must be a size such as 4Gi/],
  ['the root disk is at most 64Gi', { ...good, workers: [{ name: 'md-0', size: { rootfsSize: '65Gi' } }] }, 'tenant', /^workers\[0\]\.size\.rootfsSize: Invalid value: "65Gi": must be at most 64Gi/],
  ['external etcd lists endpoints', { ...good, etcd: { external: { endpoints: [] } } }, 'tenant', /^etcd\.external\.endpoints: Invalid value: \[\]: must list 1 to 50 etcd client URLs/],
  ['etcd endpoints are URLs', { ...good, etcd: { external: { endpoints: ['etcd:2379'] } } }, 'tenant', /^etcd\.external\.endpoints\[0\]: Invalid value: "etcd:2379": must be an etcd client URL/],
  ['etcd files are absolute paths', { ...good, etcd: { external: { endpoints: ['https://e:2379'], keyFile: 'key.pem' } } }, 'tenant', /^etcd\.external\.keyFile: Invalid value: "key\.pem": must be an absolute path/],
  ['pool names are DNS-1035 labels', { ...good, workers: [{ name: 'Md_0' }] }, 'tenant', /^workers\[0\]\.name: Invalid value: "Md_0": must be a DNS-1035 label/],
  ['no pool takes the control plane’s name', { ...good, workers: [{ name: 'control-plane' }] }, 'tenant', /^workers\[0\]\.name: Invalid value: "control-plane": is the control plane's/],
  ['pool names are unique', { ...good, workers: [{ name: 'md-0' }, { name: 'md-0' }] }, 'tenant', /^workers\[1\]\.name: Duplicate value: "md-0": pool names must be unique/],
  ['cluster and pool names fit the machine names', { ...good, workers: [{ name: 'p'.repeat(45) }] }, 'tenant', /^workers\[0\]\.name: Invalid value: "p{45}": must have at most 44 characters with this cluster name/],
  ['worker replicas from 0 to 100', { ...good, workers: [{ name: 'md-0', replicas: 101 }] }, 'tenant', /^workers\[0\]\.replicas: Invalid value: 101: must be a whole number from 0 to 100/],
  ['at most 32 pools', { ...good, workers: Array.from({ length: 33 }, (_, i) => ({ name: `p${i}` })) }, 'tenant', /^workers: Invalid value: 33: must hold at most 32 pools/],
  ['the pod CIDR is a CIDR', { ...good, network: { podCidr: '10.0.0.0' } }, 'tenant', /^network\.podCidr: Invalid value: "10\.0\.0\.0": must be a CIDR/],
  ['a CIDR names its network address', { ...good, network: { podCidr: '10.1.2.3/16' } }, 'tenant', /^network\.podCidr: Invalid value: "10\.1\.2\.3\/16": has bits set beyond the prefix length/],
  ['the pod CIDR leaves a /24 per node', { ...good, network: { podCidr: '10.1.0.0/25' } }, 'tenant', /^network\.podCidr: Invalid value: "10\.1\.0\.0\/25": must have a prefix length from \/8 to \/24 \(IPv4\)/],
  ['the IPv6 Service CIDR has at most 20 bits', { ...good, network: { podCidr: 'fd00::/56', serviceCidr: 'fd01::/64' } }, 'tenant', /^network\.serviceCidr: Invalid value: "fd01::\/64": must have a prefix length from \/108 to \/124 \(IPv6\)/],
  ['pods and Services in one IP family', { ...good, network: { podCidr: 'fd00::/56' } }, 'tenant', /^network\.serviceCidr: Invalid value: "10\.95\.0\.0\/16": must be of the pod CIDR's IP family \(IPv6\)/],
  ['pods and Services do not overlap', { ...good, network: { podCidr: '10.0.0.0/8', serviceCidr: '10.96.0.0/16' } }, 'tenant', /^network\.serviceCidr: Invalid value: "10\.96\.0\.0\/16": must not overlap the pod CIDR 10\.0\.0\.0\/8/],
  ['the pod CIDR does not overlap the management cluster', { ...good, network: { hostCidrs: ['10.243.128.0/17'] } }, 'tenant', /^network\.podCidr: Invalid value: "10\.243\.0\.0\/16": must not overlap the management cluster's 10\.243\.128\.0\/17/],
  ['the Service CIDR does not overlap the management cluster (IPv6)', { ...good, network: { podCidr: 'fd00:1::/56', serviceCidr: 'fd00:2::/112', hostCidrs: ['fd00:2::/64'] } }, 'tenant', /^network\.serviceCidr: Invalid value: "fd00:2::\/112": must not overlap the management cluster's fd00:2::\/64/],
  ['host CIDRs are CIDRs', { ...good, network: { hostCidrs: ['10.0.0.0/33'] } }, 'tenant', /^network\.hostCidrs\[0\]: Invalid value: "10\.0\.0\.0\/33": the prefix length must be at most 32/],
  ['the Service domain is a DNS subdomain', { ...good, network: { serviceDomain: 'Cluster.Local' } }, 'tenant', /^network\.serviceDomain: Invalid value: "Cluster\.Local": must be a DNS subdomain/],
  // The endpoint's values are the CRD's rules (api/infrastructure.ts), reported on the KubevisorCluster at synth.
  ['the Service is ClusterIP or LoadBalancer', { ...good, endpoint: { service: 'NodePort' as 'ClusterIP' } }, 'tenant', /^KubevisorCluster\/tenant: spec\.controlPlaneService\.type: Unsupported value: "NodePort"/],
  ['a load balancer class needs a LoadBalancer', { ...good, endpoint: { loadBalancerClass: 'x/lb' } }, 'tenant', /^KubevisorCluster\/tenant: spec\.controlPlaneService\.loadBalancerClass: .*loadBalancerClass applies only to type LoadBalancer/],
  ['a load balancer class is not empty', { ...good, endpoint: { service: 'LoadBalancer', loadBalancerClass: '' } }, 'tenant', /^KubevisorCluster\/tenant: spec\.controlPlaneService\.loadBalancerClass: .*should be at least 1 chars long/],
  ['the endpoint host is a host', { ...good, endpoint: { host: 'https://api' } }, 'tenant', /^KubevisorCluster\/tenant: spec\.controlPlaneEndpoint\.host: Invalid value: "https:\/\/api": .*should match/],
  ['an endpoint port needs a host', { ...good, endpoint: { port: 443 } }, 'tenant', /^endpoint\.port: Invalid value: 443: applies only with endpoint\.host/],
  ['the endpoint port is a port', { ...good, endpoint: { host: 'api', port: 70000 } }, 'tenant', /^KubevisorCluster\/tenant: spec\.controlPlaneEndpoint\.port: Invalid value: 70000: .*less than or equal to 65535/],
  ['unhealthy seconds are positive', { ...good, healthChecks: { unhealthySeconds: 0 } }, 'tenant', /^healthChecks\.unhealthySeconds: Invalid value: 0: must be a whole number from 1 to 86400/],
  ['node startup is 0 or at least 30 s', { ...good, healthChecks: { nodeStartupSeconds: 10 } }, 'tenant', /^healthChecks\.nodeStartupSeconds: Invalid value: 10: must be a whole number from 30 to 86400/],
  ['a CNI names its manifests', { ...good, cni: {} }, 'tenant', /^cni: Required value: give the manifests, or name ConfigMaps or Secrets holding them/],
  ['CNI manifests fit a ConfigMap', { ...good, cni: { manifests: 'x'.repeat(1000 * 1024 + 1) } }, 'tenant', /^cni\.manifests: Invalid value: "1024001 bytes": must be at most 1000 KiB/],
  ['CNI sources are object names', { ...good, cni: { secrets: ['Calico'] } }, 'tenant', /^cni\.secrets\[0\]: Invalid value: "Calico": must be the name of an object/],
  ['the CNI strategy is ApplyOnce or Reconcile', { ...good, cni: { configMaps: ['c'], strategy: 'Always' as 'Reconcile' } }, 'tenant', /^cni\.strategy: Invalid value: "Always": must be ApplyOnce or Reconcile/],
]; // prettier-ignore

test.each(cases)('%s', (_rule, props, name, expected) => {
  const found = problems(props, name);
  expect(found).toEqual([expect.stringMatching(expected)]);
});

test('each case is a distinct rule', () => {
  expect(new Set(cases.map(([rule]) => rule)).size).toBe(cases.length);
  expect(new Set(cases.map(([, , , re]) => re.source.replace(/Invalid value: .*?: /, ''))).size).toBe(cases.length);
});

test('every problem at once, each prefixed with where the cluster is declared', () => {
  let error: unknown;
  try {
    renderNestedCluster(
      'tenant',
      { ...good, kubernetesVersion: 'v1', controlPlane: { replicas: 2 }, endpoint: { port: 1 } },
      'my-stack/tenant',
    );
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(KubevisorValidationError);
  expect((error as KubevisorValidationError).problems).toEqual([
    expect.stringMatching(/^\[my-stack\/tenant\] kubernetesVersion: Invalid value: "v1"/),
    expect.stringMatching(/^\[my-stack\/tenant\] controlPlane\.replicas: Invalid value: 2: must be odd/),
    expect.stringMatching(/^\[my-stack\/tenant\] endpoint\.port: Invalid value: 1: applies only with endpoint\.host/),
  ]);
});

test('with an external etcd, an even control plane is accepted', () => {
  expect(
    problems({ ...good, controlPlane: { replicas: 2 }, etcd: { external: { endpoints: ['https://e:2379'] } } }),
  ).toEqual([]);
});
