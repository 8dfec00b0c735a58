/**
 * The VM pod renderer: one VirtualMachine (as stored, defaults applied) in, the pod that runs it out. The
 * controller creates exactly this object; golden tests pin it per volume type and binding.
 *
 * Pod shape:
 * - init `tools` (operator image) copies a static busybox into an emptyDir, so user images built FROM scratch
 *   (kernels, disks, rootfs) can be copied out of without shipping any tools themselves;
 * - init `kernel` copies /vmlinux (and /initrd when `kernel.initrd`) out of the kernel image; per containerDisk volume, init `disk-<vol>` copies
 *   /disk out and `convert-<vol>` (operator image) turns it into a raw image; per containerRootfs volume,
 *   `rootfs-<vol>` tars the image's filesystem and `mkfs-<vol>` builds the ext4 image of the requested size;
 * - main container `launcher` (operator image) prepares network and cloud-init, writes the VmConfig, then execs
 *   Cloud Hypervisor with only its API socket. It holds the guest's resources (see {@link vmPodResources}) and reads
 *   the VM from the pod's own Secret ({@link renderVmPodSecret}), never from an environment variable.
 *
 * Security contexts (Pod Security baseline) are in vm-pod-security.ts, resources and size limits in
 * vm-pod-resources.ts, which VM labels and annotations reach the pod (a deny-list of domains) in pod-metadata.ts, what
 * of a VM stored before the current rules the pod leaves out in vm-pod-stored.ts.
 */
import { createHash } from 'node:crypto';
import type { KubevisorObject, VirtualMachineSpec, VmVolume } from '../api';
import { KVM_NODE_LABEL } from '../api';
import {
  ATTACHMENT_MOUNT,
  CLOUD_INIT_DIR,
  CLOUD_INIT_VOLUME,
  HOTPLUG_DIR,
  HOTPLUG_VM_LABEL,
  HOTPLUG_VOLUME,
  HOTPLUG_VOLUME_LABEL,
  HUGEPAGES_DIR,
  IMAGE_BUSYBOX,
  POD_VOLUMES_ANNOTATION,
  KERNEL_DIR,
  KERNEL_VOLUME,
  LAUNCHER_CONTAINER,
  LAUNCHER_ENTRYPOINT,
  NETWORK_STATUS_ENV,
  RUN_DIR,
  RUN_VOLUME,
  TOOLS_DIR,
  TOOLS_VOLUME,
  VM_LABEL,
  VM_SECRET_DIR,
  VM_SECRET_KEY,
  RUN_LABEL,
  blockDevice,
  cloudInitSecretDir,
  containerDiskSource,
  containerRootfsTar,
  podLinkName,
  volumeDir,
} from '../operator/pod-layout';
import { podMetadataFrom } from './pod-metadata';
import {
  EMPTY_DIR_LIMITS,
  initContainerResources,
  overheadBytes,
  OVERHEAD,
  vmPodResources,
  volumeSizeLimit,
} from './vm-pod-resources';
import {
  CONVERT_SECURITY_CONTEXT,
  IMAGE_COPY_SECURITY_CONTEXT,
  LAUNCHER_SECURITY_CONTEXT,
  MKFS_SECURITY_CONTEXT,
  POD_SECURITY_CONTEXT,
  TOOLS_SECURITY_CONTEXT,
} from './vm-pod-security';
import type { VmPodRole } from './vm-pod-name';
import { podNameOf, vmOwner, vmPodName } from './vm-pod-name';
import { podProbe } from './vm-pod-probe';
import { podTolerations } from './vm-pod-stored';
import { VM_SECRET_VOLUME, renderVmPodSecret, secretVolume } from './vm-pod-secret';

export { OVERHEAD, overheadBytes, vmPodResources, podProbe, renderVmPodSecret, vmPodName };
export type { VmPodNameRole, VmPodRole } from './vm-pod-name';

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
  /**
   * Node labels the pod must match besides the VM's nodeSelector: for a migration's receiving pod, the source node's
   * CPU features (`kubevisor.io/cpu-features`), because the guest keeps the CPU it booted on. @default none
   */
  readonly requiredNodeLabels?: Readonly<Record<string, string>>;
}

