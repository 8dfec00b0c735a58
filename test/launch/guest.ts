/**
 * The launch suite's real guest: Debian's cloud kernel with a busybox /init (tools/guest/init.sh)
 * booted under QEMU TCG on a tap device inside a network namespace. The guest takes a DHCP lease,
 * reads its NoCloud (cidata) disk, pings peers, optionally serves HTTP, and reports each finding as
 * a `KV-GUEST <kind> ...` line on the serial console; this module turns those lines into a typed
 * {@link GuestResult}. Tests assert what a real guest saw, not what the launcher meant to set up.
 *
 * Every QEMU (and every process started with {@link startInNetns}) runs in its own process group,
 * is killed on timeout and on stop(), and dies with this Node process however that ends (Jest
 * included). Namespaces made with {@link makeNetns} are removed by {@link deleteNetns}; any that a
 * dead test process left behind are removed, with whatever still runs in them, by the next
 * makeNetns().
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const repoRoot = path.resolve(__dirname, '../..');
const buildScript = path.join(repoRoot, 'tools/guest/build.sh');

// ---- fixture -------------------------------------------------------------------------------------

export interface GuestFixture {
  /** The cache dir tools/guest/build.sh built, keyed by package versions. */
  readonly dir: string;
  readonly kernel: string;
  readonly initramfs: string;
  /** versions.txt: kernel-package, kernel-version, kernel-release, busybox-static, modules, dnsmasq. */
  readonly versions: Readonly<Record<string, string>>;
  /**
   * A directory holding a `dnsmasq` that serves DHCP with CAP_NET_BIND_SERVICE only (≥ 2.91), when the host's is
   * older; the VM pod's PATH puts it first.
   */
  readonly dnsmasqBin?: string;
}

let cachedFixture: GuestFixture | undefined;

/** The built guest; throws saying how to build it when it is missing (this never builds). */
export function guestFixture(): GuestFixture {
  if (cachedFixture) return cachedFixture;
  let dir: string;
  try {
    dir = execFileSync('bash', [buildScript, '--print-dir'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    }).trim();
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(
      `${stderr || `guest: ${buildScript} --print-dir failed: ${(error as Error).message}`} ` +
        '(as root, build.sh also installs the host packages: qemu-system-x86, cpio, genisoimage, dnsmasq-base, and ' +
        'bundles a dnsmasq ≥ 2.91 when the host has an older one)',
    );
  }
  const kernel = path.join(dir, 'vmlinuz');
  const initramfs = path.join(dir, 'initramfs.cpio.gz');
  for (const file of [kernel, initramfs]) {
    if (!fs.existsSync(file)) throw new Error(`guest: ${file} is missing; delete ${dir} and run tools/guest/build.sh`);
  }
  const versions: Record<string, string> = {};
  for (const line of fs.readFileSync(path.join(dir, 'versions.txt'), 'utf8').split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) versions[line.slice(0, space)] = line.slice(space + 1);
  }
  const dnsmasqBin = path.join(dir, 'dnsmasq/bin');
  cachedFixture = {
    dir,
    kernel,
    initramfs,
    versions,
    ...(fs.existsSync(path.join(dnsmasqBin, 'dnsmasq')) ? { dnsmasqBin } : {}),
  };
  return cachedFixture;
}

// ---- what the guest reports ----------------------------------------------------------------------

export interface GuestDhcp {
  readonly ip: string;
  readonly prefixLength: number;
  /** First router (option 3) the server sent; with option 121 present the guest routes by 121 only. */
  readonly router: string;
  readonly mtu?: number;
  readonly dns: readonly string[];
  readonly domain: string;
  readonly search: readonly string[];
  /** Guest clock: ms from /init's start to the lease being applied. */
  readonly ms: number;
}

export interface GuestDisk {
  /** Kernel name, e.g. vda (in attachment order). */
  readonly name: string;
  readonly bytes: number;
  readonly readOnly: boolean;
  /** 'iso9660' when an ISO 9660 volume descriptor is present. */
  readonly fs?: string;
  readonly label?: string;
  /** sha256 of the first 4 KiB, to recognise a raw image's content. */
  readonly headSha256: string;
}

