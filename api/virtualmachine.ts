/**
 * The VirtualMachine kind: one declaration that yields the CRD schema, the TypeScript types, the defaults and
 * every validation rule. Rules that relate fields to each other are CEL, so the API server enforces them with
 * no webhook and the synth-time validator runs the very same expressions.
 */
import type { VirtualMachineSpec, VirtualMachineStatus } from './generated/types';
import type { Rule } from './schema';
import { array, boolean, integer, intOrString, marker, object, opaque, string, withRefusedFields } from './schema';
import { DNS_SUBDOMAIN, conditions, image, imagePullPolicy, name, objectName, resources, scheduling } from './common';

/** Bounds that keep the API server's CEL cost estimate within budget and match what CH supports. */
export const LIMITS = {
  disks: 32,
  fileSystems: 16,
  interfaces: 16,
  networks: 16,
  volumes: 48,
  ports: 64,
  maxVcpus: 254,
  probeHeaders: 16,
  /** Largest containerRootfs: the ext4 image is built on, and lives on, the node's ephemeral storage. */
  maxRootfsSize: '64Gi',
  /** Default and largest containerDisk.maxSize: the copied image and the guest's writes to it, on the node's disk. */
  defaultContainerDiskMaxSize: '10Gi',
  maxContainerDiskSize: '1Ti',
} as const;

const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$';
const MAC_PATTERN = '^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$';

const size = (description: string, dflt?: string) =>
  string({ description, pattern: SIZE_PATTERN, maxLength: 32, ...(dflt ? { default: dflt } : {}) });

// --- instance -------------------------------------------------------------------------------------------

const cpu = object(
  {
    sockets: integer({ description: 'Number of CPU sockets.', minimum: 1, maximum: LIMITS.maxVcpus, default: 1 }),
    coresPerSocket: integer({ description: 'Cores per socket.', minimum: 1, maximum: LIMITS.maxVcpus, default: 1 }),
    dedicatedCPUPlacement: boolean({
      description:
        "Pin each vCPU to its own host CPU. Needs the kubelet's static CPU manager; the VM pod gets Guaranteed QoS.",
      default: false,
    }),
  },
  {
    description: 'Guest CPU topology. vCPUs = sockets × coresPerSocket.',
    typeName: 'VmCpu',
    // Defaults of objects are spelled out in full: the API server checks a default against the rules of its
    // own node without applying the nested defaults first.
    default: { sockets: 1, coresPerSocket: 1, dedicatedCPUPlacement: false },
    rules: [
      {
        rule: `self.sockets * self.coresPerSocket <= ${LIMITS.maxVcpus}`,
        message: `sockets × coresPerSocket must be at most ${LIMITS.maxVcpus} vCPUs (Cloud Hypervisor's limit)`,
      },
    ],
  },
);

const memory = object(
  {
    size: size('Guest memory, e.g. 1Gi or 512Mi.', '1Gi'),
    hugepages: object(
      {
        pageSize: string({
          description: 'Hugepage size backing guest memory.',
          enum: ['2Mi', '1Gi'] as const,
          default: '2Mi',
          maxLength: 3,
        }),
      },
      {
        description: 'Back guest memory with hugepages; the VM pod requests hugepages-<pageSize> = size.',
        typeName: 'VmHugepages',
      },
    ),
  },
  {
    description: 'Guest memory.',
    typeName: 'VmMemory',
    default: { size: '1Gi' },
    rules: [
      {
        rule: "quantity(self.size).isGreaterThan(quantity('0'))",
        message: 'memory size must be greater than 0',
        fieldPath: '.size',
      },
      {
        rule: 'quantity(self.size).isInteger()',
        message: 'memory size must be a whole number of bytes',
        fieldPath: '.size',
      },
      {
        rule: '!has(self.hugepages) || !quantity(self.size).isInteger() || quantity(self.size).asInteger() % quantity(self.hugepages.pageSize).asInteger() == 0',
        messageExpression: "'memory size must be a whole multiple of the hugepage size ' + self.hugepages.pageSize",
        fieldPath: '.size',
      },
    ],
  },
);

const kernel = object(
  {
    image: image('Container image holding the kernel at /vmlinux (direct kernel boot).'),
    imagePullPolicy,
    cmdline: string({
      description: 'Kernel command line, e.g. "console=ttyS0 root=/dev/vda rw".',
      minLength: 1,
      maxLength: 2048,
    }),
    initrd: boolean({
      description:
        'The kernel image also holds /initrd, an initramfs handed to the kernel (its modules, an early userspace).',
      default: false,
    }),
  },
  {
    description: 'Boot this kernel directly instead of firmware.',
    typeName: 'VmKernel',
    required: ['image', 'cmdline'],
  },
);

const disk = object(
  {
    name: name('Name of the volume this disk attaches.'),
    readOnly: boolean({ description: 'Attach read-only.', default: false }),
  },
  { description: 'A virtio-blk disk backed by the volume of the same name.', typeName: 'VmDisk', required: ['name'] },
);

