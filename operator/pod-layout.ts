/**
 * The VM pod's layout: where each part of the launch path finds or leaves its files. The pod renderer (controller),
 * the launcher (inside the pod) and the node daemon (through the kubelet's pod directory) all read these names
 * from here, so they cannot drift apart.
 */

/** emptyDir shared by every container of the VM pod; the daemon reaches it from the host (see {@link hostEmptyDir}). */
export const RUN_DIR = '/var/run/kubevisor';
/** Name of the emptyDir volume mounted at {@link RUN_DIR}. */
export const RUN_VOLUME = 'kubevisor-run';
/** Cloud Hypervisor's API socket: the only way to talk to CH. */
export const CH_SOCKET = `${RUN_DIR}/ch.sock`;
/** The VmConfig the launcher writes; the daemon sends it with vm.create. */
export const VM_CONFIG = `${RUN_DIR}/vm-config.json`;
/**
 * The launcher's last act: this marker says the pod is prepared (and whether a VmConfig was written), so the node
 * daemon knows that the next thing to appear is CH's socket — no guessing with sleeps.
 */
export const LAUNCHER_DONE = `${RUN_DIR}/launcher-done`;
/**
 * The pod network is prepared from outside the pod (the VM pod holds no NET_ADMIN): the launcher writes the request
 * marker when it starts, the node daemon enters the pod's network namespace, builds bridges, TAPs and the nftables
 * rules, and writes what the launcher needs next (devices, DHCP leases) to the ready file. See operator/netprep.
 */
export const NETWORK_REQUEST = `${RUN_DIR}/network-request`;
export const NETWORK_READY = `${RUN_DIR}/network-ready.json`;
/** Cloud Hypervisor's event monitor output (`--event-monitor path=…`), which the node daemon follows. */
export const CH_EVENTS = `${RUN_DIR}/ch-events`;
/** Unix sockets of a live migration in the VM pod: CH receives on rx.sock (target) and sends to tx.sock (source). */
export const MIGRATION_RX_SOCKET = `${RUN_DIR}/rx.sock`;
export const MIGRATION_TX_SOCKET = `${RUN_DIR}/tx.sock`;
/** A run-dir path as seen from the host, relative to the run dir (what the node daemon opens beneath it). */
export const inRunDir = (path: string) => {
  if (!path.startsWith(`${RUN_DIR}/`)) throw new Error(`${path} is not in the run dir ${RUN_DIR}`);
  return path.slice(RUN_DIR.length + 1);
};
/** Why the launch failed, one line, for the pod's termination message. */
export const TERMINATION_LOG = '/dev/termination-log';
/**
 * Memory-backed emptyDir (tmpfs) for cloud-init: the plaintext user-data and network-config the launcher stages, and
 * the NoCloud ISO made of them, never touch the node's disk. Mounted inside the run dir, so a path below it is still a
 * run-dir path for anything that looks at the container's view.
 */
export const CLOUD_INIT_DIR = `${RUN_DIR}/cloud-init`;
export const CLOUD_INIT_VOLUME = 'kubevisor-cloudinit';
/** Where the launcher stages the NoCloud files; removed as soon as the ISO is built, or its build failed. */
export const CLOUD_INIT_STAGING = `${CLOUD_INIT_DIR}/staging`;
/** The NoCloud cloud-init image the launcher builds. */
export const CLOUD_INIT_ISO = `${CLOUD_INIT_DIR}/cloud-init.iso`;
/**
 * The VirtualMachine the VM pod runs (JSON: apiVersion, kind, metadata with uid, spec), as a file from a Secret the
 * controller creates for each pod (named like the pod, owned by it). Not an environment variable: those are shown to
 * everyone who may read pods, and one string there is limited to 128 KiB, less than a VM with maximal user-data.
 */
export const VM_SECRET_DIR = '/var/run/kubevisor-secrets/vm';
export const VM_SECRET_KEY = 'vm.json';
export const VM_FILE = `${VM_SECRET_DIR}/${VM_SECRET_KEY}`;
/**
 * Environment variable that may carry the VirtualMachine instead, for a launcher run by hand or by a test; read only
 * when {@link VM_FILE} does not exist. The pod renderer never sets it.
 */
export const VM_ENV = 'KUBEVISOR_VM';
/** Environment variable with the Multus network-status annotation (downward API). */
export const NETWORK_STATUS_ENV = 'KUBEVISOR_NETWORK_STATUS';

/** Where a volume's data is mounted in the VM pod. */
export const volumeDir = (volume: string) => `/mnt/${volume}`;
/** The raw disk image a containerDisk init container leaves. */
export const containerDiskImage = (volume: string) => `${volumeDir(volume)}/disk.raw`;
/** The ext4 image a containerRootfs init container leaves. */
export const containerRootfsImage = (volume: string) => `${volumeDir(volume)}/rootfs.raw`;
/** A filesystem-mode PVC or DataVolume holds its disk as this file (as KubeVirt and Virtink do). */
export const pvcDiskImage = (volume: string) => `${volumeDir(volume)}/disk.img`;
/** A block-mode PVC or DataVolume appears as this device. */
export const blockDevice = (volume: string) => `/dev/kubevisor/${volume}`;
/** The kernel an init container copies out of the kernel image. */
export const KERNEL_PATH = '/mnt/kernel/vmlinux';
/** Where the kernel init container copies the kernel image's /initrd (instance.kernel.initrd). */
export const INITRD_PATH = '/mnt/kernel/initrd';

