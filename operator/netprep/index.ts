/**
 * netprep — the privileged half of a VM pod's network, called by the node daemon (see prepare.ts). The daemon:
 * 1. sees NETWORK_REQUEST appear in a VM pod's run dir (inotify) — {@link pendingNetworkRequest} says whether it is
 *    still unanswered;
 * 2. finds the pod's network namespace from the host — `/proc/<pid>/ns/net` of a process in the pod's cgroup,
 *    preferably the sandbox's pause process (operator/daemon/pod-processes.ts) — and calls {@link prepareVmNetwork}
 *    with it and the VM from its informer (netprep opens that namespace once and works through the descriptor);
 * 3. nothing else: the launcher in the pod waits for NETWORK_READY and carries on.
 */
export { DEFAULT_NETPREP_TIMEOUT_MS, prepareVmNetwork, type PrepareVmNetworkOptions } from './prepare';
export { pendingNetworkRequest, readNetworkRequest } from './network-request';
export {
  NETWORK_READY_VERSION,
  parseNetworkReady,
  type NetworkFailed,
  type NetworkLease,
  type NetworkPrepared,
  type NetworkReady,
  type ReadyInterface,
  type ReadyTap,
} from './network-ready';