export interface GuestFile {
  readonly name: string;
  readonly bytes: number;
  readonly sha256: string;
}

export interface GuestReport {
  readonly init?: { readonly uptimeMs: number; readonly kernel: string };
  readonly nic?: { readonly name: string; readonly mac: string };
  readonly dhcp?: GuestDhcp;
  /** Lines of the guest's `ip route` after DHCP, e.g. `10.98.0.0/24 via 10.99.0.1 dev eth0`. */
  readonly routes: readonly string[];
  /** The NIC's MTU after DHCP. */
  readonly linkMtu?: number;
  readonly disks: readonly GuestDisk[];
  readonly cidata?: { readonly device: string; readonly files: readonly string[] };
  readonly cidataFiles: readonly GuestFile[];
  readonly userdata?: { readonly sha256: string; readonly bytes: number; readonly firstLine: string };
  readonly metadata?: { readonly instanceId: string; readonly localHostname: string };
  readonly peers: readonly { readonly ip: string; readonly ok: boolean }[];
  /** Spoofing attempts (kv.spoof): what the guest sent and whether anything answered. */
  readonly spoofs: readonly GuestSpoof[];
  /** TCP connections the guest tried (kv.probe): `host:port` and whether an HTTP GET there succeeded. */
  readonly probes: readonly { readonly target: string; readonly ok: boolean }[];
  /** The first port served (kv.http); the others report the same way. */
  readonly http?: { readonly port: number; readonly closed?: 'bye' | 'hold' };
  /** The guest's own web server (port 80 unless kv.web moved it), up from when its NIC is. */
  readonly web?: { readonly port: number };
  /** kv.then=stay: the guest stays up after `done`. */
  readonly stay?: boolean;
  /** The ACPI power button was pressed; the guest powers off. */
  readonly powerButton?: boolean;
  /** `KV-GUEST error ...` lines: what the guest could not do (no NIC, no lease, no cidata, ...). */
  readonly errors: readonly string[];
  readonly done: boolean;
}

/**
 * One spoofing attempt: `control` pings the first target as itself; `mac` pings the second from a forged MAC; `ip`
 * pings the third from a forged source address; `arp` announces the forged address in gratuitous ARP.
 */
export interface GuestSpoof {
  readonly kind: 'control' | 'mac' | 'ip' | 'arp';
  /** The guest did what it was told (changed its MAC, added the address, sent). */
  readonly sent: boolean;
  /** Something answered (a ping reply). */
  readonly reply: boolean;
}

export interface GuestResult extends GuestReport {
  /** Everything QEMU printed on the serial console (kernel log and markers). */
  readonly serial: string;
  /** QEMU's own stderr (e.g. a tap it could not open). */
  readonly stderr: string;
  /** Host ms from QEMU's start to `KV-GUEST done`, or to the end of the run when done never came. */
  readonly bootMs: number;
  /** Host ms from QEMU's start to each milestone. */
  readonly timings: { readonly initMs?: number; readonly dhcpMs?: number; readonly doneMs?: number };
  readonly exit?: { readonly code: number | null; readonly signal: NodeJS.Signals | null };
  readonly timedOut: boolean;
  readonly stopped: boolean;
}

/** Marker kinds a caller can wait for with {@link RunningGuest.waitFor}. */
export type GuestMarker =
  | 'init'
  | 'nic'
  | 'dhcp'
  | 'route'
  | 'link'
  | 'disk'
  | 'cidata'
  | 'cidata-file'
  | 'userdata'
  | 'metadata'
  | 'peer'
  | 'spoof'
  | 'probe'
  | 'http'
  | 'web'
  | 'error'
  | 'done'
  | 'stay'
  | 'power-button';

const markerPattern = /KV-GUEST (\S+) ?(.*)$/;