const fileSystem = object(
  { name: name('Name of the persistentVolumeClaim or dataVolume volume this share exposes.') },
  {
    description: 'A virtio-fs share (served by virtiofsd) backed by the volume of the same name.',
    typeName: 'VmFileSystem',
    required: ['name'],
  },
);

const port = object(
  {
    port: integer({ description: 'Port forwarded from the pod to the guest.', minimum: 1, maximum: 65535 }),
    protocol: string({
      description: 'TCP, UDP or SCTP.',
      enum: ['TCP', 'UDP', 'SCTP'] as const,
      default: 'TCP',
      maxLength: 4,
    }),
    name: name('Optional name of the port.'),
  },
  { description: 'A forwarded port.', typeName: 'MasqueradePort', required: ['port'] },
);

const masquerade = object(
  {
    cidr: string({
      description: 'Private IPv4 network between the pod and the guest; the guest gets its second address.',
      default: '10.0.2.0/30',
      maxLength: 18,
    }),
    ports: array(port, {
      description:
        'Ports forwarded from the pod IP to the guest; only these reach it (omitted or empty: none). The guest can ' +
        'still open connections out, NATed to the pod IP. Ports of readiness and liveness probes must be listed.',
      maxItems: LIMITS.ports,
      key: ['port', 'protocol'],
    }),
  },
  {
    description: "The guest sits behind NAT on a private network; the pod's IP reaches it through forwarded ports.",
    typeName: 'MasqueradeBinding',
    rules: [
      { rule: 'isCIDR(self.cidr)', message: 'cidr must be an IPv4 CIDR such as 10.0.2.0/30', fieldPath: '.cidr' },
      {
        rule: '!isCIDR(self.cidr) || cidr(self.cidr).ip().family() == 4',
        message: 'cidr must be IPv4 (the guest gets its address by DHCPv4)',
        fieldPath: '.cidr',
      },
      {
        rule: '!isCIDR(self.cidr) || cidr(self.cidr).ip().family() != 4 || cidr(self.cidr).prefixLength() <= 30',
        message: 'cidr must hold at least 4 addresses (prefix length 30 or less)',
        fieldPath: '.cidr',
      },
    ],
  },
);

const vdpa = object(
  {
    numQueues: integer({ description: 'Virtqueues of the vDPA device.', minimum: 1, maximum: 256, default: 1 }),
    iommu: boolean({ description: 'Place the device behind a virtual IOMMU.', default: false }),
  },
  { description: 'Pass a vDPA device from the Multus network through to the guest.', typeName: 'VdpaBinding' },
);

const iface = object(
  {
    name: name('Name of the network this interface connects to.'),
    mac: string({
      description:
        'Guest MAC address. The constructs derive a stable 52:54:00 address from the VM and interface names when omitted.',
      maxLength: 17,
    }),
    bridge: marker({ description: "The guest takes the pod interface's IP and MAC (default binding)." }),
    masquerade,
    sriov: marker({ description: 'Pass the SR-IOV VF from the Multus network through to the guest (VFIO).' }),
    vdpa,
    vhostUser: marker({
      description: 'Connect to a vhost-user socket provided by the CNI (needs dedicated CPUs and hugepages).',
    }),
  },
  {
    description: 'A guest network interface and how it binds to its network. No binding means bridge.',
    typeName: 'VmInterface',
    required: ['name'],
    atMostOne: ['bridge', 'masquerade', 'sriov', 'vdpa', 'vhostUser'],
    unionName: 'InterfaceBinding',
    rules: [
      {
        rule: '[has(self.bridge), has(self.masquerade), has(self.sriov), has(self.vdpa), has(self.vhostUser)].filter(x, x).size() <= 1',
        message: 'set at most one binding: bridge, masquerade, sriov, vdpa or vhostUser',
      },
      {
        rule: `!has(self.mac) || self.mac.matches('${MAC_PATTERN}')`,
        message: 'mac must look like 52:54:00:12:34:56',
        fieldPath: '.mac',
      },
      {
        rule: "!has(self.mac) || !self.mac.matches('^[0-9a-fA-F]{2}') || self.mac.matches('^[0-9a-fA-F][02468aAcCeE]')",
        message: 'mac must be a unicast address (the lowest bit of the first octet must be 0)',
        fieldPath: '.mac',
      },
    ],
  },
);

