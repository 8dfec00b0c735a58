/**
 * A VM pod for launcher tests, built as a kubelet and a CNI would build it, on parts the test owns:
 * - a pod network namespace whose `eth0` is a veth with an address, a MAC, an MTU and a default route, its other end
 *   in a peer namespace standing for the rest of the pod network (a second address on the peer's loopback sits
 *   behind an extra route, so classless routes matter);
 * - the pod's mounts, made in a private mount namespace over temp dirs: the run-dir emptyDir, /mnt (volumes), the
 *   cloud-init Secret dir, /etc/resolv.conf;
 * - the capabilities the pod renderer gives the launcher container — CAP_NET_BIND_SERVICE, nothing else;
 * - the node daemon's part of the network handshake ({@link serveNetworkRequests}): the real netprep, run by this
 *   (root) test process from the host's namespaces, entering the pod's network namespace by its path, as the daemon does.
 * Namespaces come from guest.ts (shared with the guest fixture's own tests); processes left in them are stopped by
 * {@link destroyPodNetwork}, since deleting a namespace does not end the processes inside it.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createConnection } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultObject, type KubevisorObject } from '../../api';
import { TERMINATION_LOG_ENV } from '../../operator/launcher/failure';
import type { LaunchVm } from '../../operator/launcher/vm-env';
import { pendingNetworkRequest, prepareVmNetwork, type NetworkReady } from '../../operator/netprep';
import { VM_ENV } from '../../operator/pod-layout';
import { deleteNetns, guestFixture, makeNetns } from './guest';

const repoRoot = path.resolve(__dirname, '../..');
export const ENTRYPOINT = path.join(repoRoot, 'operator/launcher/entrypoint.sh');
export const LAUNCHER_FROM_SOURCE = path.join(repoRoot, 'test/launch/launcher-from-source.sh');
export const CH_STANDIN = path.join(repoRoot, 'test/standins/cloud-hypervisor-standin.sh');
/** The pod container's capabilities (constructs/vm-pod.ts): dnsmasq binds port 67, nothing else needs any. */
export const POD_CAPABILITIES = ['net_bind_service'];

// ---- cleanup when the test process ends without its afterAll (a signal, a crash) --------------------------

const liveNamespaces = new Set<string>();
const liveDirs = new Set<string>();

/**
 * Kills what runs in this test's namespaces and removes its temp dirs, synchronously (it may run in 'exit').
 * Installed at import, so on a signal it runs before guest.ts's handler, which then deletes the namespaces.
 */
function cleanUpSync(): void {
  for (const ns of liveNamespaces) {
    try {
      const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5_000 });
      for (const pid of pids.split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Namespace or process already gone.
    }
  }
  liveNamespaces.clear();
  for (const dir of liveDirs) fs.rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}
process.on('exit', cleanUpSync);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  const onSignal = (): void => {
    cleanUpSync();
    process.off(signal, onSignal);
    // Whoever handles the signal last ends the process (guest.ts re-raises it when no handler is left).
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.on(signal, onSignal);
}

export function run(file: string, args: readonly string[], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')}: ${(stderr || error.message).trim()}`));
      else resolve(stdout);
    });
  });
}

export const ipIn = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);
/** The nsfs file `ip netns add` made for a namespace: what the daemon gets from the container runtime. */
export const netnsPath = (ns: string) => `/var/run/netns/${ns}`;
export const ipJsonIn = async <T>(ns: string, ...args: string[]) =>
  JSON.parse(await run('ip', ['-n', ns, '-j', ...args])) as T;
export const execIn = (ns: string, argv: readonly string[], timeoutMs?: number) =>
  run('ip', ['netns', 'exec', ns, ...argv], timeoutMs);

export interface PodNetwork {
  readonly podNs: string;
  readonly peerNs: string;
  readonly podIp: string;
  readonly prefix: number;
  /** The peer's end of the pod veth: the pod's default gateway. */
  readonly gateway: string;
  readonly podMac: string;
  readonly mtu: number;
  /** Reached through `route` via the gateway: an address on the peer's loopback. */
  readonly remoteIp: string;
  readonly route: string;
}

const POD = { podIp: '10.77.0.2', prefix: 24, gateway: '10.77.0.1', remoteIp: '10.78.0.1', route: '10.78.0.0/16' };

