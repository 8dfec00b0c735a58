/**
 * The VMM state machine of the CH stand-in: what each endpoint does in each state, with Cloud Hypervisor v53.0's
 * status codes and error chains as measured against a real binary (reference/cloud-hypervisor.md §14; "§N" cites
 * that page). Bodies arrive here schema-checked and filled in with CH's defaults by the server.
 *
 * States as a client observes them (§2): NoVM (no stored config), Created (config, no live VM — also after
 * `vm.shutdown`), Running, Paused; plus "migrating" while an outgoing migration owns the VM.
 *
 * Status codes (§14): v53.0 answers 404 only for "VM is not created" / "VM config is missing"; every other
 * failure of a well-formed request — config validation at boot, a duplicate id, an unknown device id, a missing
 * host resource — is 500. Error chains have CH's shape `["Error from API", <ApiError>, <VmError>, …root cause]`
 * (§4). Where CH's innermost cause depends on host state a stand-in does not have, the stand-in's own wording is
 * used and says so.
 *
 * Modelled minimally, and only this:
 * - the host resources a VM opens (cloud-hypervisor-standin-resources.ts): missing files fail the boot, a missing
 *   vhost-user backend blocks it ≈60 s;
 * - snapshot writes `config.json` and a stand-in `state.json` into the `file://` directory; restore reads them
 *   back (so one stand-in can restore what another snapshotted). No memory is saved.
 * - migration moves config + Running/Paused between two stand-ins, paced like a real one
 *   (cloud-hypervisor-standin-migration.ts).
 * - hot-plug assigns ids (`_disk3`, CH's prefixes) and PCI addresses from a counter; counters are all zero.
 * - the guest (power button, reboot, power-off, crash) only through {@link CloudHypervisorStandinVmm.guest} —
 *   unless a {@link StandinMachine} runs a real guest (the QEMU guest, cloud-hypervisor-standin-qemu.ts): then
 *   boot, pause, resume, reboot, the power button and every shutdown act on it, and what it does by itself
 *   (power-off, reboot, dying) comes back as the same transitions. Snapshot, restore, migration and changing a
 *   booted VM's devices or sizes are then refused with a `stand-in:` reason: QEMU's guest could not follow them.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
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
import { ADDERS, DEVICE_LISTS, deviceTree, devicesOf, listOf, type Device } from './cloud-hypervisor-standin-devices';
import { formatLogLine, type StandinLogRecord } from './cloud-hypervisor-standin-log';
import {
  guestMemoryBytes,
  parseMigrationUrl,
  receiveMigration,
  sendMigration,
  type MigrationAddress,
} from './cloud-hypervisor-standin-migration';
import {
  missingPayload,
  openDevices,
  releaseDevice,
  releaseResources,
  type DeviceConfigs,
  type HeldResources,
  type HostResourceOptions,
} from './cloud-hypervisor-standin-resources';
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

/** What a guest action did: `ok`, or why the guest could not act (no VM, paused, migrating). */
export type GuestActionResult = { readonly ok: true } | { readonly ok: false; readonly why: string };

/** Transitions the guest causes without an API call (§2, §14). */
export interface StandinGuest {
  /** The guest rebooted: the VMM rebuilds the VM from the same config. */
  reboot(): GuestActionResult;
  /** The guest powered off (ACPI): the VMM ends with exit code 0, or with `noShutdown` keeps the config. */
  powerOff(): GuestActionResult;
  /**
   * A vCPU died with a KVM internal error: to an observer exactly a power-off (same events, exit code 0) except
   * for the error line in CH's log (§14).
   */
  crash(): GuestActionResult;
}

/** A guest that really runs (see cloud-hypervisor-standin-qemu.ts); the VMM drives it and hears what it does. */
export interface StandinMachine {
  /** Starts the guest of a VM just created from `config`, running; a failure fails the boot with `chain`. */
  start(config: VmConfig, events: StandinMachineEvents): Promise<StandinMachineStart>;
}

export type StandinMachineStart =
  { readonly ok: true; readonly guest: StandinRunningGuest } | { readonly ok: false; readonly chain: string[] };

/** What a real guest does by itself. */
export interface StandinMachineEvents {
  /** It powered off (ACPI, `poweroff -f`). */
  poweredOff(): void;
  /** It reset itself (a reboot, a triple fault, a panic with `panic=-1`). */
  reset(): void;
  /** Its emulator ended without being asked; `why` says how. */
  lost(why: string): void;
}

