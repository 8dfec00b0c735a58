/**
 * The VM pod renderer: one VirtualMachine (as stored, defaults applied) in, the pod that runs it out. The
 * controller creates exactly this object; golden tests pin it per volume type and binding.
 *
 * Pod shape:
 * - init `tools` (operator image) copies a static busybox into an emptyDir, so user images built FROM scratch
 *   (kernels, disks, rootfs) can be copied out of without shipping any tools themselves;
 * - init `kernel` copies /vmlinux out of the kernel image; per containerDisk volume, init `disk-<vol>` copies
 *   /disk out and `convert-<vol>` (operator image) turns it into a raw image; per containerRootfs volume,
 *   `rootfs-<vol>` tars the image's filesystem and `mkfs-<vol>` builds the ext4 image of the requested size;
 * - main container `launcher` (operator image) prepares network and cloud-init, writes the VmConfig, then execs
 *   Cloud Hypervisor with only its API socket. It holds the guest's resources (see {@link vmPodResources}).
 */
import { createHash } from 'node:crypto';
import type { KubevisorObject, VirtualMachineSpec, VmVolume } from '../api';
import { API_VERSION, parseQuantity } from '../api';
import { formatBytes } from '../api/cel/quantity';
import {
  ATTACHMENT_MOUNT,
  HOTPLUG_DIR,
  HOTPLUG_VM_LABEL,
  HOTPLUG_VOLUME,
  HOTPLUG_VOLUME_LABEL,
  HUGEPAGES_DIR,
  IMAGE_BUSYBOX,
  POD_VOLUMES_ANNOTATION,
  KERNEL_DIR,
  KERNEL_VOLUME,
  KVM_RESOURCE,
  LAUNCHER_CONTAINER,
  LAUNCHER_ENTRYPOINT,
  NETWORK_STATUS_ENV,
  RUN_DIR,
  RUN_VOLUME,
  TOOLS_DIR,
  TOOLS_VOLUME,
  TUN_RESOURCE,
  VM_ENV,
  VM_LABEL,
  RUN_LABEL,
  blockDevice,
  cloudInitSecretDir,
  containerDiskSource,
  containerRootfsTar,
  podLinkName,
  volumeDir,
} from '../operator/pod-layout';

/** A Kubernetes object in plain JSON (the pod and its parts are not typed further here). */
type Json = Record<string, unknown>;

/** Settings of the operator installation that shape VM pods. */
export interface VmPodOptions {
  /** The operator image (launcher, converters, tools). */
  readonly image: string;
  /** Pull policy for the operator image. @default 'IfNotPresent' */
  readonly imagePullPolicy?: string;
  /** Block-mode PVCs (by volume name): attached as devices instead of mounted. @default none */
  readonly blockVolumes?: readonly string[];
  /** Extended resource each Multus network needs (from the NAD's `k8s.v1.cni.cncf.io/resourceName`). @default none */
  readonly networkResources?: Readonly<Record<string, string>>;
}

/** The VMM's memory overhead model, documented in the README: what the pod needs beyond guest RAM. */
export const OVERHEAD = {
  /** Cloud Hypervisor, dnsmasq and the pod's own processes. */
  baseBytes: 64n * 1024n * 1024n,
  /** Per vCPU thread (stacks, KVM run structures). */
  perVcpuBytes: 4n * 1024n * 1024n,
  /** Page tables and virtio buffers grow with guest memory: 1/128 of it. */
  guestMemoryDivisor: 128n,
} as const;

const vcpus = (spec: VirtualMachineSpec) =>
  (spec.instance.cpu?.sockets ?? 1) * (spec.instance.cpu?.coresPerSocket ?? 1);
const guestBytes = (spec: VirtualMachineSpec) => parseQuantity(spec.instance.memory?.size ?? '1Gi').num;

/** Bytes of memory the pod needs besides guest RAM. */
export function overheadBytes(spec: VirtualMachineSpec): bigint {
  return (
    OVERHEAD.baseBytes + OVERHEAD.perVcpuBytes * BigInt(vcpus(spec)) + guestBytes(spec) / OVERHEAD.guestMemoryDivisor
  );
}

/**
 * The launcher container's resources: the user's `resources` plus guest memory and overhead on `memory` (or, with
 * hugepages, guest memory on `hugepages-<size>` and only the overhead on `memory`), the KVM and TUN devices, and,
 * with dedicated CPUs, Guaranteed QoS (requests = limits, whole CPUs).
 */
