#!/bin/sh
# Runs a process of the e2e real node (test/e2e/harness/real-node.ts) in the node's own mount
# namespace and cgroup, so that everything it mounts vanishes with the namespace and everything it
# starts (containerd's shims, the containers) can be found and killed through the cgroup.
#
#   node-ns.sh setup <dir> <cgroup.procs> -- <command…>   under `unshare --mount --propagation private`:
#       join the cgroup, give the namespace the node's own /run, /var/lib and /var/log (empty dirs in
#       <dir>/ns), then exec the command (containerd), which so holds the namespace
#   node-ns.sh join <pid> <cgroup.procs> -- <command…>    join the cgroup and <pid>'s mount namespace, exec
#       the command (the kubelet, ctr)
#
# Why those three dirs: the kubelet and containerd write to fixed host paths whatever their
# configured roots — /var/lib/kubelet/device-plugins and /var/lib/kubelet/pki, /var/log/pods and
# /var/log/containers, /run/containerd/s (shim sockets), /var/lib/cni (CNI's result cache). Bound
# over with empty temp dirs inside the namespace, they stay off the host, and the kubelet can run
# with its default root dir /var/lib/kubelet (where kubevisor's daemon and device plugins look).
# Nothing in the namespace needs the host's versions of them (/etc/resolv.conf is copied first).
set -eu
mode="$1"
shift
case "$mode" in
  setup)
    dir="$1" procs="$2"
    shift 2
    [ "$1" = "--" ] && shift
    echo $$ >"$procs"
    for d in run var-lib var-log; do mkdir -p "$dir/ns/$d"; done
    mkdir -p "$dir/ns/var-lib/kubelet"
    mount --bind "$dir/ns/run" /run
    mount --bind "$dir/ns/var-lib" /var/lib
    mount --bind "$dir/ns/var-log" /var/log
    # Shared inside the namespace only (it was made private from the host's first): containerd refuses a
    # Bidirectional volume (kubevisor's daemon mounts /var/lib/kubelet so) from a mount that is not shared, and
    # mounts the kubelet makes later (tmpfs emptyDirs) reach the daemon's container only through a shared mount.
    mount --make-rshared /
    exec "$@"
    ;;
  join)
    pid="$1" procs="$2"
    shift 2
    [ "$1" = "--" ] && shift
    echo $$ >"$procs"
    exec nsenter --target "$pid" --mount -- "$@"
    ;;
  *)
    echo "node-ns.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