export async function createPodNetwork(tag: string, options: { mtu: number; podMac: string }): Promise<PodNetwork> {
  const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  const pod: PodNetwork = { podNs: `kvl-${tag}-${suffix}`, peerNs: `kvl-${tag}-peer-${suffix}`, ...POD, ...options };
  for (const ns of [pod.podNs, pod.peerNs]) {
    liveNamespaces.add(ns);
    await makeNetns(ns);
  }
  const mtu = String(pod.mtu);
  await ipIn(pod.peerNs, 'link', 'add', 'veth-pod', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.podNs);
  await ipIn(pod.podNs, 'link', 'set', 'eth0', 'address', pod.podMac, 'mtu', mtu, 'up');
  await ipIn(pod.podNs, 'addr', 'add', `${pod.podIp}/${pod.prefix}`, 'dev', 'eth0');
  await ipIn(pod.podNs, 'route', 'add', 'default', 'via', pod.gateway);
  await ipIn(pod.podNs, 'route', 'add', pod.route, 'via', pod.gateway);
  await ipIn(pod.peerNs, 'link', 'set', 'veth-pod', 'mtu', mtu, 'up');
  await ipIn(pod.peerNs, 'addr', 'add', `${pod.gateway}/${pod.prefix}`, 'dev', 'veth-pod');
  await ipIn(pod.peerNs, 'addr', 'add', `${pod.remoteIp}/32`, 'dev', 'lo');
  return pod;
}

export interface NetnsProcessInfo {
  readonly pid: number;
  readonly cmdline: string;
}

/** Every process in a network namespace, with its command line. */
export async function processesIn(ns: string): Promise<NetnsProcessInfo[]> {
  const pids = (await run('ip', ['netns', 'pids', ns])).split('\n').filter(Boolean).map(Number);
  return pids.flatMap((pid) => {
    try {
      return [{ pid, cmdline: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() }];
    } catch {
      return []; // exited meanwhile
    }
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** SIGTERM to every process of the namespace (all of them started by this test), SIGKILL after 3 s. */
export async function stopProcessesIn(ns: string): Promise<void> {
  let procs: NetnsProcessInfo[];
  try {
    procs = await processesIn(ns);
  } catch {
    return; // namespace already gone
  }
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  for (let i = 0; i < 30 && procs.some((p) => alive(p.pid)); i++) await sleep(100);
  for (const p of procs.filter((x) => alive(x.pid))) process.kill(p.pid, 'SIGKILL');
}

export async function destroyPodNetwork(pod: PodNetwork | undefined): Promise<void> {
  if (!pod) return;
  for (const ns of [pod.podNs, pod.peerNs]) {
    await stopProcessesIn(ns);
    await deleteNetns(ns);
    liveNamespaces.delete(ns);
  }
}

/** The pod's files, on the host; the sandbox mounts them where the pod has them. */
export interface PodFiles {
  readonly dir: string;
  /** Mounted at /var/run/kubevisor (the run-dir emptyDir). */
  readonly runDir: string;
  /** Mounted at /mnt (volumes, kernel). */
  readonly mntDir: string;
  /** Mounted at /var/run/kubevisor-secrets (cloud-init Secrets). */
  readonly secretsDir: string;
  readonly resolvConf: string;
  readonly terminationLog: string;
  /** The pod's stdout and stderr (the container log). */
  readonly log: string;
}

export function createPodFiles(resolvConf: string): PodFiles {
  // Short: the CH socket's host path must fit a unix socket address (107 bytes).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvl-'));
  liveDirs.add(dir);
  const files: PodFiles = {
    dir,
    runDir: path.join(dir, 'run'),
    mntDir: path.join(dir, 'mnt'),
    secretsDir: path.join(dir, 'secrets'),
    resolvConf: path.join(dir, 'resolv.conf'),
    terminationLog: path.join(dir, 'termination-log'),
    log: path.join(dir, 'pod.log'),
  };
  for (const d of [files.runDir, files.mntDir, files.secretsDir]) fs.mkdirSync(d);
  fs.writeFileSync(files.resolvConf, resolvConf);
  return files;
}

/** The node daemon's netprep calls for one pod, as the test plays them. */
export interface NetworkResponder {
  /** Each answer written, in order. */
  readonly answers: NetworkReady[];
  /** Resolves once the calls in flight are done; no further request is answered. */
  stop(): Promise<void>;
}

/**
 * Plays the node daemon's part of the network handshake for one pod: on every change in the pod's run dir (inotify,
 * as the daemon watches it), a network request not answered yet is answered with the real `prepareVmNetwork`, given
 * the VM with the API server's defaults and the pod's network namespace by path. This process runs in the host's
 * namespaces with every capability, as the privileged daemon does.
 */
export function serveNetworkRequests(pod: PodNetwork, files: PodFiles, vm: KubevisorObject): NetworkResponder {
  const stored = defaultObject(structuredClone(vm)) as unknown as LaunchVm;
  const answers: NetworkReady[] = [];
  let busy: Promise<void> = Promise.resolve();
  let stopped = false;
  const look = () => {
    busy = busy.then(async () => {
      if (stopped || pendingNetworkRequest(files.runDir) === undefined) return;
      answers.push(await prepareVmNetwork({ vm: stored, netnsPath: netnsPath(pod.podNs), runDir: files.runDir }));
    });
  };
  const watcher = fs.watch(files.runDir, { persistent: false }, look);
  look();
  return {
    answers,
    stop: async () => {
      stopped = true;
      watcher.close();
      await busy;
    },
  };
}

export function removePodFiles(files: PodFiles | undefined): void {
  if (!files) return;
  fs.rmSync(files.dir, { recursive: true, force: true });
  liveDirs.delete(files.dir);
}

/**
 * Mounts the pod's dirs (a fresh tmpfs on /run holds the run dir and Secret mount points), drops to the pod's
 * capabilities, and execs the command. `ip netns exec` has already put it in a private mount namespace, so none
 * of the mounts is visible outside.
 */
const SANDBOX = `set -eu
mount -t tmpfs -o mode=0755 kubevisor-pod-run /run
mkdir -p /run/kubevisor /run/kubevisor-secrets
mount --bind "$1" /run/kubevisor
mount --bind "$2" /mnt
mount --bind "$3" /run/kubevisor-secrets
mount --bind "$4" /etc/resolv.conf
caps=$5
shift 5
exec setpriv --bounding-set=-all,$caps --inh-caps=-all -- "$@"`;

export interface RunningEntrypoint {
  /** The entrypoint's pid: after the exec chain, the CH stand-in's. */
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly startedAt: number;
  log(): string;
}

/** Runs the pod's entrypoint (which execs the CH stand-in once the launcher succeeded). */
export const startEntrypoint = (pod: PodNetwork, files: PodFiles, vm: unknown, env: Record<string, string> = {}) =>
  startInPod(pod, files, ['sh', ENTRYPOINT], { [VM_ENV]: JSON.stringify(vm), ...env });

/** Runs a command in the pod sandbox (e.g. a launcher subcommand, as an init container does). */
export function startInPod(
  pod: PodNetwork,
  files: PodFiles,
  command: readonly string[],
  extraEnv: Record<string, string> = {},
): RunningEntrypoint {
  const caps = POD_CAPABILITIES.map((c) => `+${c}`).join(',');
  const argv = ['netns', 'exec', pod.podNs, 'sh', '-c', SANDBOX, 'sandbox'];
  argv.push(files.runDir, files.mntDir, files.secretsDir, files.resolvConf, caps, ...command);
  const logFd = fs.openSync(files.log, 'a');
  const startedAt = Date.now();
  const child = spawn('ip', argv, {
    stdio: ['ignore', logFd, logFd],
    env: {
      // The pod image's tools: a dnsmasq that runs with the pod's one capability (tools/guest/build.sh) first.
      PATH: [
        ...(guestFixture().dnsmasqBin ? [guestFixture().dnsmasqBin] : []),
        path.dirname(process.execPath),
        '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      ].join(':'),
      HOME: '/root',
      [TERMINATION_LOG_ENV]: files.terminationLog,
      KUBEVISOR_LAUNCHER: LAUNCHER_FROM_SOURCE,
      KUBEVISOR_CH: CH_STANDIN,
      ...extraEnv,
    },
  });
  fs.closeSync(logFd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: -1, signal: null }));
  });
  if (child.pid === undefined) throw new Error('could not start the entrypoint');
  return { pid: child.pid, exited, startedAt, log: () => fs.readFileSync(files.log, 'utf8') };
}