const instance = object(
  {
    cpu,
    memory,
    kernel,
    disks: array(disk, { description: 'Disks, in boot order.', maxItems: LIMITS.disks, key: 'name' }),
    fileSystems: array(fileSystem, { description: 'virtio-fs shares.', maxItems: LIMITS.fileSystems, key: 'name' }),
    interfaces: array(iface, { description: 'Network interfaces.', maxItems: LIMITS.interfaces, key: 'name' }),
  },
  {
    description: 'The virtual hardware.',
    typeName: 'VmInstance',
    rules: [
      {
        rule: '!has(self.disks) || !has(self.fileSystems) || !self.disks.exists(d, self.fileSystems.exists(f, f.name == d.name))',
        message: 'a volume can back a disk or a fileSystem, not both: disk and fileSystem names must differ',
        fieldPath: '.fileSystems',
      },
      {
        rule: '!has(self.interfaces) || self.interfaces.all(i, !has(i.mac) || self.interfaces.filter(j, has(j.mac) && j.mac == i.mac).size() == 1)',
        message: 'each interface needs its own mac',
        fieldPath: '.interfaces',
      },
      {
        rule: '!has(self.interfaces) || !self.interfaces.exists(i, has(i.vhostUser)) || self.cpu.dedicatedCPUPlacement',
        message: 'vhostUser needs cpu.dedicatedCPUPlacement: true',
        fieldPath: '.interfaces',
      },
      {
        rule: '!has(self.interfaces) || !self.interfaces.exists(i, has(i.vhostUser)) || has(self.memory.hugepages)',
        message: 'vhostUser needs memory.hugepages (shared guest memory)',
        fieldPath: '.interfaces',
      },
      {
        rule: 'self.cpu == oldSelf.cpu && self.memory == oldSelf.memory',
        message: 'cpu and memory are immutable: create a new VM to resize',
      },
      {
        rule: 'has(self.kernel) == has(oldSelf.kernel) && (!has(self.kernel) || self.kernel == oldSelf.kernel)',
        message: 'kernel is immutable',
        fieldPath: '.kernel',
      },
      {
        rule: 'has(self.interfaces) == has(oldSelf.interfaces) && (!has(self.interfaces) || self.interfaces == oldSelf.interfaces)',
        message: 'interfaces are immutable',
        fieldPath: '.interfaces',
      },
    ],
  },
);

// --- volumes --------------------------------------------------------------------------------------------

const cloudInit = object(
  {
    userData: string({ description: 'cloud-init user-data, inline.', maxLength: 65536 }),
    userDataBase64: string({ description: 'cloud-init user-data, base64.', format: 'byte', maxLength: 87384 }),
    userDataSecretName: objectName('Secret whose key "value" holds the user-data.'),
    networkData: string({ description: 'cloud-init network-config, inline.', maxLength: 65536 }),
    networkDataBase64: string({ description: 'cloud-init network-config, base64.', format: 'byte', maxLength: 87384 }),
    networkDataSecretName: objectName('Secret whose key "value" holds the network-config.'),
  },
  {
    description: 'A NoCloud disk (label cidata) with meta-data (instance-id = VM UID, local-hostname = VM name).',
    typeName: 'CloudInitSource',
    rules: [
      {
        rule: '[has(self.userData), has(self.userDataBase64), has(self.userDataSecretName)].filter(x, x).size() <= 1',
        message: 'set at most one of userData, userDataBase64, userDataSecretName',
      },
      {
        rule: '[has(self.networkData), has(self.networkDataBase64), has(self.networkDataSecretName)].filter(x, x).size() <= 1',
        message: 'set at most one of networkData, networkDataBase64, networkDataSecretName',
      },
    ],
  },
);

const diskSizeRules = (field: string, max: string, what: string) => [
  {
    rule: `quantity(self.${field}).isGreaterThan(quantity('0'))`,
    message: `${field} must be greater than 0`,
    fieldPath: `.${field}`,
  },
  {
    rule: `!quantity(self.${field}).isGreaterThan(quantity('${max}'))`,
    message: `${field} must be at most ${max} (${what} on the node's ephemeral storage)`,
    fieldPath: `.${field}`,
  },
];

const hotpluggable = boolean({ description: 'May be attached or detached while the VM runs.', default: false });

