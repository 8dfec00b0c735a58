/**
 * One VM pod as the node daemon sees it from the host: its run dir in the kubelet's pod directory (the launcher's
 * marker and VmConfig, Cloud Hypervisor's socket and event monitor, dnsmasq's leases) and its container log. It
 * watches the run dir with inotify and calls `onChange` whenever something there changes — the daemon reacts to
 * events, it never polls. Every read goes through pod-files.ts (no symlinks, bounded sizes).
 */
import { type FSWatcher, readdirSync, watch } from 'node:fs';
import { join } from 'node:path';
import { CloudHypervisorClient } from '../cloudhypervisor';
import type { VmConfig } from '../cloudhypervisor/types';
import {
  CH_EVENTS,
  CH_SOCKET,
  LAUNCHER_CONTAINER,
  LAUNCHER_DONE,
  RUN_DIR,
  RUN_VOLUME,
  VM_CONFIG,
  dnsmasqFile,
  hostEmptyDir,
  inRunDir,
} from '../pod-layout';
import { EventMonitorParser, emptyHistory, foldEvent, type ChEvent, type VmmHistory } from './event-monitor';
import { crashLine, parseLeases, type Lease } from './guest-evidence';
import { PodPathError, type HeldSocket, holdSocket, isMissing, kindBeneath, readBeneath } from './pod-files';

/** Cloud Hypervisor v53.0 refuses request bodies over 51,200 bytes (reference/cloud-hypervisor.md §14). */
export const CH_MAX_BODY_BYTES = 51_200;
/** The event monitor is read in slices of this size, at most this many per look (folding keeps no history). */
const EVENTS_SLICE_BYTES = 64 * 1024;
const EVENTS_SLICES_PER_LOOK = 128;
const LOG_TAIL_BYTES = 64 * 1024;

export interface VmPodLocation {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface VmPodPaths {
  /** The kubelet's root directory (`--root-dir`). @default /var/lib/kubelet */
  readonly kubeletRoot: string;
  /** Where the kubelet keeps container logs. @default /var/log/pods */
  readonly podLogsDir: string;
}

/** The launcher's marker: it finished, and whether it wrote a VmConfig (a migration target does not). */
export interface LauncherDone {
  readonly configWritten: boolean;
}

export class VmPodFiles {
  /** The pod's run dir on the host (the kubelet's emptyDir). */
  readonly runDir: string;
  private readonly logDir: string;
  private watcher?: FSWatcher;
  private socket?: HeldSocket;
  private client?: CloudHypervisorClient;
  private readonly parser = new EventMonitorParser();
  private eventsOffset = 0;
  private eventsHistory: VmmHistory = emptyHistory();

  constructor(
    readonly pod: VmPodLocation,
    paths: VmPodPaths,
    private readonly onChange: () => void,
  ) {
    this.runDir = hostEmptyDir(paths.kubeletRoot, pod.uid, RUN_VOLUME);
    this.logDir = join(paths.podLogsDir, `${pod.namespace}_${pod.name}_${pod.uid}`, LAUNCHER_CONTAINER);
  }

