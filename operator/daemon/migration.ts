/**
 * The node daemons' half of a live migration. The controller claims the VM, creates the receiving pod on another
 * node and brings the migration to TargetReady; then:
 *
 *   target daemon: vm.receive-migration (CH listens on rx.sock) → TLS relay on the node → status.targetAddress
 *   source daemon: TLS relay from tx.sock to targetAddress → phase Running → vm.send-migration → … → phase Sent
 *   target daemon: receive done → the VM's status points at the target pod and node → phase Succeeded
 *
 * Each relay authenticates the other node by its own certificate (operator/daemon/migration-relay.ts). What a
 * migration has reached lives in its status, so a daemon that restarts reads it back: a transfer whose relay died
 * with the old process cannot go on (no byte crosses without it), so the migration is failed and the VM keeps running
 * on the source (CH resumes it when the stream breaks); a receive that had completed is switched over. Either way
 * exactly one guest runs. A migration that fails, times out or is deleted has its relays torn down at once, which
 * makes both CHs abandon it.
 */
import type { MigrationPhase } from '../../api';
import type { Logger } from '../kube';
import { CloudHypervisorError } from '../cloudhypervisor/error';
import { silentLogger } from '../kube';
import { setCondition } from '../controller/vm-lifecycle';
import { MIGRATION_RX_SOCKET, MIGRATION_TX_SOCKET, VM_LABEL, inRunDir } from '../pod-layout';
import type { DaemonCluster, MigrationObject, VmObject } from './cluster';
import type { MigrationHooks } from './daemon';
import type { MigrationRelay, MigrationTargetRelay, RelayStats, RelayTls } from './migration-relay';
import { serveMigrationSource, serveMigrationTarget } from './migration-relay';
import { holdDirectory, kindBeneath } from './pod-files';
import type { PodState } from './pod-state';

export interface MigrationAgentOptions {
  readonly nodeName: string;
  /** The address other nodes reach this node's relay on (the DaemonSet passes status.hostIP). */
  readonly nodeIp?: string;
  /** This node's certificate and key and the CA bundle (operator/migration-pki). */
  readonly credentials: () => Promise<RelayTls>;
  readonly logger?: Logger;
}

interface Transfer {
  readonly role: 'source' | 'target';
  /** namespace/name of the VM, to find transfers whose migration was deleted. */
  readonly vm: string;
  relay?: MigrationRelay;
  /** Target: the receive-migration call; settles when CH has received the VM (or failed to). */
  received?: 'pending' | 'done' | 'not-listening' | { error: string };
}

const ACTIVE: ReadonlySet<MigrationPhase> = new Set(['TargetReady', 'Running', 'Sent']);

export class MigrationAgent implements MigrationHooks {
  private readonly transfers = new Map<string, Transfer>();
  private readonly logger: Logger;