export function vmPodResources(
  spec: VirtualMachineSpec,
  networkResources: readonly string[] = [],
): { requests: Json; limits: Json } {
  const requests: Json = { ...(spec.resources?.requests ?? {}) };
  const limits: Json = { ...(spec.resources?.limits ?? {}) };
  const hugepages = spec.instance.memory?.hugepages;
  const memory = formatBytes(overheadBytes(spec) + (hugepages ? 0n : guestBytes(spec)));
  if (requests.memory === undefined) requests.memory = memory;
  if (hugepages) {
    const key = `hugepages-${hugepages.pageSize ?? '2Mi'}`;
    const size = spec.instance.memory?.size ?? '1Gi';
    requests[key] ??= size;
    limits[key] ??= size;
  }
  if (spec.instance.cpu?.dedicatedCPUPlacement) {
    requests.cpu ??= String(vcpus(spec));
    limits.cpu ??= requests.cpu;
    limits.memory ??= requests.memory;
  }
  for (const r of [KVM_RESOURCE, TUN_RESOURCE, ...networkResources]) {
    requests[r] = String(Number(requests[r] ?? 0) + 1);
    limits[r] = requests[r];
  }
  return { requests, limits };
}

/** Which pod of a VM a name is for: the pod of run `run`, or the receiving pod of a migration during that run. */
export interface VmPodNameRole {
  /** The VM's run counter (status.restarts). */
  readonly run: number;
  /** UID of the VirtualMachineMigration whose receiving pod this is. */
  readonly migrationUid?: string;
}

/** Pod names are DNS labels here too (≤ 63), so they fit wherever a label or hostname must hold one. */
const POD_NAME_MAX = 63;

/**
 * The name of one pod of a VM: `vm-<name>-<uid hash>-<run>` for run N, `…-<run>m<migration uid>` for the receiving pod
 * of a migration. Stable, so creating it twice is harmless (the second create finds it and checks its owner), and
 * distinct by construction for every run and every migration target: the role suffix is kept whole and only the
 * VM name is shortened to fit 63 characters. The VM UID hash keeps VMs apart whose shortened names coincide, and a
 * VM from a recreated one of the same name.
 */
export function vmPodName(vmName: string, vmUid: string, role: VmPodNameRole): string {
  const uid = createHash('sha256').update(vmUid).digest('hex').slice(0, 5);
  const suffix = role.migrationUid ? `${role.run}m${role.migrationUid.replace(/-/g, '').slice(0, 8)}` : `${role.run}`;
  const tail = `-${uid}-${suffix}`;
  return `vm-${vmName.slice(0, POD_NAME_MAX - 3 - tail.length)}${tail}`;
}

const busybox = (...args: string[]) => [`${TOOLS_DIR}/busybox`, ...args];

/** How long the guest may take to shut down after the ACPI power button (spec.power.shutdownGracePeriodSeconds). */
const graceSeconds = (spec: VirtualMachineSpec) => spec.power?.shutdownGracePeriodSeconds ?? 60;
/** Size limit of the VM pod's run dir emptyDir. */
const RUN_DIR_SIZE_LIMIT = '64Mi';
/** The preStop hook outlasts the node daemon's hard-stop deadline by this much, so the daemon, not SIGTERM, ends CH. */
const PRESTOP_MARGIN_SECONDS = 5;
/** The kubelet's margin between the end of preStop and SIGKILL. */
const KILL_MARGIN_SECONDS = 10;

/** The guest's shutdown grace period of a VM pod, read back from the pod (for a pod whose VM is not at hand). */
export function guestGraceOfPod(terminationGracePeriodSeconds: number | undefined): number {
  return Math.max(0, (terminationGracePeriodSeconds ?? 0) - PRESTOP_MARGIN_SECONDS - KILL_MARGIN_SECONDS);
}

/** Which pod of the VM to render. */
export interface VmPodRole {
  /** The VM's run counter (status.restarts): each start gets a new pod name. */
  readonly run: number;
  /**
   * Render the receiving pod of this live migration (its UID): it must land on another node than the running pod
   * (required pod anti-affinity on the VM label) and the launcher waits for an incoming migration instead of a
   * VmConfig.
   */
  readonly migrationUid?: string;
}

/** Environment variable telling the launcher it prepares a migration target. */
export const MIGRATION_TARGET_ENV = 'KUBEVISOR_MIGRATION_TARGET';