const busybox = (...args: string[]) => [`${TOOLS_DIR}/busybox`, ...args];

/** How long the guest may take to shut down after the ACPI power button (spec.power.shutdownGracePeriodSeconds). */
const graceSeconds = (spec: VirtualMachineSpec) => spec.power?.shutdownGracePeriodSeconds ?? 60;
/** The preStop hook outlasts the node daemon's hard-stop deadline by this much, so the daemon, not SIGTERM, ends CH. */
const PRESTOP_MARGIN_SECONDS = 5;
/** The kubelet's margin between the end of preStop and SIGKILL. */
const KILL_MARGIN_SECONDS = 10;

/** The guest's shutdown grace period of a VM pod, read back from the pod (for a pod whose VM is not at hand). */
export function guestGraceOfPod(terminationGracePeriodSeconds: number | undefined): number {
  return Math.max(0, (terminationGracePeriodSeconds ?? 0) - PRESTOP_MARGIN_SECONDS - KILL_MARGIN_SECONDS);
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
  const podName = podNameOf(vm, role);
  const pull = options.imagePullPolicy ?? 'IfNotPresent';
  const block = new Set(options.blockVolumes ?? []);
  const initResources = initContainerResources(spec);
  const operator = (name: string, args: string[]) => ({
    name,
    image: options.image,
    imagePullPolicy: pull,
    ...(args.length ? { args } : {}),
    resources: initResources,
    volumeMounts: [] as Json[],
  });
  // A user image's init container runs only our busybox; its pull policy defaults to Always (see api/common.ts).
  const fromImage = (name: string, image: string, imagePullPolicy: string | undefined, command: string[]) => ({
    name,
    image,
    imagePullPolicy: imagePullPolicy ?? 'Always',
    command,
    resources: initResources,
    securityContext: IMAGE_COPY_SECURITY_CONTEXT,
  });

  const volumes: Json[] = [
    // The launcher's files, CH's socket and event monitor, dnsmasq's leases: small, but CH appends events for as long
    // as the guest lives (a reboot loop), so the node's disk is protected by a limit.
    { name: RUN_VOLUME, emptyDir: { sizeLimit: EMPTY_DIR_LIMITS.run } },
    { name: TOOLS_VOLUME, emptyDir: { sizeLimit: EMPTY_DIR_LIMITS.tools } },
    // Holds only the node daemon's bind mounts. tmpfs, because the kubelet removes a disk-backed emptyDir with a
    // recursive delete that would go through a mount the daemon had not released yet (and delete a PVC's disk image);
    // a tmpfs is unmounted instead, which fails while a mount remains inside.
    { name: HOTPLUG_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: EMPTY_DIR_LIMITS.hotplug } },
    secretVolume(VM_SECRET_VOLUME, podName, VM_SECRET_KEY),
  ];
  const toolsMount = { name: TOOLS_VOLUME, mountPath: TOOLS_DIR };
  const initContainers: Json[] = [
    {
      ...operator('tools', []),
      command: ['cp', IMAGE_BUSYBOX, `${TOOLS_DIR}/busybox`],
      securityContext: TOOLS_SECURITY_CONTEXT,
      volumeMounts: [toolsMount],
    },
  ];
  const mounts: Json[] = [
    { name: RUN_VOLUME, mountPath: RUN_DIR },
    // The node daemon bind-mounts hot-plugged volumes in here from the host; HostToContainer makes them appear.
    { name: HOTPLUG_VOLUME, mountPath: HOTPLUG_DIR, mountPropagation: 'HostToContainer' },
    { name: VM_SECRET_VOLUME, mountPath: VM_SECRET_DIR, readOnly: true },
  ];
  const devices: Json[] = [];

  const kernel = spec.instance.kernel;
  if (kernel) {
    volumes.push({ name: KERNEL_VOLUME, emptyDir: { sizeLimit: EMPTY_DIR_LIMITS.kernel } });
    const kernelMount = { name: KERNEL_VOLUME, mountPath: KERNEL_DIR };
    initContainers.push({
      // -P: a link is copied as a link (and then refused by the launcher), never followed.
      ...fromImage(
        'kernel',
        kernel.image,
        kernel.imagePullPolicy,
        kernel.initrd
          ? busybox('cp', '-P', '/vmlinux', '/initrd', `${KERNEL_DIR}/`)
          : busybox('cp', '-P', '/vmlinux', `${KERNEL_DIR}/vmlinux`),
      ),
      volumeMounts: [toolsMount, kernelMount],
    });
    mounts.push(kernelMount);
  }

  for (const v of spec.volumes ?? []) {
    const mount = { name: volumeName(v), mountPath: volumeDir(v.name) };
    if (v.containerDisk) {
      volumes.push({ name: volumeName(v), emptyDir: { sizeLimit: volumeSizeLimit(v) } });
      initContainers.push({
        // -R -P: links, /disk itself included, are copied as links; the convert step refuses them.
        ...fromImage(
          `disk-${v.name}`,
          v.containerDisk.image,
          v.containerDisk.imagePullPolicy,
          busybox('cp', '-R', '-P', '/disk', containerDiskSource(v.name)),
        ),
        volumeMounts: [toolsMount, mount],
      });
      initContainers.push({
        ...operator(`convert-${v.name}`, ['launcher', 'prepare-container-disk', v.name]),
        securityContext: CONVERT_SECURITY_CONTEXT,
        volumeMounts: [mount],
      });
      mounts.push(mount);
    } else if (v.containerRootfs) {
      volumes.push({ name: volumeName(v), emptyDir: { sizeLimit: volumeSizeLimit(v) } });
      initContainers.push({
        // The image's own filesystem, without the kernel's virtual filesystems and our mounts. busybox tar stores
        // links as links (it follows them only with -h).
        ...fromImage(
          `rootfs-${v.name}`,
          v.containerRootfs.image,
          v.containerRootfs.imagePullPolicy,
          busybox(
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
            '--exclude=./run/kubevisor-tools',
            '.',
          ),
        ),
        volumeMounts: [toolsMount, mount],
      });
      initContainers.push({
        ...operator(`mkfs-${v.name}`, ['launcher', 'prepare-container-rootfs', v.name, v.containerRootfs.size]),
        securityContext: MKFS_SECURITY_CONTEXT,
        volumeMounts: [mount],
      });
      mounts.push(mount);
    } else if (v.persistentVolumeClaim || v.dataVolume) {
      const claimName = v.persistentVolumeClaim?.claimName ?? v.dataVolume!.volumeName;
      volumes.push({ name: volumeName(v), persistentVolumeClaim: { claimName } });
      if (block.has(v.name)) devices.push({ name: volumeName(v), devicePath: blockDevice(v.name) });
      else mounts.push(mount);
    } else if (v.cloudInit) {
      // Staged plaintext and the ISO live in memory only.
      volumes.push({ name: CLOUD_INIT_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: EMPTY_DIR_LIMITS.cloudInit } });
      mounts.push({ name: CLOUD_INIT_VOLUME, mountPath: CLOUD_INIT_DIR });
      for (const [kind, secret] of [
        ['userdata', v.cloudInit.userDataSecretName],
        ['networkdata', v.cloudInit.networkDataSecretName],
      ] as const) {
        if (!secret) continue;
        // Only the key the launcher reads: the Secret may hold others that are none of the pod's business. Optional:
        // without the Secret or its key the pod still starts, and the launcher fails with a line naming the field and
        // the Secret (the VM's status shows it) instead of the pod waiting in ContainerCreating with no word on the VM.
        volumes.push(secretVolume(`cloudinit-${kind}`, secret, 'value', true));
        mounts.push({ name: `cloudinit-${kind}`, mountPath: cloudInitSecretDir(kind), readOnly: true });
      }
    }
  }
  if (spec.instance.memory?.hugepages) {
    // Bounded by the pod's hugepages-<size> limit (the hugetlb cgroup), not by a size limit.
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

  // The VM's own labels and annotations minus the reserved domains (pod-metadata.ts); kubevisor's keys last, so none is
  // overridden.
  const labels = {
    ...podMetadataFrom(vm.metadata.labels),
    [VM_LABEL]: vm.metadata.name,
    [RUN_LABEL]: String(role.run),
    'app.kubernetes.io/managed-by': 'kubevisor',
  };
  const annotations: Record<string, string> = podMetadataFrom(vm.metadata.annotations);
  // The volumes this pod is created with: any volume the VM gains later is a hot-plug.
  annotations[POD_VOLUMES_ANNOTATION] = (spec.volumes ?? []).map((v) => v.name).join(',');
  if (multus.length) annotations['k8s.v1.cni.cncf.io/networks'] = JSON.stringify(multus);

  // A probe the pod cannot run (a VM stored before the probe rules) is left off; the controller says so.
  const liveness = spec.livenessProbe && podProbe(spec.livenessProbe);
  const readiness = spec.readinessProbe && podProbe(spec.readinessProbe);
  const tolerations = podTolerations(spec);
  // The ports masquerade forwards to the guest, declared on the container: informational (the pod IP answers on them
  // whether declared or not), but what Services, `kubectl describe` and port-forward tools read.
  const forwarded = (spec.instance.interfaces ?? []).flatMap((i) =>
    (i.masquerade?.ports ?? []).map((p) => ({ containerPort: p.port, protocol: p.protocol ?? 'TCP' })),
  );
  const ports = forwarded.filter(
    (p, i) => forwarded.findIndex((q) => q.containerPort === p.containerPort && q.protocol === p.protocol) === i,
  );
  const launcher: Json = {
    name: LAUNCHER_CONTAINER,
    image: options.image,
    imagePullPolicy: pull,
    command: [LAUNCHER_ENTRYPOINT],
    ...(ports.length ? { ports } : {}),
    // Nothing of the VM here: environment variables are shown to everyone who may read pods.
    ...(role.migrationUid || multus.length
      ? {
          env: [
            ...(role.migrationUid ? [{ name: MIGRATION_TARGET_ENV, value: 'true' }] : []),
            ...(multus.length
              ? [
                  {
                    name: NETWORK_STATUS_ENV,
                    valueFrom: {
                      fieldRef: { fieldPath: "metadata.annotations['k8s.v1.cni.cncf.io/network-status']" },
                    },
                  },
                ]
              : []),
          ],
        }
      : {}),
    resources: vmPodResources(spec, networkResources),
    securityContext: LAUNCHER_SECURITY_CONTEXT,
    // Exec'd in the container, so it ends the moment CH does (the container's processes die with it): a guest that
    // shuts down in 3 s ends the pod in 3 s, not after the whole grace period as a `sleep` action would.
    lifecycle: {
      preStop: { exec: { command: [IMAGE_BUSYBOX, 'sleep', String(graceSeconds(spec) + PRESTOP_MARGIN_SECONDS)] } },
    },
    // Only the launcher's own failure line: the container log holds the guest's serial console, which must never
    // become the termination message (the controller turns that into an Event and a condition).
    terminationMessagePolicy: 'File',
    volumeMounts: mounts,
    ...(devices.length ? { volumeDevices: devices } : {}),
    ...(liveness ? { livenessProbe: liveness } : {}),
    ...(readiness ? { readinessProbe: readiness } : {}),
  };

  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName,
      ...(vm.metadata.namespace ? { namespace: vm.metadata.namespace } : {}),
      labels,
      annotations,
      ownerReferences: [vmOwner(vm)],
    },
    spec: {
      restartPolicy: 'Never',
      hostname: vm.metadata.name,
      // The node daemon gives the guest the VM's grace period after the ACPI button, then stops it hard; the preStop
      // hook holds the kubelet's SIGTERM a little longer (SIGTERM would kill the guest at once), and the rest is the
      // kubelet's margin.
      terminationGracePeriodSeconds: graceSeconds(spec) + PRESTOP_MARGIN_SECONDS + KILL_MARGIN_SECONDS,
      automountServiceAccountToken: false,
      // No sysctls: masquerade's net.ipv4.ip_forward is set by the node daemon inside the pod's network namespace.
      securityContext: POD_SECURITY_CONTEXT,
      enableServiceLinks: false,
      // Only nodes the node setup prepared (KVM, device plugins, the node daemon); the user's selector narrows further.
      nodeSelector: { ...(spec.nodeSelector ?? {}), ...(options.requiredNodeLabels ?? {}), [KVM_NODE_LABEL]: 'true' },
      ...(affinityFor(spec, vm.metadata.name, role) ?? {}),
      ...(tolerations ? { tolerations } : {}),
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