/** `a=1 b= c=x` → { a: '1', b: '', c: 'x' } (values never contain spaces, except where handled). */
function fields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const token of text.split(' ')) {
    const eq = token.indexOf('=');
    if (eq > 0) out[token.slice(0, eq)] = token.slice(eq + 1);
  }
  return out;
}

const list = (value: string | undefined): string[] => (value ? value.split(',').filter((v) => v !== '') : []);
const optionalNumber = (value: string | undefined): number | undefined =>
  value === undefined || value === '' ? undefined : Number(value);

/** Mutable twin of GuestReport used while parsing. */
type Draft = { -readonly [K in keyof GuestReport]: GuestReport[K] } & {
  routes: string[];
  disks: GuestDisk[];
  cidataFiles: GuestFile[];
  peers: { ip: string; ok: boolean }[];
  spoofs: GuestSpoof[];
  probes: { target: string; ok: boolean }[];
  errors: string[];
};

function emptyDraft(): Draft {
  return { routes: [], disks: [], cidataFiles: [], peers: [], spoofs: [], probes: [], errors: [], done: false };
}

/** Applies one serial line; returns the marker kind when the line was a marker. */
function applyLine(draft: Draft, rawLine: string): string | undefined {
  const match = markerPattern.exec(rawLine.replace(/\r$/, ''));
  if (!match) return undefined;
  const [, kind, rest] = match;
  const f = fields(rest);
  switch (kind) {
    case 'init':
      draft.init = { uptimeMs: Number(f['uptime-ms']), kernel: f.kernel ?? '' };
      break;
    case 'nic':
      draft.nic = { name: f.name ?? '', mac: f.mac ?? '' };
      break;
    case 'dhcp': {
      const [ip, prefix] = (f.ip ?? '').split('/');
      draft.dhcp = {
        ip,
        prefixLength: Number(prefix),
        router: f.router ?? '',
        mtu: optionalNumber(f.mtu),
        dns: list(f.dns),
        domain: f.domain ?? '',
        search: list(f.search),
        ms: Number(f.ms),
      };
      break;
    }
    case 'route':
      // busybox pads some separators with two spaces; normalise so callers can match substrings.
      draft.routes.push(rest.trim().replace(/\s+/g, ' '));
      break;
    case 'link':
      draft.linkMtu = optionalNumber(f.mtu);
      break;
    case 'disk':
      draft.disks.push({
        name: f.name ?? '',
        bytes: Number(f.bytes),
        readOnly: f.ro === '1',
        fs: f.fs && f.fs !== '-' ? f.fs : undefined,
        label: f.label && f.label !== '-' ? f.label : undefined,
        headSha256: f['head-sha256'] ?? '',
      });
      break;
    case 'cidata':
      draft.cidata = { device: f.device ?? '', files: list(f.files) };
      break;
    case 'cidata-file':
      draft.cidataFiles.push({ name: f.name ?? '', bytes: Number(f.bytes), sha256: f.sha256 ?? '' });
      break;
    case 'userdata': {
      // first-line is the rest of the line and may contain spaces.
      const at = rest.indexOf('first-line=');
      const head = fields(at >= 0 ? rest.slice(0, at) : rest);
      draft.userdata = {
        sha256: head.sha256 ?? '',
        bytes: Number(head.bytes),
        firstLine: at >= 0 ? rest.slice(at + 'first-line='.length) : '',
      };
      break;
    }
    case 'metadata':
      draft.metadata = { instanceId: f['instance-id'] ?? '', localHostname: f['local-hostname'] ?? '' };
      break;
    case 'peer': {
      const [ip, verdict] = rest.split(' ');
      draft.peers.push({ ip, ok: verdict === 'ok' });
      break;
    }
    case 'spoof': {
      const kind = rest.split(' ')[0];
      if (kind === 'control' || kind === 'mac' || kind === 'ip' || kind === 'arp') {
        draft.spoofs.push({ kind, sent: f.sent === 'yes', reply: f.reply === 'yes' });
      } else draft.errors.push(`unknown spoof: ${rawLine}`);
      break;
    }
    case 'probe': {
      const [target, verdict] = rest.split(' ');
      draft.probes.push({ target, ok: verdict === 'ok' });
      break;
    }
    case 'http':
      if (rest.startsWith('closed')) {
        draft.http = { port: draft.http?.port ?? 0, closed: f.reason === 'bye' ? 'bye' : 'hold' };
      } else {
        draft.http ??= { port: Number(f.port) };
      }
      break;
    case 'web':
      draft.web ??= { port: Number(f.port) };
      break;
    case 'stay':
      draft.stay = true;
      break;
    case 'power-button':
      draft.powerButton = true;
      break;
    case 'error':
      draft.errors.push(rest);
      break;
    case 'done':
      draft.done = true;
      break;
    default:
      draft.errors.push(`unknown marker: ${rawLine}`);
  }
  return kind;
}