/** Renders a VM pod. `vm` must carry metadata.uid (it owns the pod). */
export function renderVmPod(
  vm: KubevisorObject & { metadata: { uid?: string } },
  role: VmPodRole,
  options: VmPodOptions,
): Json {
  const spec = vm.spec as VirtualMachineSpec;
  const uid = vm.metadata.uid ?? '';
  const pull = options.imagePullPolicy ?? 'IfNotPresent';
  const block = new Set(options.blockVolumes ?? []);
  const operator = (name: string, args: string[]) => ({
    name,
    image: options.image,
    imagePullPolicy: pull,
    ...(args.length ? { args } : {}),
    volumeMounts: [] as Json[],
  });

  const volumes: Json[] = [
    // The launcher's files, CH's socket and event monitor, dnsmasq's leases: small, but CH appends events for as long
    // as the guest lives (a reboot loop), so the node's disk is protected by a limit.
    { name: RUN_VOLUME, emptyDir: { sizeLimit: RUN_DIR_SIZE_LIMIT } },
    { name: TOOLS_VOLUME, emptyDir: {} },
    // Holds only the node daemon's bind mounts. tmpfs, because the kubelet removes a disk-backed emptyDir with a
    // recursive delete that would go through a mount the daemon had not released yet (and delete a PVC's disk image);
    // a tmpfs is unmounted instead, which fails while a mount remains inside.
    { name: HOTPLUG_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
  ];
  const toolsMount = { name: TOOLS_VOLUME, mountPath: TOOLS_DIR };
  const initContainers: Json[] = [
    { ...operator('tools', []), command: ['cp', IMAGE_BUSYBOX, `${TOOLS_DIR}/busybox`], volumeMounts: [toolsMount] },
  ];
  const mounts: Json[] = [
    { name: RUN_VOLUME, mountPath: RUN_DIR },
    // The node daemon bind-mounts hot-plugged volumes in here from the host; HostToContainer makes them appear.
    { name: HOTPLUG_VOLUME, mountPath: HOTPLUG_DIR, mountPropagation: 'HostToContainer' },
  ];
  const devices: Json[] = [];

  const kernel = spec.instance.kernel;
  if (kernel) {
    volumes.push({ name: KERNEL_VOLUME, emptyDir: {} });
    const kernelMount = { name: KERNEL_VOLUME, mountPath: KERNEL_DIR };
    initContainers.push({
      name: 'kernel',
      image: kernel.image,
      ...(kernel.imagePullPolicy ? { imagePullPolicy: kernel.imagePullPolicy } : {}),
      command: busybox('cp', '/vmlinux', `${KERNEL_DIR}/vmlinux`),
      volumeMounts: [toolsMount, kernelMount],
    });
    mounts.push(kernelMount);
  }

  for (const v of spec.volumes ?? []) {
    const mount = { name: volumeName(v), mountPath: volumeDir(v.name) };
    if (v.containerDisk) {
      volumes.push({ name: volumeName(v), emptyDir: {} });
      initContainers.push({
        name: `disk-${v.name}`,
        image: v.containerDisk.image,
        ...(v.containerDisk.imagePullPolicy ? { imagePullPolicy: v.containerDisk.imagePullPolicy } : {}),
        command: busybox('cp', '-r', '/disk', containerDiskSource(v.name)),
        volumeMounts: [toolsMount, mount],
      });
      initContainers.push({
        ...operator(`convert-${v.name}`, ['launcher', 'prepare-container-disk', v.name]),
        volumeMounts: [mount],
      });
      mounts.push(mount);
    } else if (v.containerRootfs) {
      volumes.push({ name: volumeName(v), emptyDir: {} });
      initContainers.push({
        name: `rootfs-${v.name}`,
        image: v.containerRootfs.image,
        ...(v.containerRootfs.imagePullPolicy ? { imagePullPolicy: v.containerRootfs.imagePullPolicy } : {}),
        // The image's own filesystem, without the kernel's virtual filesystems and our mounts.
        command: busybox(
          'tar',
          '-C',
          '/',
          '-cf',
          containerRootfsTar(v.name),
          '--exclude=./proc',
          '--exclude=./sys',
          '--exclude=./dev',
          '--exclude=./mnt',
          '--exclude=./var/run/kubevisor-tools',
          '.',
        ),
        volumeMounts: [toolsMount, mount],
      });
      initContainers.push({
        ...operator(`mkfs-${v.name}`, ['launcher', 'prepare-container-rootfs', v.name, v.containerRootfs.size]),
        volumeMounts: [mount],
      });
      mounts.push(mount);
    } else if (v.persistentVolumeClaim || v.dataVolume) {
      const claimName = v.persistentVolumeClaim?.claimName ?? v.dataVolume!.volumeName;
      volumes.push({ name: volumeName(v), persistentVolumeClaim: { claimName } });
      if (block.has(v.name)) devices.push({ name: volumeName(v), devicePath: blockDevice(v.name) });
      else mounts.push(mount);
    } else if (v.cloudInit) {
      for (const [kind, secret] of [
        ['userdata', v.cloudInit.userDataSecretName],
        ['networkdata', v.cloudInit.networkDataSecretName],
      ] as const) {
        if (!secret) continue;
        volumes.push({ name: `cloudinit-${kind}`, secret: { secretName: secret } });
        mounts.push({ name: `cloudinit-${kind}`, mountPath: cloudInitSecretDir(kind), readOnly: true });
      }
    }
  }
  if (spec.instance.memory?.hugepages) {
    volumes.push({
      name: 'hugepages',
      emptyDir: { medium: `HugePages-${spec.instance.memory.hugepages.pageSize ?? '2Mi'}` },
    });
    mounts.push({ name: 'hugepages', mountPath: HUGEPAGES_DIR });
  }

  const networks = spec.networks ?? [];
  const multus = networks
    .map((n, i) => ({ n, i }))
    .filter(({ n }) => n.multus)
    .map(({ n, i }) => {
      const [ns, name] = n.multus!.networkName.includes('/')
        ? n.multus!.networkName.split('/')
        : [undefined, n.multus!.networkName];
      const mac = spec.instance.interfaces?.find((x) => x.name === n.name)?.mac;
      return { name, ...(ns ? { namespace: ns } : {}), interface: podLinkName(n, i), ...(mac ? { mac } : {}) };
    });
  const networkResources = networks.flatMap((n) =>
    options.networkResources?.[n.name] ? [options.networkResources[n.name]] : [],
  );

  const labels = {
    ...(vm.metadata.labels ?? {}),
    [VM_LABEL]: vm.metadata.name,
    [RUN_LABEL]: String(role.run),
    'app.kubernetes.io/managed-by': 'kubevisor',
  };
  const annotations: Record<string, string> = { ...(vm.metadata.annotations ?? {}) };
  // The volumes this pod is created with: any volume the VM gains later is a hot-plug.
  annotations[POD_VOLUMES_ANNOTATION] = (spec.volumes ?? []).map((v) => v.name).join(',');
  if (multus.length) annotations['k8s.v1.cni.cncf.io/networks'] = JSON.stringify(multus);

  const vmData = {
    apiVersion: vm.apiVersion,
    kind: vm.kind,
    metadata: { name: vm.metadata.name, namespace: vm.metadata.namespace, uid },
    spec,
  };
  const launcher: Json = {
    name: LAUNCHER_CONTAINER,
    image: options.image,
    imagePullPolicy: pull,
    command: [LAUNCHER_ENTRYPOINT],
    env: [
      { name: VM_ENV, value: JSON.stringify(vmData) },
      ...(role.migrationUid ? [{ name: MIGRATION_TARGET_ENV, value: 'true' }] : []),
      ...(multus.length
        ? [
            {
              name: NETWORK_STATUS_ENV,
              valueFrom: { fieldRef: { fieldPath: "metadata.annotations['k8s.v1.cni.cncf.io/network-status']" } },
            },
          ]
        : []),
    ],
    resources: vmPodResources(spec, networkResources),
    // Bridges, TAPs and NAT rules need NET_ADMIN inside the pod's own network namespace; dnsmasq needs NET_RAW and
    // NET_BIND_SERVICE; VFIO needs a raised memlock limit (SYS_RESOURCE). No privileged mode, no host namespaces.
    securityContext: {
      privileged: false,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW', 'NET_BIND_SERVICE', 'SYS_RESOURCE'] },
    },
    // Exec'd in the container, so it ends the moment CH does (the container's processes die with it): a guest that
    // shuts down in 3 s ends the pod in 3 s, not after the whole grace period as a `sleep` action would.
    lifecycle: {
      preStop: { exec: { command: [IMAGE_BUSYBOX, 'sleep', String(graceSeconds(spec) + PRESTOP_MARGIN_SECONDS)] } },
    },
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: mounts,
    ...(devices.length ? { volumeDevices: devices } : {}),
    ...(spec.livenessProbe ? { livenessProbe: spec.livenessProbe } : {}),
    ...(spec.readinessProbe ? { readinessProbe: spec.readinessProbe } : {}),
  };

  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: vmPodName(vm.metadata.name, uid, {
        run: role.run,
        ...(role.migrationUid ? { migrationUid: role.migrationUid } : {}),
      }),
      ...(vm.metadata.namespace ? { namespace: vm.metadata.namespace } : {}),
      labels,
      annotations,
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: 'VirtualMachine',
          name: vm.metadata.name,
          uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      restartPolicy: 'Never',
      hostname: vm.metadata.name,
      // The node daemon gives the guest the VM's grace period after the ACPI button, then stops it hard; the preStop
      // hook holds the kubelet's SIGTERM a little longer (SIGTERM would kill the guest at once), and the rest is the
      // kubelet's margin.
      terminationGracePeriodSeconds: graceSeconds(spec) + PRESTOP_MARGIN_SECONDS + KILL_MARGIN_SECONDS,
      automountServiceAccountToken: false,
      // Masquerade routes between the pod link and the guest bridge. ip_forward is namespaced but not in the kubelet's
      // safe set: nodes allow it with --allowed-unsafe-sysctls=net.ipv4.ip_forward (the node setup does this), which
      // beats Virtink's privileged init container.
      ...(spec.instance.interfaces?.some((i) => i.masquerade)
        ? { securityContext: { sysctls: [{ name: 'net.ipv4.ip_forward', value: '1' }] } }
        : {}),
      enableServiceLinks: false,
      ...(spec.nodeSelector ? { nodeSelector: spec.nodeSelector } : {}),
      ...(affinityFor(spec, vm.metadata.name, role) ?? {}),
      ...(spec.tolerations ? { tolerations: spec.tolerations } : {}),
      initContainers,
      containers: [launcher],
      volumes,
    },
  };
}