const volume = object(
  {
    name: name('Volume name; a disk or fileSystem of the same name attaches it.'),
    containerDisk: object(
      {
        image: image('Image holding a disk image (qcow2 or raw) at /disk: a regular file, or a directory holding one.'),
        imagePullPolicy,
        maxSize: size(
          'Most node disk this ephemeral disk may use: the image copied out of the container image, its raw ' +
            'conversion and what the guest writes to it. The VM pod requests this much ephemeral storage; beyond ' +
            'it the kubelet evicts the pod.',
          LIMITS.defaultContainerDiskMaxSize,
        ),
      },
      {
        description: 'An ephemeral disk from a container image.',
        typeName: 'ContainerDiskSource',
        required: ['image'],
        rules: diskSizeRules('maxSize', LIMITS.maxContainerDiskSize, 'the disk is kept'),
      },
    ),
    containerRootfs: object(
      {
        image: image('Image whose filesystem becomes the root disk.'),
        imagePullPolicy,
        size: size(`Size of the ext4 root disk created from the image, e.g. 4Gi (at most ${LIMITS.maxRootfsSize}).`),
      },
      {
        description: 'An ext4 root disk built from a container image (use with kernel boot).',
        typeName: 'ContainerRootfsSource',
        required: ['image', 'size'],
        rules: diskSizeRules('size', LIMITS.maxRootfsSize, 'the ext4 image is built and kept'),
      },
    ),
    persistentVolumeClaim: object(
      { claimName: objectName('Name of the PVC in the VM namespace.'), hotpluggable },
      {
        description: 'A PVC: block mode attaches the device, filesystem mode its disk.img.',
        typeName: 'PersistentVolumeClaimSource',
        required: ['claimName'],
      },
    ),
    dataVolume: object(
      { volumeName: objectName('Name of the CDI DataVolume in the VM namespace.'), hotpluggable },
      {
        description: 'A CDI DataVolume, attached once it is populated.',
        typeName: 'DataVolumeSource',
        required: ['volumeName'],
      },
    ),
    cloudInit,
  },
  {
    description: 'A volume; exactly one source.',
    typeName: 'VmVolume',
    required: ['name'],
    exactlyOne: ['containerDisk', 'containerRootfs', 'persistentVolumeClaim', 'dataVolume', 'cloudInit'],
    unionName: 'VolumeSource',
    rules: [
      {
        rule: '[has(self.containerDisk), has(self.containerRootfs), has(self.persistentVolumeClaim), has(self.dataVolume), has(self.cloudInit)].filter(x, x).size() >= 1',
        message: 'set a source: containerDisk, containerRootfs, persistentVolumeClaim, dataVolume or cloudInit',
      },
      {
        rule: '[has(self.containerDisk), has(self.containerRootfs), has(self.persistentVolumeClaim), has(self.dataVolume), has(self.cloudInit)].filter(x, x).size() <= 1',
        message: 'set only one source per volume',
      },
    ],
  },
);

// --- networks -------------------------------------------------------------------------------------------

const network = object(
  {
    name: name('Network name; the interface of the same name connects to it.'),
    pod: marker({ description: "The pod's primary network." }),
    multus: object(
      {
        networkName: string({
          description: 'NetworkAttachmentDefinition as <name> or <namespace>/<name>.',
          pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?' + DNS_SUBDOMAIN.slice(1),
          maxLength: 317,
        }),
      },
      { description: 'A secondary network attached by Multus.', typeName: 'MultusNetwork', required: ['networkName'] },
    ),
  },
  {
    description: 'A network; exactly one of pod or multus.',
    typeName: 'VmNetwork',
    required: ['name'],
    exactlyOne: ['pod', 'multus'],
    unionName: 'NetworkSource',
    rules: [
      { rule: 'has(self.pod) || has(self.multus)', message: 'set pod or multus' },
      { rule: '!(has(self.pod) && has(self.multus))', message: 'set only one of pod or multus' },
    ],
  },
);

// --- power ----------------------------------------------------------------------------------------------

const power = object(
  {
    paused: boolean({
      description: 'Pause the guest (vCPUs stop, memory is kept). The phase shows Paused until this is false again.',
      default: false,
    }),
    restartRequest: string({
      description:
        'Any new value asks for one restart: a running guest reboots, a stopped VM (Succeeded or Failed) starts again. ' +
        'The same value never acts twice; status.observedRestartRequest shows the last one acted on.',
      maxLength: 63,
    }),
    shutdownGracePeriodSeconds: integer({
      description: 'How long an ACPI shutdown (runPolicy Halted, deletion) may take before the VM is stopped hard.',
      minimum: 0,
      maximum: 3600,
      default: 60,
    }),
  },
  {
    description: 'Declarative power control. Stop a VM with runPolicy: Halted.',
    typeName: 'VmPower',
    default: { paused: false, shutdownGracePeriodSeconds: 60 },
  },
);

// --- probes ---------------------------------------------------------------------------------------------

/**
 * The probed port. An int-or-string as in a container probe, so that a name is refused with a message (and a VM stored
 * before the rule keeps validating through the API server's ratcheting) rather than as a wrong type; the name's
 * pattern is Kubernetes' own (IANA service name).
 */
const probePort = intOrString({
  description:
    "Port to probe on the VM pod, by number (1–65535). Names are refused: the VM pod's container ports carry none.",
  minimum: 1,
  maximum: 65535,
  pattern: '^([a-z0-9]+-)*[a-z0-9]*[a-z][a-z0-9]*(-[a-z0-9]+)*$',
  maxLength: 15,
});

const numericPort = {
  // The kubelet resolves a named port among the container's declared ports, and the launcher declares none (the guest's
  // ports are not the container's): a named port would fail every probe.
  rule: 'type(self.port) == int',
  message: 'port must be a number: the VM pod declares no named ports, so a probe by name never reaches the guest',
  fieldPath: '.port',
} as const;

const noHost = {
  // The kubelet would send the probe from the node to any address: another tenant's service, the node's own.
  rule: '!has(self.host)',
  message: "host is not allowed: probes go to the VM pod's own IP, which reaches the guest",
  fieldPath: '.host',
  reason: 'FieldValueForbidden',
} as const;
const refusedHost = { host: string({ description: 'Not allowed: probes go to the VM pod.', maxLength: 253 }) };

