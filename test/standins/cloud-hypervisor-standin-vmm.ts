/**
 * The VMM state machine of the CH stand-in: what each endpoint does in each state, with CH's status codes and
 * error chains. "§N" cites reference/cloud-hypervisor.md (code behaviour at its baseline, which wins over the
 * spec where they differ). Bodies arrive here already schema-checked by the server.
 *
 * States as a client observes them (§2): NoVM (no stored config), Created (config, no live VM — also after
 * `vm.shutdown`), Running, Paused; plus "migrating" while an outgoing migration owns the VM.
 *
 * Error chains: CH answers `["Error from API", <ApiError>, <VmError>, …root cause]` (§4). The top-level and
 * VmError texts below are CH's. Where CH's innermost cause depends on host state a stand-in does not have
 * (snapshot files, migration sockets) the stand-in's own wording is used and says so.
 *
 * Modelled minimally, and only this:
 * - snapshot writes `config.json` and a stand-in `state.json` into the `file://` directory; restore reads them
 *   back (so one stand-in can restore what another snapshotted). No memory is saved.
 * - migration moves config + Running/Paused between two stand-ins (see cloud-hypervisor-standin-migration.ts).
 * - hot-plug assigns ids (`_disk3`, CH's prefixes) and PCI addresses from a counter; counters are all zero.
 * - guest behaviour (power button, reboot, power-off) only through {@link CloudHypervisorStandinVmm.guest}.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  DeviceNode,
  PciDeviceInfo,
  ReceiveMigrationData,
  RestoreConfig,
  SendMigrationData,
  VmConfig,
  VmCounters,
  VmInfo,
  VmResize,
  VmResizeDisk,
  VmResizeZone,
  VmmPingResponse,
} from '../../operator/cloudhypervisor/types';
import { parseMigrationUrl, receiveMigration, sendMigration } from './cloud-hypervisor-standin-migration';
import { validateVmConfig } from './cloud-hypervisor-standin-validation';

export type ObservedVmState = 'NoVM' | 'Created' | 'Running' | 'Paused';

export interface StandinReply {
  readonly status: number;
  /** JSON body; CH's errors are string arrays. */
  readonly body?: unknown;
}

export interface StandinEvent {
  readonly source: 'vmm' | 'vm';
  readonly event: string;
  readonly properties?: Record<string, string>;
}

export interface VmmOptions {
  /** Mirrors CH's `--no-shutdown`: a guest power-off leaves the config (Created) instead of ending the VMM (§2). */
  readonly noShutdown?: boolean;
  /** What the guest does on `vm.power-button`. A guest without ACPI handling ignores it. @default 'ignore' */
  readonly powerButton?: 'ignore' | 'poweroff';
  readonly onEvent?: (event: StandinEvent) => void;
  /** The real VMM process would exit now (vmm.shutdown, guest power-off, migrated away). */
  readonly onExit?: (reason: string) => void;
}

/** A VmError of CH with the status its HTTP layer maps it to (§4). */
interface VmErr {
  readonly status: number;
  readonly chain: readonly string[];
}
const NOT_CREATED: VmErr = { status: 404, chain: ['VM is not created'] };
const MISSING_CONFIG: VmErr = { status: 404, chain: ['VM config is missing'] };
const NOT_RUNNING: VmErr = { status: 500, chain: ['VM is not running'] };
const ALREADY_CREATED: VmErr = { status: 500, chain: ['VM is already created'] };
const MIGRATING: VmErr = { status: 500, chain: ['VM is currently migrating'] };

const NO_CONTENT: StandinReply = { status: 204 };

function apiError(what: string, err: VmErr): StandinReply {
  return { status: err.status, body: ['Error from API', what, ...err.chain] };
}