  /**
   * Starts watching the run dir once it exists (the kubelet creates it before the containers start). Returns false
   * while it does not; the caller tries again on the pod's next change.
   */
  watch(): boolean {
    if (this.watcher) return true;
    try {
      const watcher = watch(this.runDir, { persistent: false }, () => this.onChange());
      watcher.on('error', () => {
        // The directory went away (pod deleted): nothing more will happen in it; the next look finds it missing.
        watcher.close();
        if (this.watcher === watcher) this.watcher = undefined;
        this.onChange();
      });
      this.watcher = watcher;
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  /** The launcher's marker, once it is there. */
  launcherDone(): LauncherDone | undefined {
    try {
      const { data } = readBeneath(this.runDir, inRunDir(LAUNCHER_DONE), 1024);
      const parsed = JSON.parse(data.toString('utf8')) as { configWritten?: unknown };
      return { configWritten: parsed.configWritten === true };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw new PodPathError(LAUNCHER_DONE, 'EINVAL', `${inRunDir(LAUNCHER_DONE)}: not the launcher's marker`);
    }
  }

  /** A client for CH's API socket once it exists; undefined before. */
  ch(): CloudHypervisorClient | undefined {
    if (this.client) return this.client;
    try {
      this.socket = holdSocket(this.runDir, inRunDir(CH_SOCKET));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    this.client = new CloudHypervisorClient({ socketPath: this.socket.address });
    return this.client;
  }

  /**
   * The VmConfig the launcher wrote, checked for what would otherwise fail later and worse: over CH's body limit it
   * would be refused, and a vhost-user backend socket that is not there would make `vm.boot` block for a minute with
   * CH answering nothing else (reference §14).
   */
  vmConfig(): { config: VmConfig } | { problem: string } {
    let data: Buffer;
    let size: number;
    try {
      ({ data, size } = readBeneath(this.runDir, inRunDir(VM_CONFIG), CH_MAX_BODY_BYTES * 4));
    } catch (error) {
      return { problem: `the launcher's VmConfig cannot be read: ${(error as Error).message}` };
    }
    let config: VmConfig;
    try {
      config = JSON.parse(data.toString('utf8')) as VmConfig;
    } catch {
      return { problem: `the launcher's VmConfig (${size} bytes) is not JSON` };
    }
    const body = Buffer.byteLength(JSON.stringify(config));
    if (size > data.length || body > CH_MAX_BODY_BYTES) {
      return {
        problem: `the VmConfig is ${Math.max(size, body)} bytes; Cloud Hypervisor v53.0 accepts at most ${CH_MAX_BODY_BYTES} (fewer or shorter devices, or a shorter kernel cmdline)`,
      };
    }
    for (const socket of vhostUserBackends(config)) {
      // Backends elsewhere (a CNI's vhost-user socket) are not visible from here; CH's boot runs off the work queue.
      if (!socket.startsWith(`${RUN_DIR}/`)) continue;
      if (kindBeneath(this.runDir, inRunDir(socket)) !== 'socket') {
        return { problem: `vhost-user backend ${socket} does not exist: Cloud Hypervisor would wait for it at boot` };
      }
    }
    return { config };
  }

  /** Reads what CH appended to its event monitor since the last call, and the history so far. */
  events(): { fresh: ChEvent[]; history: VmmHistory } {
    const fresh: ChEvent[] = [];
    for (let slices = 0; slices < EVENTS_SLICES_PER_LOOK; slices++) {
      let read: { data: Buffer; size: number };
      try {
        read = readBeneath(this.runDir, inRunDir(CH_EVENTS), EVENTS_SLICE_BYTES, this.eventsOffset);
      } catch (error) {
        if (isMissing(error)) break;
        throw error;
      }
      if (read.data.length === 0) break;
      this.eventsOffset += read.data.length;
      fresh.push(...this.parser.push(read.data.toString('utf8')));
      if (this.eventsOffset >= read.size) break;
    }
    for (const e of fresh) this.eventsHistory = foldEvent(this.eventsHistory, e);
    return { fresh, history: this.eventsHistory };
  }

  /** The DHCP leases dnsmasq handed out on the given bridges (the guest's addresses). */
  leases(bridges: readonly string[]): Lease[] {
    const leases: Lease[] = [];
    for (const bridge of bridges) {
      try {
        const { data } = readBeneath(this.runDir, inRunDir(dnsmasqFile(bridge, 'leases')), 16 * 1024);
        leases.push(...parseLeases(data.toString('utf8')));
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    }
    return leases;
  }

  /** CH's crash line in the container log, if it logged one (the kubelet's log files are trusted; their text not). */
  crashLine(): string | undefined {
    let files: string[];
    try {
      files = readdirSync(this.logDir).filter((f) => /^\d+\.log$/.test(f));
    } catch {
      return undefined;
    }
    const latest = files.sort((a, b) => Number.parseInt(b, 10) - Number.parseInt(a, 10))[0];
    if (!latest) return undefined;
    try {
      const size = readBeneath(this.logDir, latest, 0).size;
      const offset = Math.max(0, size - LOG_TAIL_BYTES);
      const text = readBeneath(this.logDir, latest, LOG_TAIL_BYTES, offset).data.toString('utf8');
      // A tail that starts mid-line would let a long line's end (the guest's serial output) pass for a whole line.
      return crashLine(offset > 0 ? text.slice(text.indexOf('\n') + 1) : text);
    } catch {
      return undefined;
    }
  }

  /** Asks for another look at this pod, as a change in its run dir would (for work that settles elsewhere). */
  poke(): void {
    this.onChange();
  }

  /** Stops watching and releases the socket; idempotent. `watch()` may start again (a pod that gains a role). */
  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.socket?.close();
    this.socket = undefined;
    this.client = undefined;
  }
}

/** The unix sockets CH connects to as a vhost-user client at boot: virtio-fs daemons and client-mode NICs. */
function vhostUserBackends(config: VmConfig): string[] {
  return [
    ...(config.fs ?? []).map((f) => f.socket),
    ...(config.net ?? []).filter((n) => n.vhost_user && n.vhost_mode !== 'Server').map((n) => n.vhost_socket ?? ''),
  ].filter((s) => s !== '');
}