  constructor(private readonly options: MigrationAgentOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'migration' });
  }

  async reconcile(state: PodState, cluster: DaemonCluster): Promise<{ requeueAfterMs?: number } | undefined> {
    const vmName = state.pod.metadata.labels?.[VM_LABEL];
    if (!vmName) return undefined;
    const migrations = cluster.migrationsOfVm(state.pod.metadata.namespace, vmName);
    this.release(`${state.pod.metadata.namespace}/${vmName}`, migrations);
    // Only a migration in progress gives a receiving pod its role: once it Succeeded the pod is its VM's pod (and may
    // be a source itself), once it failed the pod is a leftover the generic path stops when it terminates.
    const target = migrations.find(
      (m) =>
        m.status?.targetVMPodName === state.pod.metadata.name &&
        m.status.targetNodeName === this.options.nodeName &&
        m.status.phase !== 'Succeeded' &&
        m.status.phase !== 'Failed' &&
        !m.metadata.deletionTimestamp,
    );
    if (target) return this.reconcileTarget(state, target, cluster);
    const vm = cluster.vm(state.pod.metadata.namespace, vmName);
    const source = migrations.find(
      (m) =>
        m.status?.sourceNodeName === this.options.nodeName &&
        vm?.status?.vmPodName === state.pod.metadata.name &&
        vm.status.migration?.uid === m.metadata.uid,
    );
    return source && vm ? this.reconcileSource(state, source, vm, cluster) : undefined;
  }

  /** Tears down the relays of this VM's migrations that ended or disappeared (deleted: a cancel). */
  private release(vm: string, migrations: readonly MigrationObject[]): void {
    for (const [uid, t] of this.transfers) {
      if (t.vm !== vm) continue;
      const m = migrations.find((x) => x.metadata.uid === uid);
      if (!m || m.metadata.deletionTimestamp || !ACTIVE.has(m.status?.phase as MigrationPhase)) {
        void t.relay?.close();
        this.transfers.delete(uid);
      }
    }
  }

  /** Stops every relay (daemon shutdown). */
  async stop(): Promise<void> {
    await Promise.all([...this.transfers.values()].map((t) => t.relay?.close()));
    this.transfers.clear();
  }

  // --- target ----------------------------------------------------------------------------------------------

  private async reconcileTarget(
    state: PodState,
    m: MigrationObject,
    cluster: DaemonCluster,
  ): Promise<{ requeueAfterMs?: number }> {
    const phase = m.status?.phase;
    if (!phase || !ACTIVE.has(phase) || m.metadata.deletionTimestamp) return {};
    const uid = m.metadata.uid;
    let t = this.transfers.get(uid);
    if (!t) {
      if (m.status?.targetAddress) {
        // A daemon restarted after publishing its relay: if CH had already received the VM (its event monitor says
        // so), the guest lives here now and only the switch-over is missing; otherwise the relay died with the old
        // process and no byte can reach CH any more.
        if (state.history.booted) return this.switchOver(state, m, cluster);
        await this.fail(m, cluster, 'TargetDaemonRestarted', 'the target node daemon restarted during the migration');
        return {};
      }
      if (!state.files.launcherDone()) return {};
      const client = state.files.ch();
      if (!client) return {};
      t = { role: 'target', vm: `${m.metadata.namespace}/${m.spec.vmName}`, received: 'pending' };
      this.transfers.set(uid, t);
      const transfer = t;
      // Answers only when the whole migration is over, and CH serves nothing else meanwhile (reference §3, §5).
      void client.vm
        .receiveMigration({ receiver_url: `unix:${MIGRATION_RX_SOCKET}` }, { timeoutMs: remainingMs(m) })
        .then(
          () => (transfer.received = 'done'),
          (error: unknown) =>
            (transfer.received = notListening(error)
              ? 'not-listening'
              : { error: error instanceof Error ? error.message : String(error) }),
        )
        .finally(() => state.files.poke());
      return {};
    }
    if (t.received === 'done') return this.switchOver(state, m, cluster);
    if (t.received === 'not-listening') {
      // The socket is there but CH does not listen on it yet (it binds first): no request reached CH, so ask again
      // shortly, within the migration's own deadline.
      this.transfers.delete(uid);
      return { requeueAfterMs: 200 };
    }
    if (typeof t.received === 'object') {
      await this.fail(m, cluster, 'ReceiveFailed', `Cloud Hypervisor on ${this.options.nodeName}: ${t.received.error}`);
      return {};
    }
    if (!t.relay) {
      // CH binds rx.sock once it listens; the run dir's watch wakes us then.
      if (kindBeneath(state.files.runDir, inRunDir(MIGRATION_RX_SOCKET)) !== 'socket') return {};
      if (!this.options.nodeIp) {
        await this.fail(m, cluster, 'NoNodeAddress', `node daemon on ${this.options.nodeName} has no --node-ip`);
        return {};
      }
      const dir = holdDirectory(state.files.runDir);
      let relay: MigrationTargetRelay;
      try {
        relay = await serveMigrationTarget({
          unixSocketPath: `${dir.path}/${inRunDir(MIGRATION_RX_SOCKET)}`,
          host: this.options.nodeIp,
          port: 0,
          tls: await this.options.credentials(),
          expectedPeerNode: m.status?.sourceNodeName ?? '',
          timeoutMs: remainingMs(m),
          logger: this.logger,
        });
      } finally {
        dir.close();
      }
      t.relay = relay;
      const { host, port } = relay.address;
      await cluster.patchMigrationStatus(m, { targetAddress: `${host.includes(':') ? `[${host}]` : host}:${port}` });
      this.logger.info('receiving', { migration: m.metadata.name, port });
    }
    return {};
  }

  /**
   * CH received the VM: the VM's status now names the target pod and node (one write, guarded by resourceVersion),
   * then the migration is Succeeded. The source pod, whose VMM exited after sending, is left to the controller.
   */
  private async switchOver(
    state: PodState,
    m: MigrationObject,
    cluster: DaemonCluster,
  ): Promise<{ requeueAfterMs?: number }> {
    const vm = await cluster.fetchVm(m.metadata.namespace ?? '', m.spec.vmName);
    if (!vm) {
      await this.fail(m, cluster, 'VMDeleted', `VirtualMachine ${m.spec.vmName} is gone`);
      return {};
    }
    const pod = state.pod.metadata;
    const paused = state.ch === 'Paused';
    if (vm.status?.vmPodName !== pod.name) {
      await cluster.patchVmStatus(vm, {
        vmPodName: pod.name,
        vmPodUID: pod.uid,
        nodeName: this.options.nodeName,
        phase: paused ? 'Paused' : 'Running',
        phaseTransitionTime: new Date().toISOString(),
        guest: {
          podName: pod.name,
          bootTime: vm.status?.guest?.bootTime ?? new Date().toISOString(),
          reboots: 0,
          shutdownRequestTime: null,
          exitReason: null,
          exitMessage: null,
        },
      });
    }
    const transfer = this.transfers.get(m.metadata.uid);
    const sent = transfer?.relay?.stats;
    await cluster.patchMigrationStatus(m, {
      phase: 'Succeeded',
      targetNodeName: this.options.nodeName,
      ...(sent ? { transferredBytes: Math.max(m.status?.transferredBytes ?? 0, statsBytes(sent)) } : {}),
      conditions: setCondition(
        m.status?.conditions,
        'Complete',
        'True',
        'Succeeded',
        `${m.spec.vmName} runs on ${this.options.nodeName}`,
        new Date(),
        m.metadata.generation,
      ),
    });
    cluster.event(
      m,
      'Normal',
      'Succeeded',
      `${m.spec.vmName} moved from ${m.status?.sourceNodeName} to ${this.options.nodeName}`,
    );
    void transfer?.relay?.close();
    this.transfers.delete(m.metadata.uid);
    return {};
  }

  // --- source ----------------------------------------------------------------------------------------------

  private async reconcileSource(
    state: PodState,
    m: MigrationObject,
    vm: VmObject,
    cluster: DaemonCluster,
  ): Promise<{ requeueAfterMs?: number } | undefined> {
    const phase = m.status?.phase;
    const uid = m.metadata.uid;
    const t = this.transfers.get(uid);
    if (phase === 'TargetReady') {
      if (t) return {};
      const target = parseAddress(m.status?.targetAddress);
      const client = state.files.ch();
      if (!target || !client || (state.ch !== 'Running' && state.ch !== 'Paused')) return undefined;
      // The node the guest will go to is where the receiving pod really runs, not just what the status says.
      const targetNode = await cluster.podNodeName(m.metadata.namespace ?? '', m.status?.targetVMPodName ?? '');
      if (!targetNode || targetNode !== m.status?.targetNodeName) {
        await this.fail(
          m,
          cluster,
          'TargetMismatch',
          `the receiving pod runs on ${targetNode ?? 'no node'}, not on ${m.status?.targetNodeName}`,
        );
        return undefined;
      }
      const dir = holdDirectory(state.files.runDir);
      let relay: MigrationRelay;
      try {
        relay = await serveMigrationSource({
          unixSocketPath: `${dir.path}/${inRunDir(MIGRATION_TX_SOCKET)}`,
          target,
          tls: await this.options.credentials(),
          expectedPeerNode: m.status?.targetNodeName ?? '',
          timeoutMs: remainingMs(m),
          logger: this.logger,
        });
      } finally {
        dir.close();
      }
      const transfer: Transfer = { role: 'source', vm: `${m.metadata.namespace}/${m.spec.vmName}`, relay };
      this.transfers.set(uid, transfer);
      try {
        // Recorded before CH is told: a daemon that dies in between finds Running and fails it, never sends twice.
        await cluster.patchMigrationStatus(m, { phase: 'Running' });
        await client.vm.sendMigration({ destination_url: `unix:${MIGRATION_TX_SOCKET}` });
      } catch (error) {
        void relay.close();
        this.transfers.delete(uid);
        throw error;
      }
      cluster.event(vm, 'Normal', 'Migrating', `sending to ${m.status?.targetNodeName}`);
      return {};
    }
    if (phase !== 'Running') return phase === 'Sent' ? {} : undefined;
    if (state.history.migratedAway) {
      await cluster.patchMigrationStatus(m, {
        phase: 'Sent',
        ...(t?.relay ? { transferredBytes: statsBytes(t.relay.stats) } : {}),
      });
      return {};
    }
    if (state.history.migrationFailed !== undefined) {
      await this.fail(
        m,
        cluster,
        'SendFailed',
        `Cloud Hypervisor on ${this.options.nodeName}: ${state.history.migrationFailed}`,
      );
      return undefined;
    }
    if (!t) {
      await this.fail(
        m,
        cluster,
        'SourceDaemonRestarted',
        `the source node daemon restarted during the transfer; ${m.spec.vmName} keeps running on ${this.options.nodeName}`,
      );
      return undefined;
    }
    return {};
  }

  private async fail(m: MigrationObject, cluster: DaemonCluster, reason: string, message: string): Promise<void> {
    const t = this.transfers.get(m.metadata.uid);
    void t?.relay?.close();
    this.transfers.delete(m.metadata.uid);
    if (m.status?.phase === 'Failed' || m.status?.phase === 'Succeeded') return;
    await cluster.patchMigrationStatus(m, {
      phase: 'Failed',
      conditions: setCondition(
        m.status?.conditions,
        'Complete',
        'False',
        reason,
        message,
        new Date(),
        m.metadata.generation,
      ),
    });
    cluster.event(m, 'Warning', reason, message);
    this.logger.warn('migration failed', { migration: m.metadata.name, reason, message });
  }
}

/** What is left of the migration's timeout (spec.timeoutSeconds from its creation). */
function remainingMs(m: MigrationObject): number {
  const total = (m.spec.timeoutSeconds ?? 600) * 1000;
  const created = Date.parse(m.metadata.creationTimestamp ?? '');
  return Math.max(1_000, Number.isNaN(created) ? total : created + total - Date.now());
}

function parseAddress(address: string | undefined): { host: string; port: number } | undefined {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address ?? '');
  return m && Number(m[2]) > 0 && Number(m[2]) < 65536 ? { host: m[1], port: Number(m[2]) } : undefined;
}

function statsBytes(stats: RelayStats): number {
  return stats.bytesToPeer;
}

/** A call that never reached Cloud Hypervisor: its API socket refused the connection (nothing listening yet). */
function notListening(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } } | undefined)?.cause;
  return error instanceof CloudHypervisorError && error.kind === 'transport' && cause?.code === 'ECONNREFUSED';
}