/** Parses a whole serial log (pure; bootGuest parses incrementally with the same rules). */
export function parseGuestSerial(serial: string): GuestReport {
  const draft = emptyDraft();
  for (const line of serial.split('\n')) applyLine(draft, line);
  return draft;
}

// ---- process tracking ----------------------------------------------------------------------------

const liveGroups = new Set<number>();
const liveNetns = new Set<string>();
let exitHandlersInstalled = false;

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Last resort when a test did not clean up: synchronous, because it runs in process 'exit'. */
function cleanUpEverything(): void {
  for (const pid of liveGroups) signalGroup(pid, 'SIGKILL');
  liveGroups.clear();
  for (const name of liveNetns) removeNetnsNow(name);
  liveNetns.clear();
}

function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.on('exit', cleanUpEverything);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanUpEverything();
      process.off(signal, onSignal);
      // End the way the process would have without this handler, unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/**
 * Spawns argv inside the namespace as the leader of a new process group (so a signal reaches
 * anything it forks). `ip netns exec` and setpriv both exec, so the pid is argv's own. setpriv sets
 * PR_SET_PDEATHSIG: the kernel kills the process when this Node process dies, however it dies.
 * That is the guarantee under Jest, whose sandboxed `process` never receives the real process's
 * 'exit' or signal events; the handlers above serve plain Node scripts (tsx, benchmarks).
 */
function spawnInNetns(
  netns: string,
  argv: readonly string[],
  stdio: 'pipe' | number,
  capabilities?: readonly string[],
): ChildProcess {
  installExitHandlers();
  // A root process keeps, across exec, only the capabilities in its bounding set.
  const caps = capabilities
    ? ['--bounding-set', ['-all', ...capabilities.map((c) => `+${c}`)].join(','), '--inh-caps', '-all']
    : [];
  const [file, ...args] = ['ip', 'netns', 'exec', netns, 'setpriv', '--pdeathsig', 'KILL', ...caps, '--', ...argv];
  const child = spawn(file, args, { detached: true, stdio: ['ignore', stdio, stdio] });
  if (child.pid !== undefined) {
    const pid = child.pid;
    liveGroups.add(pid);
    child.once('exit', () => liveGroups.delete(pid));
  }
  return child;
}

/** SIGTERM, then SIGKILL after graceMs; resolves when `exited` does. */
async function stopGroup(pid: number, exited: Promise<unknown>, graceMs: number): Promise<void> {
  signalGroup(pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), graceMs);
  });
  const outcome = await Promise.race([exited.then(() => 'exited' as const), graceOver]);
  clearTimeout(timer);
  if (outcome === 'late') {
    signalGroup(pid, 'SIGKILL');
    await exited;
  }
}

// ---- network namespaces and helper processes -----------------------------------------------------

function ip(args: readonly string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`ip ${args.join(' ')}: ${(stderr || error.message).trim()}`));
      else resolve(stdout);
    });
  });
}