const httpGet = withRefusedFields(
  object(
    {
      path: string({ description: 'HTTP path, e.g. /healthz.', maxLength: 2048 }),
      port: probePort,
      scheme: string({ description: 'HTTP (default) or HTTPS.', enum: ['HTTP', 'HTTPS'] as const, maxLength: 5 }),
      httpHeaders: array(
        object(
          {
            name: string({ description: 'Header name.', pattern: '^[-A-Za-z0-9]+$', minLength: 1, maxLength: 256 }),
            value: string({ description: 'Header value.', maxLength: 4096 }),
          },
          { description: 'A header sent with the probe.', typeName: 'HTTPHeader', required: ['name', 'value'] },
        ),
        { description: 'Headers sent with the probe.', maxItems: LIMITS.probeHeaders },
      ),
    },
    {
      description: "An HTTP GET to the VM pod's IP.",
      typeName: 'HTTPGetAction',
      required: ['port'],
      rules: [noHost, numericPort],
    },
  ),
  refusedHost,
);

const tcpSocket = withRefusedFields(
  object(
    { port: probePort },
    {
      description: "A TCP connection to the VM pod's IP.",
      typeName: 'TCPSocketAction',
      required: ['port'],
      rules: [noHost, numericPort],
    },
  ),
  refusedHost,
);

const probeSeconds = (description: string, minimum: number) => integer({ description, minimum });

/**
 * A probe of the VM pod: httpGet or tcpSocket only. `exec` would run commands inside the VM pod, beside Cloud
 * Hypervisor's socket and the VM's Secrets; `grpc` is not offered. Both are in the schema only so that they are
 * refused with a message rather than dropped.
 */
const probe = (description: string, rules: readonly Rule[] = []) =>
  withRefusedFields(
    object(
      {
        httpGet,
        tcpSocket,
        initialDelaySeconds: probeSeconds('Seconds after the pod starts before the first probe.', 0),
        periodSeconds: probeSeconds('Seconds between probes (default 10).', 1),
        timeoutSeconds: probeSeconds('Seconds before a probe times out (default 1).', 1),
        successThreshold: probeSeconds('Successes in a row that count as passing (default 1).', 1),
        failureThreshold: probeSeconds('Failures in a row that count as failing (default 3).', 1),
      },
      {
        description,
        typeName: 'VmProbe',
        typeDoc: 'A probe of the VM pod: httpGet or tcpSocket (exactly one), with the usual timing fields.',
        exactlyOne: ['httpGet', 'tcpSocket'],
        unionName: 'ProbeHandler',
        rules: [
          {
            rule: '!has(self.exec)',
            message: 'exec probes are not allowed: they would run commands inside the VM pod; use httpGet or tcpSocket',
            fieldPath: '.exec',
            reason: 'FieldValueForbidden',
          },
          {
            rule: '!has(self.grpc)',
            message: 'grpc probes are not supported: use httpGet or tcpSocket',
            fieldPath: '.grpc',
            reason: 'FieldValueForbidden',
          },
          {
            rule: 'has(self.exec) || has(self.grpc) || has(self.httpGet) != has(self.tcpSocket)',
            message: 'set exactly one of httpGet or tcpSocket',
          },
          ...rules,
        ],
      },
    ),
    {
      exec: opaque({ description: 'Not allowed: use httpGet or tcpSocket.' }),
      grpc: opaque({ description: 'Not supported: use httpGet or tcpSocket.' }),
    },
  );

// --- spec -----------------------------------------------------------------------------------------------

// `requests` and `limits` are fields of a struct, so CEL cannot iterate over them: one clause each.
const eachResourceList = (clause: (list: string) => string) =>
  `(!has(self.resources.requests) || ${clause('self.resources.requests')}) && (!has(self.resources.limits) || ${clause('self.resources.limits')})`;
const HUGEPAGES_KEY = "'hugepages-' + self.instance.memory.hugepages.pageSize";
const hugepageResourcesRule =
  '!has(self.instance.memory.hugepages) || !has(self.resources) || ' +
  eachResourceList(
    (l) =>
      `!((${HUGEPAGES_KEY}) in ${l}) || quantity(string(${l}[${HUGEPAGES_KEY}])).compareTo(quantity(self.instance.memory.size)) == 0`,
  );
const dedicatedCpuResourcesRule =
  '!self.instance.cpu.dedicatedCPUPlacement || !has(self.resources) || ' +
  eachResourceList(
    (l) =>
      `!('cpu' in ${l}) || (quantity(string(${l}['cpu'])).isInteger() && quantity(string(${l}['cpu'])).asInteger() == self.instance.cpu.sockets * self.instance.cpu.coresPerSocket)`,
  );

/**
 * With masquerade, only the interface's listed ports are forwarded to the guest (none when `ports` is omitted), so a
 * probe of any other port fails forever. Probes are TCP (httpGet is HTTP over TCP). A named port is left to the
 * numeric-port rule.
 */