/** The user's affinity, plus for a migration target a required anti-affinity to the VM's other pod. */
function affinityFor(spec: VirtualMachineSpec, vmName: string, role: VmPodRole): { affinity: Json } | undefined {
  if (!role.migrationUid) return spec.affinity ? { affinity: spec.affinity } : undefined;
  const affinity = JSON.parse(JSON.stringify(spec.affinity ?? {})) as Json;
  const anti = (affinity.podAntiAffinity ??= {}) as Json;
  const required = (anti.requiredDuringSchedulingIgnoredDuringExecution ??= []) as Json[];
  required.push({ labelSelector: { matchLabels: { [VM_LABEL]: vmName } }, topologyKey: 'kubernetes.io/hostname' });
  return { affinity };
}

function volumeName(v: VmVolume): string {
  return `vol-${v.name}`.slice(0, 63);
}

/** The VM pod an attachment pod serves: it must run on that pod's node and go away with it. */
export interface AttachmentTarget {
  readonly name: string;
  readonly uid: string;
  readonly nodeName: string;
}

/** The attachment pod's name: the VM pod's, plus a hash of the volume (volume names are up to 63 characters). */
export function attachmentPodName(vmPodName: string, volume: string): string {
  const h = createHash('sha256').update(volume).digest('hex').slice(0, 8);
  return `${vmPodName.slice(0, 63 - 4 - h.length)}-hp-${h}`;
}