/**
 * Each namespace made here is recorded as <tmpdir>/kubevisor-launch-netns/<name> holding the pid of
 * the Node process that owns it. A process killed outright (SIGKILL, OOM) runs no exit handler; the
 * next makeNetns() finds its records and removes what it left: the processes inside its namespaces
 * (QEMU, dnsmasq) and the namespaces themselves. Only recorded namespaces are ever touched.
 */
const ownerDir = path.join(os.tmpdir(), 'kubevisor-launch-netns');
let orphansReaped = false;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills every process inside the namespace, then deletes it (synchronous: also used at exit). */
function removeNetnsNow(name: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8', timeout: 10_000 });
    for (const pid of pids.split(/\s+/).filter((p) => p !== '')) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  } catch {
    // No such namespace.
  }
  try {
    execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // No such namespace.
  }
  fs.rmSync(path.join(ownerDir, name), { force: true });
}

function reapOrphanNetns(): void {
  if (orphansReaped) return;
  orphansReaped = true;
  let names: string[];
  try {
    names = fs.readdirSync(ownerDir);
  } catch {
    return;
  }
  for (const name of names) {
    const owner = Number(fs.readFileSync(path.join(ownerDir, name), 'utf8'));
    if (owner > 0 && owner !== process.pid && !isAlive(owner)) removeNetnsNow(name);
  }
}

/** Creates a network namespace with lo up; it is deleted at process exit if deleteNetns never ran. */
export async function makeNetns(name: string): Promise<void> {
  installExitHandlers();
  reapOrphanNetns();
  await ip(['netns', 'add', name]);
  liveNetns.add(name);
  fs.mkdirSync(ownerDir, { recursive: true });
  fs.writeFileSync(path.join(ownerDir, name), String(process.pid));
  await ip(['-n', name, 'link', 'set', 'lo', 'up']);
}

/**
 * Kills whatever still runs inside the namespace (only processes a test started there), then deletes
 * it and so every interface in it. A missing namespace is not an error.
 */
export async function deleteNetns(name: string): Promise<void> {
  liveNetns.delete(name);
  removeNetnsNow(name);
  // removeNetnsNow() swallows errors (it also runs at exit); here a namespace that survived must fail.
  const list = await ip(['netns', 'list']);
  if (list.split('\n').some((line) => line.split(' ')[0] === name)) {
    throw new Error(`guest: network namespace ${name} still exists after deleting it`);
  }
}

export interface NetnsProcess {
  readonly pid: number;
  /** Resolves with the exit once the process has ended (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, SIGKILL after 3 s; resolves once the process has ended. */
  stop(): Promise<void>;
}

/**
 * Starts a long-running process (e.g. dnsmasq) inside a namespace, its output appended to logPath; with
 * `capabilities`, only those (names as setpriv takes them), as a VM pod's container runs.
 */
export function startInNetns(
  netns: string,
  argv: readonly string[],
  logPath: string,
  capabilities?: readonly string[],
): NetnsProcess {
  const logFd = fs.openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawnInNetns(netns, argv, logFd, capabilities);
  } finally {
    fs.closeSync(logFd); // the child holds its own copy
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: -1, signal: null }));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`guest: could not start ${argv.join(' ')} in ${netns}`);
  let ended = false;
  void exited.then(() => (ended = true));
  return {
    pid,
    exited,
    stop: async () => {
      if (!ended) await stopGroup(pid, exited, 3_000);
    },
  };
}

/**
 * GET a URL from inside a namespace (e.g. a peer reaching the guest's kv.http server). Runs this
 * Node binary there, so the host needs no curl or wget. Rejects on a non-2xx status or timeout.
 */
export function httpGetInNetns(netns: string, url: string, timeoutMs = 10_000): Promise<string> {
  const script =
    'fetch(process.argv[1],{signal:AbortSignal.timeout(Number(process.argv[2]))})' +
    '.then(async r=>{const t=await r.text();if(!r.ok)throw new Error("HTTP "+r.status+": "+t);process.stdout.write(t)})' +
    '.catch(e=>{process.stderr.write(String(e&&e.cause||e));process.exit(1)})';
  const args = ['netns', 'exec', netns, process.execPath, '-e', script, url, String(timeoutMs)];
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: timeoutMs + 5_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`GET ${url} from netns ${netns}: ${(stderr || error.message).trim()}`));
      else resolve(stdout);
    });
  });
}