const probePortForwarded = (probe: 'livenessProbe' | 'readinessProbe', handler: 'httpGet' | 'tcpSocket'): Rule => {
  const port = `self.${probe}.${handler}.port`;
  return {
    rule:
      `!has(self.${probe}) || !has(self.${probe}.${handler}) || type(${port}) != int || !has(self.instance.interfaces) || ` +
      `self.instance.interfaces.all(i, !has(i.masquerade) || (has(i.masquerade.ports) && ` +
      `i.masquerade.ports.exists(p, p.port == ${port} && (!has(p.protocol) || p.protocol == 'TCP'))))`,
    message:
      `with masquerade only the listed ports reach the guest: add this port (TCP) to the masquerade interface's ports, ` +
      `or probe a port that is listed`,
    fieldPath: `.${probe}.${handler}.port`,
  };
};

const pvcOrDv = (v: string) => `(has(${v}.persistentVolumeClaim) || has(${v}.dataVolume))`;
const hotplug = (v: string) =>
  `((has(${v}.persistentVolumeClaim) && ${v}.persistentVolumeClaim.hotpluggable) || (has(${v}.dataVolume) && ${v}.dataVolume.hotpluggable))`;

export const virtualMachineSpec = object(
  {
    runPolicy: string({
      description:
        'When the VM runs. Always: restart whenever it stops. RerunOnFailure: restart after failure. Once: run once. ' +
        'Manual: start only on a restartRequest. Halted: stop (gracefully) and stay stopped.',
      enum: ['Always', 'RerunOnFailure', 'Once', 'Manual', 'Halted'] as const,
      default: 'Once',
      maxLength: 16,
    }),
    power,
    instance,
    volumes: array(volume, {
      description: 'Volumes backing disks and fileSystems.',
      maxItems: LIMITS.volumes,
      key: 'name',
    }),
    networks: array(network, {
      description: 'Networks the interfaces connect to.',
      maxItems: LIMITS.networks,
      key: 'name',
    }),
    resources,
    livenessProbe: probe(
      'Liveness probe of the VM pod (httpGet or tcpSocket); with bridge or masquerade it reaches the guest. A failing ' +
        'probe ends the pod.',
      [
        {
          rule: '!has(self.successThreshold) || self.successThreshold == 1',
          message: 'successThreshold must be 1 for a liveness probe',
          fieldPath: '.successThreshold',
        },
      ],
    ),
    readinessProbe: probe(
      'Readiness probe of the VM pod (httpGet or tcpSocket); with bridge or masquerade it reaches the guest. The VM is ' +
        'Ready only while it passes.',
    ),
    ...scheduling,
  },
  {
    description: 'Desired state of the VirtualMachine.',
    typeName: 'VirtualMachineSpec',
    required: ['instance'],
    rules: [
      {
        rule: '!has(self.instance.disks) || self.instance.disks.all(d, has(self.volumes) && self.volumes.exists(v, v.name == d.name))',
        message: 'every disk needs a volume of the same name: add the volume or remove the disk',
        fieldPath: '.instance.disks',
      },
      {
        rule: '!has(self.volumes) || self.volumes.all(v, (has(self.instance.disks) && self.instance.disks.exists(d, d.name == v.name)) || (has(self.instance.fileSystems) && self.instance.fileSystems.exists(f, f.name == v.name)))',
        message: 'every volume must be used: add a disk or fileSystem of the same name, or remove the volume',
        fieldPath: '.volumes',
      },
      {
        rule: `!has(self.instance.fileSystems) || self.instance.fileSystems.all(f, has(self.volumes) && self.volumes.exists(v, v.name == f.name && ${pvcOrDv('v')}))`,
        message: 'each fileSystem needs a persistentVolumeClaim or dataVolume volume of the same name',
        fieldPath: '.instance.fileSystems',
      },
      {
        rule: '!has(self.volumes) || self.volumes.filter(v, has(v.cloudInit)).size() <= 1',
        message: 'at most one cloudInit volume',
        fieldPath: '.volumes',
      },
      {
        rule: '!has(self.volumes) || !self.volumes.exists(v, has(v.containerRootfs)) || has(self.instance.kernel)',
        message: 'a containerRootfs volume needs instance.kernel (direct kernel boot)',
        fieldPath: '.instance',
      },
      {
        rule: 'has(self.instance.kernel) || (has(self.instance.disks) && has(self.volumes) && self.instance.disks.exists(d, self.volumes.exists(v, v.name == d.name && (has(v.containerDisk) || has(v.persistentVolumeClaim) || has(v.dataVolume)))))',
        message:
          'nothing to boot: attach a containerDisk, persistentVolumeClaim or dataVolume disk, or set instance.kernel',
        fieldPath: '.instance',
      },
      {
        rule: '!has(self.instance.interfaces) || self.instance.interfaces.all(i, has(self.networks) && self.networks.exists(n, n.name == i.name))',
        message: 'every interface needs a network of the same name: add the network or remove the interface',
        fieldPath: '.instance.interfaces',
      },
      {
        rule: '!has(self.networks) || self.networks.all(n, has(self.instance.interfaces) && self.instance.interfaces.exists(i, i.name == n.name))',
        message: 'every network must be used: add an interface of the same name, or remove the network',
        fieldPath: '.networks',
      },
      {
        rule: '!has(self.networks) || self.networks.filter(n, has(n.pod)).size() <= 1',
        message: 'at most one pod network',
        fieldPath: '.networks',
      },
      {
        rule: '!has(self.instance.interfaces) || !has(self.networks) || self.instance.interfaces.all(i, !has(i.masquerade) || self.networks.all(n, n.name != i.name || !has(n.multus)))',
        message: 'masquerade works only on the pod network',
        fieldPath: '.instance.interfaces',
      },
      {
        rule: '!has(self.instance.interfaces) || !has(self.networks) || self.instance.interfaces.all(i, !(has(i.sriov) || has(i.vdpa) || has(i.vhostUser)) || self.networks.all(n, n.name != i.name || !has(n.pod)))',
        message: 'sriov, vdpa and vhostUser bindings need a multus network',
        fieldPath: '.instance.interfaces',
      },
      {
        rule: '(!has(self.livenessProbe) && !has(self.readinessProbe)) || (has(self.networks) && self.networks.exists(n, has(n.pod)))',
        message: 'probes reach the guest through the pod network: add a pod network interface or remove the probes',
      },
      probePortForwarded('livenessProbe', 'httpGet'),
      probePortForwarded('livenessProbe', 'tcpSocket'),
      probePortForwarded('readinessProbe', 'httpGet'),
      probePortForwarded('readinessProbe', 'tcpSocket'),
      {
        rule: hugepageResourcesRule,
        message:
          'resources for hugepages-<pageSize> must equal instance.memory.size (or be left out: kubevisor sets them)',
        fieldPath: '.resources',
      },
      {
        rule: dedicatedCpuResourcesRule,
        message:
          'with dedicatedCPUPlacement, cpu requests and limits must equal sockets × coresPerSocket (or be left out)',
        fieldPath: '.resources',
      },
      {
        rule: "!self.power.paused || self.runPolicy != 'Halted'",
        message: 'a Halted VM cannot be paused: unset power.paused or choose another runPolicy',
        fieldPath: '.power.paused',
      },
      {
        rule: 'has(self.networks) == has(oldSelf.networks) && (!has(self.networks) || self.networks == oldSelf.networks)',
        message: 'networks are immutable',
        fieldPath: '.networks',
      },
      {
        rule: '!has(oldSelf.volumes) || !has(self.volumes) || oldSelf.volumes.all(o, !self.volumes.exists(n, n.name == o.name) || self.volumes.exists(n, n.name == o.name && n == o))',
        message: 'an existing volume cannot be changed: remove it and add one with a new name (hotpluggable only)',
        fieldPath: '.volumes',
      },
      {
        rule: `!has(oldSelf.volumes) || oldSelf.volumes.all(o, (has(self.volumes) && self.volumes.exists(n, n.name == o.name)) || ${hotplug('o')})`,
        message: 'only hotpluggable persistentVolumeClaim or dataVolume volumes can be removed from a VM',
        fieldPath: '.volumes',
      },
      {
        rule: `!has(self.volumes) || self.volumes.all(n, (has(oldSelf.volumes) && oldSelf.volumes.exists(o, o.name == n.name)) || ${hotplug('n')})`,
        message: 'only hotpluggable persistentVolumeClaim or dataVolume volumes can be added to an existing VM',
        fieldPath: '.volumes',
      },
    ],
  },
);