/** Schema name of each `vm.add-*` body, where it goes in VmConfig, CH's id prefix and its ApiError text. */
const ADDERS: Record<string, { key: keyof VmConfig; prefix: string; what: string }> = {
  'vm.add-disk': { key: 'disks', prefix: '_disk', what: 'The disk could not be added to the VM' },
  'vm.add-net': { key: 'net', prefix: '_net', what: 'The network device could not be added to the VM' },
  'vm.add-fs': { key: 'fs', prefix: '_fs', what: 'The fs could not be added to the VM' },
  'vm.add-pmem': { key: 'pmem', prefix: '_pmem', what: 'The pmem device could not be added to the VM' },
  'vm.add-vdpa': { key: 'vdpa', prefix: '_vdpa', what: 'The vDPA device could not be added to the VM' },
  'vm.add-device': { key: 'devices', prefix: '_vfio', what: 'The device could not be added to the VM' },
  'vm.add-user-device': {
    key: 'user_devices',
    prefix: '_vfio_user',
    what: 'The user device could not be added to the VM',
  },
  'vm.add-generic-vhost-user': {
    key: 'generic_vhost_user',
    prefix: '_generic_vhost_user',
    what: 'The generic vhost-user device could not be added to the VM',
  },
  'vm.add-vsock': { key: 'vsock', prefix: '_vsock', what: 'The vsock device could not be added to the VM' },
};

/** Device lists that `vm.remove-device` searches, with the prefix CH gives devices that came without an id. */
const DEVICE_LISTS: { key: keyof VmConfig; prefix: string }[] = [
  { key: 'disks', prefix: '_disk' },
  { key: 'net', prefix: '_net' },
  { key: 'fs', prefix: '_fs' },
  { key: 'pmem', prefix: '_pmem' },
  { key: 'vdpa', prefix: '_vdpa' },
  { key: 'devices', prefix: '_vfio' },
  { key: 'user_devices', prefix: '_vfio_user' },
  { key: 'generic_vhost_user', prefix: '_generic_vhost_user' },
  { key: 'vsock', prefix: '_vsock' },
];

type Device = { id?: string };