/** Pod-side link of network i: eth0 for the pod network, net<i> for Multus networks (Multus `interface`). */
export const podLinkName = (network: { pod?: unknown }, index: number) => (network.pod ? 'eth0' : `net${index}`);
/** TAP device the guest NIC of a pod link uses. */
export const tapName = (link: string) => `tap-${link}`.slice(0, 15);
/** Bridge joining a pod link (or the masquerade gateway) and its TAP. */
export const bridgeName = (link: string) => `br-${link}`.slice(0, 15);

/** Where the kubelet keeps a pod's emptyDir volume on the host (its layout; the node daemon reaches pods there). */
export const hostEmptyDir = (kubeletRoot: string, podUid: string, volume: string) =>
  `${kubeletRoot}/pods/${podUid}/volumes/kubernetes.io~empty-dir/${volume}`;

// --- pod structure (used by the VM pod renderer) ---------------------------------------------------------

/** emptyDir where the first init container puts static tools (busybox) for user images built FROM scratch. */
export const TOOLS_DIR = '/var/run/kubevisor-tools';
export const TOOLS_VOLUME = 'kubevisor-tools';
/** Static busybox inside the operator image, copied into {@link TOOLS_DIR}. */
export const IMAGE_BUSYBOX = '/usr/lib/kubevisor/busybox';
/** emptyDir holding the kernel copied out of the kernel image. */
export const KERNEL_VOLUME = 'kubevisor-kernel';
export const KERNEL_DIR = '/mnt/kernel';
/** Where a containerDisk init container copies the image's /disk contents, before conversion to raw. */
export const containerDiskSource = (volume: string) => `${volumeDir(volume)}/source`;
/** Where a containerRootfs init container leaves a tar of the image's filesystem, before mkfs.ext4. */
export const containerRootfsTar = (volume: string) => `${volumeDir(volume)}/rootfs.tar`;
/** Where a cloud-init Secret is mounted (only its key `value`, which holds the data). */
export const cloudInitSecretDir = (kind: 'userdata' | 'networkdata') => `/var/run/kubevisor-secrets/${kind}`;
/** Hugepages mount for guest memory. */
export const HUGEPAGES_DIR = '/dev/hugepages';
/** The VM pod's main container. */
export const LAUNCHER_CONTAINER = 'launcher';
/** Its command in the operator image: runs `kubevisor launcher`, then execs Cloud Hypervisor (operator/launcher/entrypoint.sh). */
export const LAUNCHER_ENTRYPOINT = '/usr/lib/kubevisor/entrypoint.sh';
/** The VM pod's labels (constructs/vm-pod-labels.ts: users select on them too). */
export { RUN_LABEL, VM_LABEL } from '../constructs/vm-pod-labels';
/**
 * Hot-plug. A VM pod's volumes are fixed when it is created, so a volume added to a running VM reaches it another
 * way: the controller creates an attachment pod on the VM's node that mounts the PVC; the node daemon bind-mounts that
 * volume from the attachment pod's directory into this emptyDir of the VM pod (mounted with HostToContainer
 * propagation, so the new mount appears inside the running container) and tells CH with vm.add-disk.
 */
export const HOTPLUG_DIR = '/var/run/kubevisor-hotplug';
export const HOTPLUG_VOLUME = 'kubevisor-hotplug';
/** Where a hot-plugged filesystem-mode volume's disk image appears in the VM pod. */
export const hotplugDiskImage = (volume: string) => `${HOTPLUG_DIR}/${volume}/disk.img`;
/** CH device id of a hot-plugged disk (device ids are one namespace across kinds; see interfaceDeviceId). */
export const hotplugDeviceId = (volume: string) => `hotplug-${volume}`;
/** Label on attachment pods naming the VM they attach a volume to, and the volume. */
export const HOTPLUG_VM_LABEL = 'kubevisor.io/hotplug-vm';
export const HOTPLUG_VOLUME_LABEL = 'kubevisor.io/hotplug-volume';
/** Annotation on a VM pod listing the volumes it was created with (comma-separated), so hot-plugs are known. */
export const POD_VOLUMES_ANNOTATION = 'kubevisor.io/volumes';
/** Where an attachment pod mounts its volume. */
export const ATTACHMENT_MOUNT = '/hotplug';

/** Extended resources the node daemon's device plugins serve, so the VM pod needs no privileges for them. */
export const KVM_RESOURCE = 'devices.kubevisor.io/kvm';
export const TUN_RESOURCE = 'devices.kubevisor.io/tun';

// --- launcher (inside the VM pod) -------------------------------------------------------------------------

/** Firmware for VMs without instance.kernel: rust-hypervisor-firmware (a PVH ELF) shipped in the operator image. */
export const FIRMWARE_PATH = '/usr/share/cloud-hypervisor/hypervisor-fw';
/** The file of a cloud-init Secret the launcher reads: Secrets for cloud-init carry their data under the key `value`. */
export const cloudInitSecretFile = (kind: 'userdata' | 'networkdata') => `${cloudInitSecretDir(kind)}/value`;
/**
 * dnsmasq's files for the bridge it serves. The leases file is where the node daemon can read the guest's address;
 * the pid file is how anything in the pod finds the process.
 */
export const dnsmasqFile = (bridge: string, kind: 'conf' | 'leases' | 'pid') => `${RUN_DIR}/dnsmasq/${bridge}.${kind}`;
/** A readable copy of the nftables ruleset the node daemon loaded into the pod's network namespace (operator/netprep). */
export const NFT_RULESET = `${RUN_DIR}/nftables.conf`;
/** virtiofsd's vhost-user socket for a fileSystem; CH connects to it. */
export const virtiofsSocket = (volume: string) => `${RUN_DIR}/virtiofsd/${volume}.sock`;