/**
 * The attachment pod of a hot-plugged volume: it mounts the PVC on the VM pod's node (bound there directly, no
 * scheduling) so that the kubelet attaches and mounts it; the node daemon takes the volume from there. It runs
 * nothing but a sleeping busybox, and is owned by the VM pod, so it goes when that pod goes.
 */
export function renderAttachmentPod(
  vm: KubevisorObject & { metadata: { uid?: string } },
  target: AttachmentTarget,
  volume: VmVolume,
  options: VmPodOptions,
): Json {
  const claimName = volume.persistentVolumeClaim?.claimName ?? volume.dataVolume?.volumeName;
  if (!claimName) throw new Error(`volume ${volume.name} is not a persistentVolumeClaim or dataVolume`);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: attachmentPodName(target.name, volume.name),
      ...(vm.metadata.namespace ? { namespace: vm.metadata.namespace } : {}),
      labels: {
        [HOTPLUG_VM_LABEL]: vm.metadata.name,
        [HOTPLUG_VOLUME_LABEL]: volume.name,
        'app.kubernetes.io/managed-by': 'kubevisor',
      },
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'Pod',
          name: target.name,
          uid: target.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      nodeName: target.nodeName,
      restartPolicy: 'Always',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 1,
      securityContext: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'attach',
          image: options.image,
          imagePullPolicy: options.imagePullPolicy ?? 'IfNotPresent',
          command: [IMAGE_BUSYBOX, 'sleep', '2147483647'],
          resources: { requests: { cpu: '1m', memory: '8Mi' }, limits: { memory: '16Mi' } },
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
          },
          volumeMounts: [{ name: 'volume', mountPath: ATTACHMENT_MOUNT }],
        },
      ],
      volumes: [{ name: 'volume', persistentVolumeClaim: { claimName } }],
    },
  };
}