function devicesOf(config: VmConfig, key: keyof VmConfig): Device[] {
  const value = config[key] as Device | Device[] | undefined;
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** CH's defaults for omitted top-level sections (§6), which `vm.info` then reports. */
function withDefaults(config: VmConfig): VmConfig {
  return {
    ...config,
    cpus: config.cpus ?? { boot_vcpus: 1, max_vcpus: 1 },
    memory: config.memory ?? { size: 512 * 1024 * 1024 },
    rng: config.rng ?? { src: '/dev/urandom' },
    serial: config.serial ?? { mode: 'Null' },
    console: config.console ?? { mode: 'Tty' },
  };
}

function fileUrlDirectory(url: string): string | undefined {
  if (!url.startsWith('file://')) return undefined;
  try {
    return decodeURIComponent(new URL(url).pathname);
  } catch {
    return undefined;
  }
}

const STANDIN_SNAPSHOT_STATE = { 'kubevisor-cloud-hypervisor-standin': true, state: 'Paused', memory: 'not saved' };

export class CloudHypervisorStandinVmm {
  private config: VmConfig | undefined;
  private vm: { state: 'Running' | 'Paused'; bdfs: Map<string, string> } | undefined;
  /** Set while an outgoing migration owns the VM; `vm.info` then answers with this snapshot (§2). */
  private migration: { info: VmInfo } | undefined;
  private deviceCounter = 0;
  private pciSlot = 0;
  private readonly abort = new AbortController();

  constructor(private readonly options: VmmOptions = {}) {}

  /** What a test may want to assert on; `config` is a copy. */
  state(): { vm: ObservedVmState; migrating: boolean; config: VmConfig | undefined } {
    const vm: ObservedVmState = this.vm ? this.vm.state : this.config ? 'Created' : 'NoVM';
    return { vm, migrating: this.migration !== undefined, config: this.config && structuredClone(this.config) };
  }

  /** CH's first event once its API is up. */
  emitStarting(): void {
    this.emit('vmm', 'starting');
  }

  /** Stops anything long-running (a pending receive-migration). */
  dispose(): void {
    this.abort.abort();
  }

  /** Transitions the guest causes without an API call (§2). */
  readonly guest = {
    /** The guest rebooted: the VMM rebuilds the VM from the same config. */
    reboot: (): void => {
      if (this.vm && !this.migration) this.rebootVm();
    },
    /** The guest powered off: the VMM exits, or with `noShutdown` keeps the config (Created). */
    powerOff: (): void => {
      if (!this.vm || this.migration) return;
      this.vm = undefined;
      this.emit('vm', 'shutdown');
      if (!this.options.noShutdown) {
        this.config = undefined;
        this.emit('vm', 'deleted');
        this.emit('vmm', 'shutdown');
        this.options.onExit?.('guest powered off');
      }
    },
  };

  /** Handles one call; `body` is the parsed, schema-valid JSON body or undefined for bodiless endpoints. */
  async handle(endpoint: string, body: unknown): Promise<StandinReply> {
    const adder = ADDERS[endpoint];
    if (adder) return this.addDevice(endpoint, body as Device);
    switch (endpoint) {
      case 'vmm.ping':
        return { status: 200, body: this.ping() };
      case 'vmm.shutdown':
        return this.vmmShutdown();
      case 'vm.create':
        return this.create(body as VmConfig);
      case 'vm.boot':
        return this.boot();
      case 'vm.shutdown':
        return this.shutdown();
      case 'vm.reboot':
        return this.reboot();
      case 'vm.power-button':
        return this.powerButton();
      case 'vm.pause':
        return this.pause();
      case 'vm.resume':
        return this.resume();
      case 'vm.nmi':
        return this.whileBooted('Error triggering NMI') ?? NO_CONTENT;
      case 'vm.info':
        return this.info();
      case 'vm.counters':
        // CH reports counter failures as ApiError::VmInfo.
        return this.whileBooted('The VM info is not available') ?? { status: 200, body: this.counters() };
      case 'vm.delete':
        return this.delete();
      case 'vm.remove-device':
        return this.removeDevice((body as { id: string }).id);
      case 'vm.resize':
        return this.resize(body as VmResize);
      case 'vm.resize-zone':
        return this.resizeZone(body as VmResizeZone);
      case 'vm.resize-disk':
        return this.resizeDisk(body as VmResizeDisk);
      case 'vm.snapshot':
        return this.snapshot((body as { destination_url: string }).destination_url);
      case 'vm.restore':
        return this.restore(body as RestoreConfig);
      case 'vm.send-migration':
        return this.sendMigration(body as SendMigrationData);
      case 'vm.receive-migration':
        return this.receiveMigration(body as ReceiveMigrationData);
      default:
        throw new Error(`stand-in has no model for ${endpoint}`);
    }
  }

  private emit(source: StandinEvent['source'], event: string, properties?: Record<string, string>): void {
    this.options.onEvent?.({ source, event, ...(properties ? { properties } : {}) });
  }

  /** `undefined` when a VM is booted and not migrating; otherwise CH's answer for `what` (§3 "booted"). */
  private whileBooted(what: string): StandinReply | undefined {
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.vm) return apiError(what, NOT_RUNNING);
    return undefined;
  }

  private ping(): VmmPingResponse {
    // CH reports its Cargo version and `git describe`; the build string says what this really is.
    return { version: '53.0.0', build_version: 'v53.0-kubevisor-standin', pid: process.pid, features: ['kvm'] };
  }

  /** §3: always accepted; deletes the VM, answers 200 (not the spec's 204), then the process exits. */
  private vmmShutdown(): StandinReply {
    if (this.migration) return apiError('The VMM could not shutdown', MIGRATING);
    this.deleteVm();
    this.emit('vmm', 'shutdown');
    // The server lets this answer reach the client before it closes.
    this.options.onExit?.('vmm.shutdown');
    return { status: 200 };
  }

  /** §3: NoVM only; stores the config, validation waits for boot (§4). */
  private create(config: VmConfig): StandinReply {
    if (this.migration) return apiError('The VM could not be created', MIGRATING);
    if (this.config) return apiError('The VM could not be created', ALREADY_CREATED);
    this.config = withDefaults(structuredClone(config));
    return NO_CONTENT;
  }

  /** §3: Created → Running; 404 without a config, 500 when already booted, 400 when the config is invalid. */
  private boot(): StandinReply {
    const what = 'The VM could not boot';
    if (this.migration) return apiError(what, MIGRATING);
    if (this.vm) return apiError(what, ALREADY_CREATED);
    if (!this.config) return apiError(what, MISSING_CONFIG);
    this.emit('vm', 'booting');
    const violation = validateVmConfig(this.config);
    if (violation) {
      return {
        status: violation.conflict ? 409 : 400,
        body: ['Error from API', what, 'Failed to validate config', violation.message],
      };
    }
    this.startVm('Running');
    this.emit('vm', 'booted');
    return NO_CONTENT;
  }

  /** A fresh VM: devices without an id get CH's generated one, every device a PCI address. */
  private startVm(state: 'Running' | 'Paused'): void {
    const config = this.config as VmConfig;
    const bdfs = new Map<string, string>();
    for (const { key, prefix } of DEVICE_LISTS) {
      for (const device of devicesOf(config, key)) {
        device.id ??= this.nextId(prefix);
        bdfs.set(device.id, this.nextBdf());
      }
    }
    this.vm = { state, bdfs };
  }

  private nextId(prefix: string): string {
    return `${prefix}${this.deviceCounter++}`;
  }

  private nextBdf(): string {
    // Device 0 of segment 0 is the host bridge; CH numbers the rest upwards.
    this.pciSlot = (this.pciSlot % 31) + 1;
    return `0000:00:${this.pciSlot.toString(16).padStart(2, '0')}.0`;
  }

  /** §3: booted → Created; the process and the config stay. */
  private shutdown(): StandinReply {
    const what = 'The VM could not shutdown';
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.vm) return apiError(what, NOT_RUNNING);
    this.vm = undefined;
    this.emit('vm', 'shutdown');
    return NO_CONTENT;
  }

  /** §3: booted only — 404 when nothing is booted, even with a stored config. */
  private reboot(): StandinReply {
    const what = 'The VM could not reboot';
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.vm) return apiError(what, NOT_CREATED);
    this.rebootVm();
    return NO_CONTENT;
  }

  /** The old VM is shut down and a new one boots from the same config, so a Paused VM comes back Running. */
  private rebootVm(): void {
    this.emit('vm', 'rebooting');
    this.startVm('Running');
    this.emit('vm', 'rebooted');
  }

  /** §3/§4: booted only; 500 (not the documented 404) when no VM is booted (issue #8678). */
  private powerButton(): StandinReply {
    const refused = this.whileBooted('Error triggering power button');
    if (refused) return refused;
    if (this.options.powerButton === 'poweroff') setImmediate(() => this.guest.powerOff());
    return NO_CONTENT;
  }

  /** §3: Running → Paused; any other state 500. A second pause fails the state transition check. */
  private pause(): StandinReply {
    const what = 'The VM could not be paused';
    const refused = this.whileBooted(what);
    if (refused) return refused;
    const vm = this.vm as { state: 'Running' | 'Paused' };
    if (vm.state === 'Paused') {
      return apiError(what, {
        status: 500,
        chain: [
          'Cannot pause VM',
          'Failed to pause migratable component',
          'Invalid transition: InvalidStateTransition(Paused, Paused)',
        ],
      });
    }
    this.emit('vm', 'pausing');
    vm.state = 'Paused';
    this.emit('vm', 'paused');
    return NO_CONTENT;
  }

  /** §3: Paused → Running; any other state 500. */
  private resume(): StandinReply {
    const what = 'The VM could not resume';
    const refused = this.whileBooted(what);
    if (refused) return refused;
    const vm = this.vm as { state: 'Running' | 'Paused' };
    if (vm.state === 'Running') {
      return apiError(what, {
        status: 500,
        chain: [
          'Cannot resume VM',
          'Failed to resume migratable component',
          'Invalid transition: InvalidStateTransition(Running, Running)',
        ],
      });
    }
    this.emit('vm', 'resuming');
    vm.state = 'Running';
    this.emit('vm', 'resumed');
    return NO_CONTENT;
  }

  /** §3: Created or booted; 404 in NoVM; during a migration the pre-migration snapshot (§2). */
  private info(): StandinReply {
    if (this.migration) return { status: 200, body: this.migration.info };
    if (!this.config) return apiError('The VM info is not available', NOT_CREATED);
    return { status: 200, body: this.vmInfo() };
  }

  private vmInfo(): VmInfo {
    const config = structuredClone(this.config as VmConfig);
    const memory = config.memory ?? { size: 0 };
    const zones = (memory.zones ?? []).reduce((sum, z) => sum + z.size, 0);
    const info: VmInfo = {
      config,
      state: this.vm ? this.vm.state : 'Created',
      memory_actual_size: memory.size + zones - (this.vm ? (config.balloon?.size ?? 0) : 0),
    };
    if (this.vm) {
      const tree: Record<string, DeviceNode> = {};
      for (const [id, bdf] of this.vm.bdfs) tree[id] = { id, resources: [], children: [], pci_bdf: bdf };
      info.device_tree = tree;
    }
    return info;
  }

  private counters(): VmCounters {
    const config = this.config as VmConfig;
    const counters: VmCounters = {};
    for (const disk of config.disks ?? []) {
      if (disk.id) counters[disk.id] = { read_bytes: 0, read_ops: 0, write_bytes: 0, write_ops: 0 };
    }
    for (const net of config.net ?? []) {
      if (net.id) counters[net.id] = { rx_bytes: 0, rx_frames: 0, tx_bytes: 0, tx_frames: 0 };
    }
    return counters;
  }

  /** §3: always 204; a no-op in NoVM; a booted VM is shut down first. */
  private delete(): StandinReply {
    if (this.migration && this.config) return apiError('The VM could not be deleted', MIGRATING);
    this.deleteVm();
    return NO_CONTENT;
  }

  private deleteVm(): void {
    if (!this.config) return;
    if (this.vm) {
      this.vm = undefined;
      this.emit('vm', 'shutdown');
    }
    this.config = undefined;
    this.emit('vm', 'deleted');
  }

  /**
   * §3 `vm.add-*`: 404 in NoVM; the config with the device added is validated first (409 duplicate id/path, 400
   * otherwise; only one vsock). Booted: hot-plug, 200 + PciDeviceInfo. Created: cold add to the config, 204.
   */
  private addDevice(endpoint: string, device: Device): StandinReply {
    const { key, prefix, what } = ADDERS[endpoint];
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.config) return apiError(what, NOT_CREATED);
    const added = structuredClone(device);
    const candidate = structuredClone(this.config);
    if (key === 'vsock') {
      if (candidate.vsock) return apiError(what, { status: 500, chain: ['Too many virtio-vsock devices'] });
      candidate.vsock = added as VmConfig['vsock'];
    } else {
      (candidate as unknown as Record<string, unknown>)[key] = [...devicesOf(candidate, key), added];
    }
    const violation = validateVmConfig(candidate);
    if (violation) {
      return {
        status: violation.conflict ? 409 : 400,
        body: ['Error from API', what, 'Failed to validate config', violation.message],
      };
    }
    this.config = candidate;
    if (!this.vm) return NO_CONTENT;
    added.id ??= this.nextId(prefix);
    const bdf = this.nextBdf();
    this.vm.bdfs.set(added.id, bdf);
    this.emit('vm', 'device-added', { id: added.id });
    const info: PciDeviceInfo = { id: added.id, bdf };
    return { status: 200, body: info };
  }

  /** §3: Created (edits the config) or booted (hot-unplug); 404 for an unknown id or in NoVM. */
  private removeDevice(id: string): StandinReply {
    const what = 'The device could not be removed from the VM';
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.config) return apiError(what, NOT_CREATED);
    // A view for writing whichever device list holds the id.
    const lists = this.config as unknown as Record<string, unknown>;
    for (const { key } of DEVICE_LISTS) {
      const devices = devicesOf(this.config, key);
      if (!devices.some((d) => d.id === id)) continue;
      if (key === 'vsock') delete lists.vsock;
      else lists[key] = devices.filter((d) => d.id !== id);
      this.vm?.bdfs.delete(id);
      if (this.vm) this.emit('vm', 'device-removed', { id });
      return NO_CONTENT;
    }
    return apiError(what, { status: 404, chain: [`No device with id ${JSON.stringify(id)} to remove`] });
  }

  /** §3: Created (edits the config) or booted (hot-plug; the new sizes show in the config). Limits not modelled. */
  private resize(request: VmResize): StandinReply {
    if (this.migration) return apiError('The VM could not be resized', MIGRATING);
    if (!this.config) return apiError('The VM could not be resized', NOT_CREATED);
    const config = this.config;
    if (request.desired_vcpus !== undefined && config.cpus) config.cpus.boot_vcpus = request.desired_vcpus;
    if (request.desired_ram !== undefined && config.memory) config.memory.size = request.desired_ram;
    if (request.desired_balloon !== undefined && config.balloon) config.balloon.size = request.desired_balloon;
    return NO_CONTENT;
  }

  /** §3: Created or booted; an unknown zone is CH's ResizeZone error. */
  private resizeZone(request: VmResizeZone): StandinReply {
    const what = 'The memory zone could not be resized';
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.config) return apiError(what, NOT_CREATED);
    const zone = this.config.memory?.zones?.find((z) => z.id === request.id);
    if (!zone) return apiError(what, { status: 500, chain: ['Failed resizing a memory zone'] });
    zone.size = request.desired_ram;
    return NO_CONTENT;
  }

  /** §3: booted only; 404 for an unknown disk id. The failure texts are the stand-in's. */
  private resizeDisk(request: VmResizeDisk): StandinReply {
    const what = 'The disk could not be resized';
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.config) return apiError(what, NOT_CREATED);
    if (!this.vm) return apiError(what, { status: 500, chain: ['Cannot resize disk of a VM that is not booted'] });
    if (!this.config.disks?.some((d) => d.id === request.id)) {
      return apiError(what, { status: 404, chain: [`No disk with id ${JSON.stringify(request.id)}`] });
    }
    return NO_CONTENT;
  }

  /** §3: Paused only. Writes config.json + a stand-in state.json into the existing `file://` directory. */
  private snapshot(destinationUrl: string): StandinReply {
    const what = 'The VM could not be snapshotted';
    const refused = this.whileBooted(what);
    if (refused) return refused;
    if (this.vm?.state !== 'Paused') {
      return apiError(what, {
        status: 500,
        chain: [
          'Cannot snapshot VM',
          'Failed to snapshot migratable component',
          'Trying to snapshot while VM is running',
        ],
      });
    }
    const dir = fileUrlDirectory(destinationUrl);
    const sendFailed = (why: string) => apiError(what, { status: 500, chain: ['Cannot send VM snapshot', why] });
    if (!dir) return sendFailed(`stand-in: unsupported snapshot URL ${destinationUrl} (only file://)`);
    try {
      if (!statSync(dir).isDirectory()) return sendFailed(`stand-in: ${dir} is not a directory`);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(this.config, null, 2));
      writeFileSync(join(dir, 'state.json'), JSON.stringify(STANDIN_SNAPSHOT_STATE, null, 2));
    } catch (error) {
      return sendFailed(`stand-in: ${(error as Error).message}`);
    }
    this.emit('vm', 'snapshotted');
    return NO_CONTENT;
  }

  /** §3: NoVM only (500 if a config exists); comes back Paused unless `resume: true`. */
  private restore(request: RestoreConfig): StandinReply {
    const what = 'The VM could not be restored';
    if (this.migration) return apiError(what, MIGRATING);
    if (this.vm || this.config) return apiError(what, ALREADY_CREATED);
    const dir = fileUrlDirectory(request.source_url);
    if (!dir) return apiError(what, { status: 500, chain: ['Invalid restore source URL'] });
    let config: VmConfig;
    try {
      const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as Record<string, unknown>;
      if (state['kubevisor-cloud-hypervisor-standin'] !== true) throw new Error('not a stand-in snapshot');
      config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as VmConfig;
    } catch (error) {
      return apiError(what, { status: 500, chain: ['Cannot restore VM', `stand-in: ${(error as Error).message}`] });
    }
    this.emit('vm', 'restoring');
    this.config = config;
    this.startVm(request.resume ? 'Running' : 'Paused');
    this.emit('vm', 'restored');
    return NO_CONTENT;
  }

  /**
   * §3/§9: Running or Paused. Answers 204 at once; the VM is then owned by the migration. On success the source
   * VMM exits; on failure the VM is handed back in the state it had.
   */
  private sendMigration(request: SendMigrationData): StandinReply {
    const what = 'Error starting migration sender';
    const refuse = (why: string) => apiError(what, { status: 500, chain: [why] });
    if (this.migration) return refuse('There is already an ongoing migration');
    if (!this.vm || !this.config) return refuse('VM is not running');
    const address = parseMigrationUrl(request.destination_url);
    if (!address) return refuse('Invalid send migration configuration');
    if (address.kind === 'unix' && (request.connections ?? 1) > 1)
      return refuse('Invalid send migration configuration');
    if (request.local && !(this.config.memory?.shared || this.config.memory?.hugepages)) {
      return refuse('Local migration requires shared memory or hugepages enabled');
    }
    const vm = this.vm;
    const payload = { config: structuredClone(this.config), state: vm.state };
    this.migration = { info: this.vmInfo() };
    this.emit('vm', 'migration-started');
    sendMigration(address, payload, (request.timeout_s ?? 3600) * 1000).then(
      () => {
        this.emit('vm', 'migration-finished');
        this.options.onExit?.('migrated');
      },
      (error: Error) => {
        this.migration = undefined;
        this.vm = vm;
        this.emit('vm', 'migration-failed', { error: error.message });
      },
    );
    return NO_CONTENT;
  }

  /** §3/§9: no booted VM (a stored config is overwritten); answers only when the migration has finished. */
  private async receiveMigration(request: ReceiveMigrationData): Promise<StandinReply> {
    const what = 'Error starting migration receiver';
    const refuse = (why: string) => apiError(what, { status: 500, chain: [why] });
    if (this.migration) return refuse('There is already an ongoing migration');
    if (this.vm) return refuse("Can't receive a migration when a VM is already created");
    const address = parseMigrationUrl(request.receiver_url);
    if (!address) return refuse('Invalid receive migration configuration');
    this.emit('vm', 'migration-receive-ready');
    try {
      const received = await receiveMigration(address, this.abort.signal);
      this.config = received.config;
      this.startVm(received.state);
      this.emit('vm', 'migration-receive-finished');
      return NO_CONTENT;
    } catch (error) {
      this.config = undefined;
      this.emit('vm', 'migration-receive-failed', { error: (error as Error).message });
      return refuse(`Migration was aborted: ${(error as Error).message}`);
    }
  }
}
