/**
 * The VM pod's security contexts. The pod is admitted by a namespace that enforces Pod Security `baseline`: no
 * privileged containers, no host namespaces or hostPath, no sysctls outside the safe set, seccomp RuntimeDefault, and
 * of the capabilities only baseline's default set. Everything that needs more — bridges, TAPs, nftables, the forwarding
 * sysctl, the memlock limit VFIO needs — is done from outside by the node daemon (privileged, one per node), which
 * enters the pod's network namespace as KubeVirt's node agent does.
 *
 * Which containers run as root, and why (runAsNonRoot where Cloud Hypervisor's needs allow):
 * - `tools` (copies busybox from the operator image) runs as nobody (65534): it only reads a world-readable file and
 *   writes into an emptyDir.
 * - `launcher` runs as root, with no capability but NET_BIND_SERVICE (dnsmasq answers DHCP on port 67). It execs
 *   Cloud Hypervisor, which opens /dev/kvm and /dev/net/tun (device nodes keep the host's owner and mode, root:kvm
 *   0660 on most distributions — the kvm group's id differs per node, so no supplementalGroups can name it), attaches
 *   to the TAP the daemon made (allowed without CAP_NET_ADMIN only to the TAP's owner uid), reads the pod's disks (a
 *   PVC's files belong to whoever wrote them) and hugepages; dnsmasq needs NET_BIND_SERVICE in its effective set,
 *   which Kubernetes gives only to uid 0 (no ambient capabilities). A non-root launcher would need /dev/kvm opened up
 *   on every node, TAPs owned by a fixed uid, and dnsmasq off port 67 — node setup and daemon work, not done yet.
 * - Init containers that copy out of user images (`kernel`, `disk-*`, `rootfs-*`) run as root with DAC_OVERRIDE only:
 *   images keep files of other owners that root without it cannot read (KubeVirt's containerDisks belong to uid 107).
 * - `convert-*` runs as root with DAC_OVERRIDE only: it reads, renames and removes what the copy left in its emptyDir,
 *   with the modes the image gave it (a read-only /disk directory stays read-only).
 * - `mkfs-*` runs as root with CHOWN, DAC_OVERRIDE, FOWNER and FSETID: it unpacks the image's files with their owners
 *   and modes (setuid bits included) into its emptyDir, so the guest's root filesystem is the image's.
 * All are in baseline's allowed set; every container drops ALL first and may not escalate (no setuid gains).
 *
 * What `restricted` still refuses: runAsNonRoot (launcher and the copy/convert/mkfs init containers run as root, see
 * above), and capabilities beyond NET_BIND_SERVICE (DAC_OVERRIDE in the copy and convert init containers; CHOWN,
 * DAC_OVERRIDE, FOWNER, FSETID in mkfs). Volume types, privilege escalation, seccomp and the NET_BIND_SERVICE-only launcher already
 * meet it.
 */

type Json = Record<string, unknown>;

/** The pod's own context: the container runtime's default seccomp profile for every container. */
export const POD_SECURITY_CONTEXT: Json = { seccompProfile: { type: 'RuntimeDefault' } };

const confined = (extra: Json, add: readonly string[] = []): Json => ({
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'], ...(add.length ? { add: [...add] } : {}) },
  ...extra,
});

/** The main container: root (see above), NET_BIND_SERVICE only. */
export const LAUNCHER_SECURITY_CONTEXT: Json = { privileged: false, ...confined({}, ['NET_BIND_SERVICE']) };

/** `tools`: copies busybox out of the operator image, as nobody. */
export const TOOLS_SECURITY_CONTEXT: Json = confined({
  runAsNonRoot: true,
  runAsUser: 65534,
  runAsGroup: 65534,
  readOnlyRootFilesystem: true,
});

/** `kernel`, `disk-*`, `rootfs-*`: our busybox reading a user image, as root whatever the image's USER is. */
export const IMAGE_COPY_SECURITY_CONTEXT: Json = confined({ runAsUser: 0, readOnlyRootFilesystem: true }, [
  'DAC_OVERRIDE',
]);

/** `convert-*`: qemu-img on the copied disk in its emptyDir. */
export const CONVERT_SECURITY_CONTEXT: Json = confined({ runAsUser: 0, readOnlyRootFilesystem: true }, [
  'DAC_OVERRIDE',
]);

/** `mkfs-*`: unpacks the image's files with their owners and modes, then builds the ext4 image. */
export const MKFS_SECURITY_CONTEXT: Json = confined({ runAsUser: 0, readOnlyRootFilesystem: true }, [
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
]);