/**
 * Writes a NoCloud seed ISO (volume id `cidata`, Rock Ridge + Joliet names, as cloud-init's docs
 * make it) holding `files` (e.g. user-data, meta-data) and returns its path.
 */
export function makeCidataIso(dir: string, files: Readonly<Record<string, string>>, isoName = 'cidata.iso'): string {
  const staging = fs.mkdtempSync(path.join(dir, 'cidata-'));
  try {
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(staging, name), content);
    const iso = path.join(dir, isoName);
    const names = Object.keys(files);
    const mkisofsArgs = ['-quiet', '-output', iso, '-volid', 'cidata', '-joliet', '-rock', ...names];
    const tool = commandExists('genisoimage') ? ['genisoimage'] : ['xorriso', '-as', 'mkisofs'];
    execFileSync(tool[0], [...tool.slice(1), ...mkisofsArgs], { cwd: staging, stdio: ['ignore', 'ignore', 'pipe'] });
    return iso;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

function commandExists(name: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir, name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

// ---- booting ------------------------------------------------------------------------------------

export type GuestMachine = 'microvm' | 'q35';

export interface BootGuestOptions {
  /** Namespace holding the tap (QEMU runs there, as CH runs in the VM pod). */
  readonly netns: string;
  readonly tap: string;
  readonly mac: string;
  /** Raw or ISO files, attached read-only as virtio-blk in order (vda, vdb, ...). */
  readonly disks?: readonly string[];
  /** Each is pinged from the guest (`KV-GUEST peer <ip> ok|fail`). */
  readonly peers?: readonly string[];
  /** Serve HTTP on this port after the checks, until GET /cgi-bin/bye or holdSeconds. */
  readonly httpPort?: number;
  /** Serve the same on these ports too. */
  readonly extraHttpPorts?: readonly number[];
  /**
   * Try to spoof (kv.spoof): ping `targets[0]` as itself, `targets[1]` from the MAC `mac`, `targets[2]` from the
   * source address `ip`, and announce `ip` by gratuitous ARP; then restore its own MAC and addresses.
   */
  readonly spoof?: { readonly targets: readonly [string, string, string]; readonly mac: string; readonly ip: string };
  /** `host:port` the guest GETs over HTTP (kv.probe), each reported ok or fail. */
  readonly probes?: readonly string[];
  /**
   * Run QEMU with only these capabilities (names as setpriv takes them, e.g. `net_bind_service`), as Cloud Hypervisor
   * runs in the VM pod: it must open the TAP without CAP_NET_ADMIN. @default every capability
   */
  readonly capabilities?: readonly string[];
  /** How long (guest seconds) the HTTP server stays up without a /cgi-bin/bye. @default 60 */
  readonly holdSeconds?: number;
  /** false: skip DHCP (kv.dhcp=off). @default true */
  readonly dhcp?: boolean;
  /** Extra kernel arguments appended last. */
  readonly cmdline?: string;
  /** microvm boots fastest (virtio-mmio); q35 gives virtio-pci as Cloud Hypervisor does. @default 'microvm' */
  readonly machine?: GuestMachine;
  /** @default 256 */
  readonly memoryMiB?: number;
  /** Print the kernel's boot log on the serial console too (slower under TCG). @default false */
  readonly kernelLog?: boolean;
  /** QEMU is killed when the guest has not finished by then. */
  readonly timeoutMs: number;
}

export interface RunningGuest {
  readonly pid: number;
  /** Settles when QEMU has exited: after `KV-GUEST done`, on its own, on timeout or stop(). Never rejects. */
  readonly result: Promise<GuestResult>;
  /** What the guest reported so far. */
  snapshot(): GuestResult;
  /** Resolves once the guest printed a marker of this kind; rejects if the guest ends first or after timeoutMs. */
  waitFor(kind: GuestMarker, timeoutMs?: number): Promise<GuestResult>;
  /** Kills QEMU (if still running) and resolves with the result. */
  stop(): Promise<GuestResult>;
}

/** QEMU's -drive syntax separates options with commas; a comma in a path is written twice. */
const qemuPath = (p: string): string => p.replace(/,/g, ',,');

export function qemuArgs(options: BootGuestOptions, fixture: GuestFixture): string[] {
  const microvm = (options.machine ?? 'microvm') === 'microvm';
  const suffix = microvm ? 'device' : 'pci';
  const append = [
    'console=ttyS0',
    // TCG has no stable TSC to calibrate against; stating one skips a slow, noisy calibration.
    'tsc_early_khz=2000000',
    'tsc=reliable',
    // A kernel panic (e.g. /init dying) reboots, which -no-reboot turns into QEMU's exit.
    'panic=-1',
    ...(options.kernelLog ? [] : ['quiet']),
    ...(options.peers?.length ? [`kv.peer=${options.peers.join(',')}`] : []),
    ...(options.httpPort !== undefined
      ? [`kv.http=${[options.httpPort, ...(options.extraHttpPorts ?? [])].join(',')}`]
      : []),
    ...(options.spoof
      ? [
          `kv.spoof=${options.spoof.targets.join(',')}`,
          `kv.spoof-mac=${options.spoof.mac}`,
          `kv.spoof-ip=${options.spoof.ip}`,
        ]
      : []),
    ...(options.probes?.length ? [`kv.probe=${options.probes.join(',')}`] : []),
    ...(options.holdSeconds !== undefined ? [`kv.hold=${options.holdSeconds}`] : []),
    ...(options.dhcp === false ? ['kv.dhcp=off'] : []),
    ...(options.cmdline ? [options.cmdline] : []),
  ].join(' ');
  const args = [
    '-M',
    microvm ? 'microvm,x-option-roms=off' : 'q35',
    '-accel',
    'tcg',
    '-cpu',
    'max',
    '-smp',
    '1',
    '-m',
    String(options.memoryMiB ?? 256),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-serial',
    'stdio',
    '-kernel',
    fixture.kernel,
    '-initrd',
    fixture.initramfs,
    '-append',
    append,
    // No /dev/vhost-net on the test machines: QEMU moves the packets itself.
    '-netdev',
    `tap,id=n0,ifname=${options.tap},script=no,downscript=no,vhost=off`,
    '-device',
    `virtio-net-${suffix},netdev=n0,mac=${options.mac}`,
  ];
  (options.disks ?? []).forEach((disk, i) => {
    args.push('-drive', `file=${qemuPath(disk)},if=none,id=d${i},format=raw,readonly=on`);
    args.push('-device', `virtio-blk-${suffix},drive=d${i}`);
  });
  return args;
}

/** After `KV-GUEST done` the guest powers off at once; this bounds a guest that fails to. */
const poweroffGraceMs = 5_000;

/** Boots the guest; see {@link RunningGuest}. Throws only when the fixture is missing. */
export function bootGuest(options: BootGuestOptions): RunningGuest {
  const fixture = guestFixture();
  const startedAt = Date.now();
  const child = spawnInNetns(
    options.netns,
    ['qemu-system-x86_64', ...qemuArgs(options, fixture)],
    'pipe',
    options.capabilities,
  );
  const draft = emptyDraft();
  const timings: { initMs?: number; dhcpMs?: number; doneMs?: number } = {};
  let serial = '';
  let pending = '';
  let stderr = '';
  let exit: GuestResult['exit'];
  let timedOut = false;
  let stopped = false;
  let finished = false;
  let powerOffTimer: NodeJS.Timeout | undefined;
  const waiters = new Set<{ kind: GuestMarker; resolve: () => void; reject: (error: Error) => void }>();

  const snapshot = (): GuestResult => ({
    ...draft,
    routes: [...draft.routes],
    disks: [...draft.disks],
    cidataFiles: [...draft.cidataFiles],
    peers: [...draft.peers],
    spoofs: [...draft.spoofs],
    probes: [...draft.probes],
    errors: [...draft.errors],
    serial,
    stderr,
    bootMs: timings.doneMs ?? Date.now() - startedAt,
    timings: { ...timings },
    exit,
    timedOut,
    stopped,
  });

  const exited = new Promise<void>((resolve) => {
    // 'close' comes after 'exit' and after stdout has been drained, so no marker is lost.
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      exit ??= { code, signal };
      resolve();
    });
    child.once('error', (error) => {
      stderr += `guest: could not start QEMU: ${error.message}\n`;
      exit ??= { code: -1, signal: null };
      resolve();
    });
  });
  const pid = child.pid ?? -1;
  const kill = async (): Promise<void> => {
    if (pid > 0 && !finished) await stopGroup(pid, exited, 2_000);
  };

  const seen = new Set<string>();
  const onLine = (line: string): void => {
    const kind = applyLine(draft, line);
    if (kind === undefined) return;
    const now = Date.now() - startedAt;
    if (kind === 'init') timings.initMs ??= now;
    if (kind === 'dhcp') timings.dhcpMs ??= now;
    if (kind === 'done') {
      timings.doneMs ??= now;
      powerOffTimer = setTimeout(() => void kill(), poweroffGraceMs);
    }
    seen.add(kind);
    for (const waiter of waiters) {
      if (waiter.kind === kind) {
        waiters.delete(waiter);
        waiter.resolve();
      }
    }
  };

  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    serial += chunk;
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      onLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });

  const timeoutTimer = setTimeout(() => {
    timedOut = true;
    void kill();
  }, options.timeoutMs);

  const result = exited.then(() => {
    finished = true;
    clearTimeout(timeoutTimer);
    clearTimeout(powerOffTimer);
    if (pending !== '') onLine(pending);
    pending = '';
    const final = snapshot();
    for (const waiter of waiters) {
      waiter.reject(
        new Error(`guest: QEMU ended before "KV-GUEST ${waiter.kind}"${describeEnd(final)}\n${serialTail(final)}`),
      );
    }
    waiters.clear();
    return final;
  });

  return {
    pid,
    result,
    snapshot,
    waitFor: (kind, timeoutMs = options.timeoutMs) => {
      if (seen.has(kind)) return Promise.resolve(snapshot());
      if (finished) return Promise.reject(new Error(`guest: QEMU already ended without "KV-GUEST ${kind}"`));
      return new Promise<GuestResult>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`guest: no "KV-GUEST ${kind}" within ${timeoutMs} ms\n${serialTail(snapshot())}`));
        }, timeoutMs);
        const waiter = {
          kind,
          resolve: () => {
            clearTimeout(timer);
            resolve(snapshot());
          },
          reject: (error: Error) => {
            clearTimeout(timer);
            reject(error);
          },
        };
        waiters.add(waiter);
      });
    },
    stop: async () => {
      if (!finished) {
        stopped = true;
        await kill();
      }
      return result;
    },
  };
}

/** Boots the guest and waits for it to finish (done, exit, or timeout). */
export function runGuest(options: BootGuestOptions): Promise<GuestResult> {
  return bootGuest(options).result;
}

function describeEnd(result: GuestResult): string {
  if (result.timedOut) return ' (timed out)';
  if (result.stopped) return ' (stopped)';
  return result.exit ? ` (exit code ${result.exit.code}, signal ${result.exit.signal})` : '';
}

/** The end of the serial log and QEMU's stderr, for failure messages. */
export function serialTail(result: Pick<GuestResult, 'serial' | 'stderr'>, lines = 40): string {
  const tail = result.serial.replace(/\r/g, '').trimEnd().split('\n').slice(-lines).join('\n');
  return `--- guest serial (last ${lines} lines) ---\n${tail}${result.stderr ? `\n--- qemu stderr ---\n${result.stderr.trimEnd()}` : ''}`;
}