function connects(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Resolves with the ms from the entrypoint's start once CH's API socket accepts connections. */
export async function waitForChSocket(files: PodFiles, running: RunningEntrypoint, timeoutMs: number): Promise<number> {
  const socket = path.join(files.runDir, 'ch.sock');
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void running.exited.then((e) => (exit = e));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exit) {
      const term = fs.existsSync(files.terminationLog) ? fs.readFileSync(files.terminationLog, 'utf8') : '(none)';
      throw new Error(`entrypoint exited (${JSON.stringify(exit)}); termination log: ${term}\n${running.log()}`);
    }
    if (fs.existsSync(socket) && (await connects(socket))) return Date.now() - running.startedAt;
    await sleep(50);
  }
  throw new Error(`no CH socket within ${timeoutMs} ms\n${running.log()}`);
}

/** Runs to the end: a launch that must fail, or an init container's subcommand. */
export async function runToExit(
  running: RunningEntrypoint,
  timeoutMs = 120_000,
): Promise<{ code: number | null; log: string }> {
  const timer = setTimeout(() => process.kill(running.pid, 'SIGKILL'), timeoutMs);
  const { code } = await running.exited;
  clearTimeout(timer);
  return { code, log: running.log() };
}

export const readTerminationLog = (files: PodFiles) =>
  fs.existsSync(files.terminationLog) ? fs.readFileSync(files.terminationLog, 'utf8') : '';