/** A running real guest. Each call resolves once done; `stop` never rejects. */
export interface StandinRunningGuest {
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** A reset after which the guest runs, even if it was paused (CH builds a new VM). */
  reboot(): Promise<void>;
  powerButton(): Promise<void>;
  /** Ends the guest; resolves once its emulator has ended. */
  stop(): Promise<void>;
}

export interface VmmOptions {
  /** Mirrors CH's `--no-shutdown`: a guest power-off leaves the config (Created) instead of ending the VMM (§2). */
  readonly noShutdown?: boolean;
  /** What the guest does on `vm.power-button`. A guest without ACPI handling ignores it. @default 'ignore' */
  readonly powerButton?: 'ignore' | 'poweroff';
  readonly onEvent?: (event: StandinEvent) => void;
  /** The real VMM process would exit now, with this exit code (vmm.shutdown, guest power-off, migrated away, panic). */
  readonly onExit?: (reason: string, code: number) => void;
  /** Receives CH's log lines (what CH writes to stderr at its default level). */
  readonly log?: (line: string) => void;
  /** Maps a path inside the VM pod to the path the stand-in opens. @default identity */
  readonly resolvePath?: (pathInPod: string) => string;
  /** How long `vm.boot` retries a missing vhost-user backend. @default 60000 */
  readonly vhostUserWaitMs?: number;
  /** Guest memory per second an outgoing migration moves. @default 1 GiB/s */
  readonly migrationBytesPerSecond?: number;
  /** Runs a real guest for every booted VM. @default none: the guest is modelled */
  readonly machine?: StandinMachine;
}

/** A VmError of CH with the status its HTTP layer maps it to (§14). */
interface VmErr {
  readonly status: number;
  readonly chain: readonly string[];
}
const NOT_CREATED: VmErr = { status: 404, chain: ['VM is not created'] };
const MISSING_CONFIG: VmErr = { status: 404, chain: ['VM config is missing'] };
const NOT_RUNNING: VmErr = { status: 500, chain: ['VM is not running'] };
const ALREADY_CREATED: VmErr = { status: 500, chain: ['VM is already created'] };
const MIGRATING: VmErr = { status: 500, chain: ['VM is currently migrating'] };
const failure = (...chain: string[]): VmErr => ({ status: 500, chain });

const NO_CONTENT: StandinReply = { status: 204 };