// --- status ---------------------------------------------------------------------------------------------

const text = (description: string, maxLength = 253) => string({ description, maxLength });

export const virtualMachineStatus = object(
  {
    phase: string({
      description:
        'Lifecycle phase. Pending: accepted. Scheduling: VM pod created. Scheduled: pod bound to a node. Running / Paused: ' +
        'guest running or paused (set by the node daemon). Succeeded: guest shut down. Failed: pod failed, was deleted or ' +
        'its node was lost. Stopped: not running by declaration (runPolicy Halted, or Manual before a restartRequest).',
      enum: [
        'Pending',
        'Scheduling',
        'Scheduled',
        'Running',
        'Paused',
        'Succeeded',
        'Failed',
        'Stopped',
        'Unknown',
      ] as const,
      maxLength: 16,
    }),
    phaseTransitionTime: text('When the phase last changed (RFC 3339).', 64),
    restarts: integer({
      description: 'How many times the VM was started again after stopping.',
      minimum: 0,
      int64: true,
    }),
    observedGeneration: integer({ description: 'The .metadata.generation this status reflects.', int64: true }),
    conditions,
    nodeName: text('Node running the VM.'),
    vmPodName: text('Current VM pod.'),
    vmPodUID: text('UID of the current VM pod.', 36),
    interfaces: array(
      object(
        {
          name: text('Interface name.', 63),
          mac: text('Guest MAC.', 17),
          ipAddresses: array(text('IP address.', 45), { description: 'Guest IP addresses.', maxItems: 16 }),
        },
        { description: 'A guest interface as observed.', typeName: 'VmInterfaceStatus', required: ['name'] },
      ),
      { description: 'Guest interfaces and their addresses.', maxItems: LIMITS.interfaces, key: 'name' },
    ),
    observedRestartRequest: text('The last spec.power.restartRequest acted on.', 63),
    hotplugVolumes: array(
      object(
        {
          name: text('Volume name.', 63),
          phase: string({
            description:
              'Attached: the guest sees the disk. Detaching: being removed. Failed: it could not be attached (see message).',
            enum: ['Attached', 'Detaching', 'Failed'] as const,
            maxLength: 16,
          }),
          message: text('Why it failed, or what it waits for.', 1024),
        },
        {
          description: 'A volume attached to the running guest after its pod was created.',
          typeName: 'HotplugVolumeStatus',
          required: ['name'],
        },
      ),
      {
        description: 'Hot-plugged volumes and their state (written by the node daemon).',
        maxItems: LIMITS.volumes,
        key: 'name',
      },
    ),
    consecutiveFailures: integer({
      description:
        'Runs in a row that failed, or (runPolicy Always) stopped within 10 minutes of booting. Sets the restart ' +
        'backoff: 5 s × 2^(n−1), at most 5 minutes. A run that stays up 10 minutes resets it.',
      minimum: 0,
      int64: true,
    }),
    guest: object(
      {
        podName: text('The VM pod this guest runs in.'),
        bootTime: text('When the guest booted in this pod (RFC 3339).', 64),
        reboots: integer({
          description: 'Reboots of the guest in this pod, requested or its own.',
          minimum: 0,
          int64: true,
        }),
        shutdownRequestTime: text(
          'When the node daemon pressed the ACPI power button to stop the guest (RFC 3339; once per pod).',
          64,
        ),
        exitReason: string({
          description:
            'How the guest ended in this pod. PoweredOff: the guest shut itself down. Crashed: Cloud Hypervisor ' +
            'stopped it on an error. BootFailed: it could not boot.',
          enum: ['PoweredOff', 'Crashed', 'BootFailed'] as const,
          maxLength: 16,
        }),
        exitMessage: text("Cloud Hypervisor's own words about the exit.", 1024),
      },
      { description: 'The guest as the node daemon observes it (written by the daemon).', typeName: 'GuestStatus' },
    ),
    migration: object(
      {
        name: text('VirtualMachineMigration in progress.'),
        uid: text('Its UID.', 36),
        targetNodeName: text('Target node.'),
        targetVMPodName: text('Target VM pod.'),
      },
      { description: 'The migration in progress, if any.', typeName: 'VmMigrationStatus' },
    ),
  },
  { description: 'Observed state of the VirtualMachine.', typeName: 'VirtualMachineStatus' },
);