function apiError(what: string, err: VmErr): StandinReply {
  return { status: err.status, body: ['Error from API', what, ...err.chain] };
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

/** The vCPU error v53.0 logged when a guest died of a KVM internal error (§14). */
const VCPU_CRASH: StandinLogRecord = {
  thread: 'vcpu0',
  level: 'ERROR',
  location: 'vmm/src/cpu.rs:1460',
  message: 'VCPU generated error: VcpuRun(Failed to run vcpu Unexpected exit reason on vcpu run: InternalError)',
};

interface LiveVm {
  state: 'Running' | 'Paused';
  /** PCI address of every device, by id. */
  readonly bdfs: Map<string, string>;
  readonly held: HeldResources;
  /** The real guest, when a {@link StandinMachine} runs one. */
  guest?: StandinRunningGuest;
}

/** What the VMM cannot do to a real guest: it is refused with this reason (see the file comment). */
const MACHINE_UNSUPPORTED = 'stand-in: not implemented for the QEMU guest';
/** Refused whenever a real guest runs the VMs. */
const MACHINE_NEVER = new Set(['vm.snapshot', 'vm.restore', 'vm.send-migration', 'vm.receive-migration']);
/** Refused while a real guest runs (they only edit the stored config otherwise). */
const MACHINE_NOT_BOOTED = new Set(['vm.remove-device', 'vm.resize', 'vm.resize-zone', 'vm.resize-disk']);

export class CloudHypervisorStandinVmm {
  private config: VmConfig | undefined;
  private vm: LiveVm | undefined;
  /** Set while an outgoing migration owns the VM; `vm.info` then answers with this snapshot (§2). */
  private migration: { info: VmInfo } | undefined;
  private deviceCounter = 0;
  private pciSlot = 0;
  private readonly abort = new AbortController();
  private readonly started = process.hrtime.bigint();
  /** Real guests being stopped; {@link settled} waits for them. */
  private readonly stopping = new Set<Promise<void>>();

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

  /** Stops anything long-running (a pending receive-migration, a vhost-user wait) and lets go of host resources. */
  dispose(): void {
    this.abort.abort();
    if (this.vm) releaseResources(this.vm.held);
    if (this.vm?.guest) this.track(this.vm.guest.stop());
  }

  /** Resolves once every real guest the VMM ended has ended too (immediately without a {@link StandinMachine}). */
  async settled(): Promise<void> {
    while (this.stopping.size > 0) await Promise.all(this.stopping);
  }

  private track(stopped: Promise<void>): Promise<void> {
    this.stopping.add(stopped);
    void stopped.then(() => this.stopping.delete(stopped));
    return stopped;
  }

  readonly guest: StandinGuest = {
    reboot: () => this.guestAction(() => this.rebootVm()),
    powerOff: () => this.guestAction(() => this.guestEnded('guest powered off')),
    crash: () =>
      this.guestAction(() => {
        this.log(VCPU_CRASH);
        this.guestEnded('guest crashed (vCPU error)');
      }),
  };

  /** Handles one call; `body` is the parsed, schema-valid JSON body or undefined for bodiless endpoints. */
  async handle(endpoint: string, body: unknown): Promise<StandinReply> {
    if (
      this.options.machine &&
      (MACHINE_NEVER.has(endpoint) || (this.vm && (ADDERS[endpoint] || MACHINE_NOT_BOOTED.has(endpoint))))
    ) {
      return apiError(endpoint, failure(MACHINE_UNSUPPORTED));
    }
    if (ADDERS[endpoint]) return this.addDevice(endpoint, body as Device);
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

  private log(record: StandinLogRecord): void {
    this.options.log?.(formatLogLine(process.hrtime.bigint() - this.started, record));
  }

  private resources(): HostResourceOptions {
    return {
      resolvePath: this.options.resolvePath ?? ((path) => path),
      vhostUserWaitMs: this.options.vhostUserWaitMs ?? 60_000,
      signal: this.abort.signal,
    };
  }

  /** A migration URL with a `unix:` path resolved like every other path of the pod (§9). */
  private migrationAddress(url: string): MigrationAddress | undefined {
    const address = parseMigrationUrl(url);
    if (address?.kind !== 'unix') return address;
    return { kind: 'unix', path: this.resources().resolvePath(address.path) };
  }

  /** A guest acts only while its vCPUs run: a VM that is Running and not migrating. */
  private guestAction(act: () => void): GuestActionResult {
    if (!this.vm) return { ok: false, why: 'no VM is running' };
    if (this.migration) return { ok: false, why: 'the VM is migrating' };
    if (this.vm.state !== 'Running') return { ok: false, why: 'the VM is paused' };
    act();
    return { ok: true };
  }

  /** What a real guest does by itself, as long as it is the guest of `vm` (and not migrating). */
  private machineEvents(vm: LiveVm): StandinMachineEvents {
    const current = () => this.vm === vm && !this.migration;
    return {
      poweredOff: () => {
        if (current()) this.guestEnded('guest powered off');
      },
      reset: () => {
        if (current()) this.rebootVm();
      },
      lost: (why) => {
        if (!current()) return;
        this.log({ thread: 'vmm', level: 'ERROR', location: 'stand-in', message: why });
        this.guestEnded('guest crashed (QEMU ended)');
      },
    };
  }

  /** The guest is gone (power-off or crash, indistinguishable but for the log): §2, §14. */
  private guestEnded(reason: string): void {
    void this.dropVm();
    this.emit('vm', 'shutdown');
    if (this.options.noShutdown) return;
    this.config = undefined;
    this.emit('vm', 'deleted');
    this.emit('vmm', 'shutdown');
    this.options.onExit?.(reason, 0);
  }

  /** Drops the live VM; resolves once its real guest, if any, has ended. */
  private dropVm(): Promise<void> {
    const vm = this.vm;
    this.vm = undefined;
    if (!vm) return Promise.resolve();
    releaseResources(vm.held);
    return vm.guest ? this.track(vm.guest.stop()) : Promise.resolve();
  }

  /** `undefined` when a VM is booted and not migrating; otherwise CH's answer for `what` (§3 "booted"). */
  private whileBooted(what: string): StandinReply | undefined {
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.vm) return apiError(what, NOT_RUNNING);
    return undefined;
  }

  private ping(): VmmPingResponse {
    // CH reports its Cargo version and `git describe`; the build string says what this really is.
    return {
      version: '53.0.0',
      build_version: 'v53.0-kubevisor-standin',
      pid: process.pid,
      features: ['io_uring', 'kvm'],
    };
  }

  /** §3: always accepted; deletes the VM, answers 200 (not the spec's 204), then the process exits. */
  private vmmShutdown(): StandinReply {
    if (this.migration) return apiError('The VMM could not shutdown', MIGRATING);
    // The process ends once the guest has (the server waits for settled()).
    void this.deleteVm();
    this.emit('vmm', 'shutdown');
    // The server lets this answer reach the client before it closes.
    this.options.onExit?.('vmm.shutdown', 0);
    return { status: 200 };
  }

  /** §3: NoVM only; stores the config (already filled with CH's defaults), validation waits for boot (§4). */
  private create(config: VmConfig): StandinReply {
    if (this.migration) return apiError('The VM could not be created', MIGRATING);
    if (this.config) return apiError('The VM could not be created', ALREADY_CREATED);
    this.config = structuredClone(config);
    return NO_CONTENT;
  }

  /**
   * §3/§14: Created → Running. 404 without a config; 500 when already booted, when the config is invalid, or when
   * a host resource is missing (after ≈60 s for a vhost-user backend, during which nothing else is answered).
   */
  private async boot(): Promise<StandinReply> {
    const what = 'The VM could not boot';
    if (this.migration) return apiError(what, MIGRATING);
    if (this.vm) return apiError(what, ALREADY_CREATED);
    if (!this.config) return apiError(what, MISSING_CONFIG);
    this.emit('vm', 'booting');
    const violation = validateVmConfig(this.config);
    if (violation) return apiError(what, failure('Failed to validate config', violation));
    // §14: CH unwraps the serial file path when it creates the console devices; the VMM thread panics.
    if (this.config.serial?.mode === 'File' && !this.config.serial.file) return this.panic();
    const opened = await this.createVm('Running', true);
    if (!opened.ok) return apiError(what, failure(...opened.chain));
    const { machine } = this.options;
    if (machine) {
      const { vm } = opened;
      const started = await machine.start(this.config, this.machineEvents(vm));
      if (!started.ok) {
        await this.dropVm();
        return apiError(what, failure(...started.chain));
      }
      vm.guest = started.guest;
    }
    this.emit('vm', 'booted');
    return NO_CONTENT;
  }

  /** The VMM thread died: the API thread's answer channel closes under it, and the process exits 1 (§14). */
  private panic(): StandinReply {
    // Rust's panic message goes to stderr beside the log lines.
    this.options.log?.(
      "thread 'vmm' panicked: called `Option::unwrap()` on a `None` value (stand-in: serial mode File without a file)",
    );
    this.options.onExit?.('the VMM thread panicked', 1);
    return { status: 500, body: ['Error from API', 'Error receiving API response', 'receiving on a closed channel'] };
  }

  /**
   * Creates the VM from the stored config: names the devices that came without an id, opens their host
   * resources (and, for a boot, the payload files), gives each a PCI address. A restored or migrated VM needs no
   * payload: its memory already holds the guest.
   */
  private async createVm(
    state: LiveVm['state'],
    withPayload: boolean,
  ): Promise<{ ok: true; vm: LiveVm } | { ok: false; chain: string[] }> {
    const config = this.config as VmConfig;
    for (const { key, prefix } of DEVICE_LISTS) {
      for (const device of devicesOf(config, key)) device.id ??= this.nextId(prefix);
    }
    const held: HeldResources = new Map();
    const opened = await openDevices(config, held, this.resources());
    if (!opened.ok) return opened;
    const missing = withPayload ? missingPayload(config, this.resources()) : undefined;
    if (missing) {
      releaseResources(held);
      return { ok: false, chain: missing };
    }
    const bdfs = new Map<string, string>();
    for (const { key } of DEVICE_LISTS) {
      for (const device of devicesOf(config, key)) bdfs.set(device.id as string, this.nextBdf());
    }
    const vm: LiveVm = { state, bdfs, held };
    this.vm = vm;
    return { ok: true, vm };
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
  private async shutdown(): Promise<StandinReply> {
    const what = 'The VM could not shutdown';
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.vm) return apiError(what, NOT_RUNNING);
    await this.dropVm();
    this.emit('vm', 'shutdown');
    return NO_CONTENT;
  }

  /** §3: booted only — 404 when nothing is booted, even with a stored config. */
  private async reboot(): Promise<StandinReply> {
    const what = 'The VM could not reboot';
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.vm) return apiError(what, NOT_CREATED);
    const vm = this.vm;
    if (vm.guest) {
      const { guest } = vm;
      this.emit('vm', 'rebooting');
      return this.onGuest(
        what,
        vm,
        () => guest.reboot(),
        () => this.markRebooted(vm),
      );
    }
    this.rebootVm();
    return NO_CONTENT;
  }

  /**
   * Has the real guest of `vm` do something, then (if `vm` is still the live VM) records the new state. A QMP
   * failure is CH's 500 with the stand-in's reason.
   */
  private async onGuest(what: string, vm: LiveVm, act: () => Promise<void>, then: () => void): Promise<StandinReply> {
    try {
      await act();
    } catch (error) {
      return apiError(what, failure(`stand-in: QEMU: ${(error as Error).message}`));
    }
    if (this.vm !== vm) return apiError(what, NOT_RUNNING);
    then();
    return NO_CONTENT;
  }

  private markRebooted(vm: LiveVm): void {
    vm.state = 'Running';
    this.emit('vm', 'rebooted');
  }

  /**
   * The old VM is shut down and a new one boots from the same config, so a Paused VM comes back Running. The
   * stand-in keeps the devices' host resources rather than reopening them.
   */
  private rebootVm(): void {
    this.emit('vm', 'rebooting');
    this.markRebooted(this.vm as LiveVm);
  }

  /** §3/§4: booted only; 500 (not the documented 404) when no VM is booted (issue #8678). */
  private powerButton(): StandinReply | Promise<StandinReply> {
    const what = 'Error triggering power button';
    const refused = this.whileBooted(what);
    if (refused) return refused;
    // A real guest decides for itself; its power-off comes back as an event.
    const vm = this.vm as LiveVm;
    const { guest } = vm;
    if (guest)
      return this.onGuest(
        what,
        vm,
        () => guest.powerButton(),
        () => undefined,
      );
    if (this.options.powerButton === 'poweroff') setImmediate(() => this.guest.powerOff());
    return NO_CONTENT;
  }

  /** §3: Running → Paused; any other state 500. A second pause fails the state transition check. */
  private pause(): StandinReply | Promise<StandinReply> {
    const what = 'The VM could not be paused';
    const refused = this.whileBooted(what);
    if (refused) return refused;
    const vm = this.vm as LiveVm;
    if (vm.state === 'Paused') {
      return apiError(
        what,
        failure(
          'Cannot pause VM',
          'Failed to pause migratable component',
          'Invalid transition: InvalidStateTransition(Paused, Paused)',
        ),
      );
    }
    this.emit('vm', 'pausing');
    const paused = () => {
      vm.state = 'Paused';
      this.emit('vm', 'paused');
    };
    const { guest } = vm;
    if (guest) return this.onGuest(what, vm, () => guest.pause(), paused);
    paused();
    return NO_CONTENT;
  }

  /** §3: Paused → Running; any other state 500. */
  private resume(): StandinReply | Promise<StandinReply> {
    const what = 'The VM could not resume';
    const refused = this.whileBooted(what);
    if (refused) return refused;
    const vm = this.vm as LiveVm;
    if (vm.state === 'Running') {
      return apiError(
        what,
        failure(
          'Cannot resume VM',
          'Failed to resume migratable component',
          'Invalid transition: InvalidStateTransition(Running, Running)',
        ),
      );
    }
    this.emit('vm', 'resuming');
    const resumed = () => {
      vm.state = 'Running';
      this.emit('vm', 'resumed');
    };
    const { guest } = vm;
    if (guest) return this.onGuest(what, vm, () => guest.resume(), resumed);
    resumed();
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
    const info: VmInfo = {
      config,
      state: this.vm ? this.vm.state : 'Created',
      memory_actual_size: guestMemoryBytes(config) - (this.vm ? (config.balloon?.size ?? 0) : 0),
    };
    if (this.vm) info.device_tree = deviceTree(config, this.vm.bdfs);
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
  private async delete(): Promise<StandinReply> {
    if (this.migration && this.config) return apiError('The VM could not be deleted', MIGRATING);
    await this.deleteVm();
    return NO_CONTENT;
  }

  /** Resolves once the real guest, if any, has ended. */
  private deleteVm(): Promise<void> {
    if (!this.config) return Promise.resolve();
    let dropped = Promise.resolve();
    if (this.vm) {
      dropped = this.dropVm();
      this.emit('vm', 'shutdown');
    }
    this.config = undefined;
    this.emit('vm', 'deleted');
    return dropped;
  }

  /**
   * §3/§14 `vm.add-*`: 404 in NoVM; the config with the device added is validated first (500 for a duplicate id or
   * any other violation; only one vsock). Created: cold add to the config, 204 — even for an image another disk
   * uses, since nothing is opened yet. Booted: the device's host resources are opened (500 if missing or locked),
   * then 200 + PciDeviceInfo.
   */
  private async addDevice(endpoint: string, device: Device): Promise<StandinReply> {
    const { list, what } = ADDERS[endpoint];
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.config) return apiError(what, NOT_CREATED);
    const added = structuredClone(device);
    const candidate = structuredClone(this.config);
    if (list.key === 'vsock') {
      if (candidate.vsock) return apiError(what, failure('Too many virtio-vsock devices'));
      candidate.vsock = added as VmConfig['vsock'];
    } else {
      (candidate as unknown as Record<string, unknown>)[list.key] = [...devicesOf(candidate, list.key), added];
    }
    const violation = validateVmConfig(candidate);
    if (violation) return apiError(what, failure('Failed to validate config', violation));
    if (!this.vm) {
      this.config = candidate;
      return NO_CONTENT;
    }
    added.id ??= this.nextId(list.prefix);
    const vm = this.vm;
    const opened = await openDevices({ [list.key]: [added] } as DeviceConfigs, vm.held, this.resources());
    if (!opened.ok) return apiError(what, failure(...opened.chain));
    if (this.vm !== vm) {
      // The guest went away while CH waited for the backend.
      releaseDevice(vm.held, added.id);
      return apiError(what, NOT_RUNNING);
    }
    this.config = candidate;
    const bdf = this.nextBdf();
    vm.bdfs.set(added.id, bdf);
    this.emit('vm', 'device-added', { id: added.id });
    const info: PciDeviceInfo = { id: added.id, bdf };
    return { status: 200, body: info };
  }

  /** §3/§14: Created (edits the config) or booted (hot-unplug); 500 for an unknown id, 404 in NoVM. */
  private removeDevice(id: string): StandinReply {
    const what = 'The device could not be removed from the VM';
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.config) return apiError(what, NOT_CREATED);
    const list = listOf(this.config, id);
    if (!list) return apiError(what, failure(`No device with id ${JSON.stringify(id)} to remove`));
    // A view for writing whichever device list holds the id.
    const lists = this.config as unknown as Record<string, unknown>;
    if (list.key === 'vsock') delete lists.vsock;
    else lists[list.key] = devicesOf(this.config, list.key).filter((d) => d.id !== id);
    if (this.vm) {
      this.vm.bdfs.delete(id);
      releaseDevice(this.vm.held, id);
      this.emit('vm', 'device-removed', { id });
    }
    return NO_CONTENT;
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
    if (!zone) return apiError(what, failure('Failed resizing a memory zone'));
    zone.size = request.desired_ram;
    return NO_CONTENT;
  }

  /** §3/§14: booted only; 500 for an unknown disk id. The not-booted text is the stand-in's. */
  private resizeDisk(request: VmResizeDisk): StandinReply {
    const what = 'The disk could not be resized';
    if (this.migration) return apiError(what, MIGRATING);
    if (!this.config) return apiError(what, NOT_CREATED);
    if (!this.vm) return apiError(what, failure('Cannot resize disk of a VM that is not booted'));
    if (!this.config.disks?.some((d) => d.id === request.id)) {
      return apiError(what, failure('Failed to find device corresponding to the given identifier'));
    }
    return NO_CONTENT;
  }

  /** §3: Paused only. Writes config.json + a stand-in state.json into the existing `file://` directory. */
  private snapshot(destinationUrl: string): StandinReply {
    const what = 'The VM could not be snapshotted';
    const refused = this.whileBooted(what);
    if (refused) return refused;
    if (this.vm?.state !== 'Paused') {
      return apiError(
        what,
        failure(
          'Cannot snapshot VM',
          'Failed to snapshot migratable component',
          'Trying to snapshot while VM is running',
        ),
      );
    }
    const url = fileUrlDirectory(destinationUrl);
    const sendFailed = (why: string) => apiError(what, failure('Cannot send VM snapshot', why));
    if (!url) return sendFailed(`stand-in: unsupported snapshot URL ${destinationUrl} (only file://)`);
    const dir = this.resources().resolvePath(url);
    try {
      if (!statSync(dir).isDirectory()) return sendFailed(`stand-in: ${url} is not a directory`);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(this.config, null, 2));
      writeFileSync(join(dir, 'state.json'), JSON.stringify(STANDIN_SNAPSHOT_STATE, null, 2));
    } catch (error) {
      return sendFailed(`stand-in: ${(error as Error).message}`);
    }
    this.emit('vm', 'snapshotted');
    return NO_CONTENT;
  }

  /** §3: NoVM only (500 if a config exists); comes back Paused unless `resume: true`. */
  private async restore(request: RestoreConfig): Promise<StandinReply> {
    const what = 'The VM could not be restored';
    if (this.migration) return apiError(what, MIGRATING);
    if (this.vm || this.config) return apiError(what, ALREADY_CREATED);
    const url = fileUrlDirectory(request.source_url);
    if (!url) return apiError(what, failure('Invalid restore source URL'));
    const dir = this.resources().resolvePath(url);
    let config: VmConfig;
    try {
      const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as Record<string, unknown>;
      if (state['kubevisor-cloud-hypervisor-standin'] !== true) throw new Error('not a stand-in snapshot');
      config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as VmConfig;
    } catch (error) {
      return apiError(what, failure('Cannot restore VM', `stand-in: ${(error as Error).message}`));
    }
    this.emit('vm', 'restoring');
    this.config = config;
    const opened = await this.createVm(request.resume ? 'Running' : 'Paused', false);
    if (!opened.ok) {
      // CH deletes the half-restored VM.
      this.config = undefined;
      return apiError(what, failure(...opened.chain));
    }
    this.emit('vm', 'restored');
    return NO_CONTENT;
  }

  /**
   * §3/§9: Running or Paused. Answers 204 at once; the VM is then owned by the migration, which takes about
   * memory / rate. On success the source VMM exits (code 0); on failure the VM is handed back in the state it had
   * and keeps running.
   */
  private sendMigration(request: SendMigrationData): StandinReply {
    const what = 'Error starting migration sender';
    const refuse = (why: string) => apiError(what, failure(why));
    if (this.migration) return refuse('There is already an ongoing migration');
    if (!this.vm || !this.config) return refuse('VM is not running');
    const address = this.migrationAddress(request.destination_url);
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
    sendMigration(address, payload, {
      timeoutMs: (request.timeout_s ?? 3600) * 1000,
      bytesPerSecond: this.options.migrationBytesPerSecond,
      local: request.local,
      signal: this.abort.signal,
    }).then(
      () => {
        releaseResources(vm.held);
        this.emit('vm', 'migration-finished');
        this.options.onExit?.('migrated', 0);
      },
      (error: Error) => {
        this.migration = undefined;
        this.vm = vm;
        this.emit('vm', 'migration-failed', { error: error.message });
      },
    );
    return NO_CONTENT;
  }

  /**
   * §3/§9: no booted VM (a stored config is overwritten); answers only when the migration has finished, and
   * nothing else meanwhile. A broken stream answers 500 and leaves NoVM.
   */
  private async receiveMigration(request: ReceiveMigrationData): Promise<StandinReply> {
    const what = 'Error starting migration receiver';
    const refuse = (why: string) => apiError(what, failure(why));
    if (this.migration) return refuse('There is already an ongoing migration');
    if (this.vm) return refuse("Can't receive a migration when a VM is already created");
    const address = this.migrationAddress(request.receiver_url);
    if (!address) return refuse('Invalid receive migration configuration');
    this.emit('vm', 'migration-receive-ready');
    try {
      await receiveMigration(address, this.abort.signal, async (received) => {
        // The destination creates the VM from the received config and state, opening its devices (§9: the
        // disks must exist at the same paths on the destination).
        this.config = received.config;
        const opened = await this.createVm(received.state, false);
        return opened.ok ? undefined : opened.chain.join(': ');
      });
      this.emit('vm', 'migration-receive-finished');
      return NO_CONTENT;
    } catch (error) {
      void this.dropVm();
      this.config = undefined;
      this.emit('vm', 'migration-receive-failed', { error: (error as Error).message });
      return refuse(`Migration was aborted: ${(error as Error).message}`);
    }
  }
}