// The TypeScript types come from api/generated/types.ts, which `npm run types` writes from the declarations above
// (with their descriptions as TSDoc); test/unit/generated-types.test.ts checks that they equal what `Infer` derives.
export type {
  ContainerDiskSource,
  ContainerRootfsSource,
  CloudInitSource,
  DataVolumeSource,
  GuestStatus,
  HTTPGetAction,
  HTTPHeader,
  HotplugVolumeStatus,
  InterfaceBinding,
  MasqueradeBinding,
  MasqueradePort,
  MultusNetwork,
  NetworkSource,
  PersistentVolumeClaimSource,
  ProbeHandler,
  TCPSocketAction,
  VdpaBinding,
  VirtualMachineSpec,
  VirtualMachineStatus,
  VmCpu,
  VmDisk,
  VmFileSystem,
  VmHugepages,
  VmInstance,
  VmInterface,
  VmInterfaceStatus,
  VmKernel,
  VmMemory,
  VmMigrationStatus,
  VmNetwork,
  VmPower,
  VmProbe,
  VmVolume,
  VolumeSource,
} from './generated/types';
export type RunPolicy = NonNullable<VirtualMachineSpec['runPolicy']>;
export type VmPhase = NonNullable<VirtualMachineStatus['phase']>;

/**
 * The spec fields a VirtualMachine cannot change (the transition rules above refuse it): a change needs a new VM.
 * The Pulumi component replaces the VM on these (`replaceOnChanges`, whose paths take `[*]` for every item); a unit
 * test checks each against the rules. An existing volume's source cannot change either; adding or removing a volume
 * is left out, because hot-pluggable ones may come and go (any other is refused by the API server, not replaced).
 */
export const VM_IMMUTABLE_FIELDS = [
  'spec.instance.cpu',
  'spec.instance.memory',
  'spec.instance.kernel',
  'spec.instance.interfaces',
  'spec.networks',
  'spec.volumes[*].containerDisk',
  'spec.volumes[*].containerRootfs',
  'spec.volumes[*].cloudInit',
  'spec.volumes[*].persistentVolumeClaim',
  'spec.volumes[*].dataVolume',
] as const;
