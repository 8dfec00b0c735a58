// Child processes of the e2e control plane: each runs in its own process group (so a signal reaches
// anything it forks), logs to a file, and is registered so it never outlives this Node process.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';

export interface ComponentProcess {
  name: string;
  pid: number;
  logPath: string;
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Resolves when the process has exited (never rejects). */
  exited: Promise<void>;
  child: ChildProcess;
}

/** Live process groups and temp dirs of every control plane in this Node process. */
const liveComponents = new Set<ComponentProcess>();
const liveDirs = new Set<string>();
let handlersInstalled = false;

export function spawnComponent(
  name: string,
  binary: string,
  args: string[],
  logPath: string,
  env: NodeJS.ProcessEnv = process.env,
): ComponentProcess {
  installExitHandlers();
  const logFd = fs.openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    fs.writeSync(logFd, `+ ${binary} ${args.join(' ')}\n`);
    // detached: setsid(), so the child leads a new process group whose id is its pid.
    child = spawn(binary, args, { detached: true, stdio: ['ignore', logFd, logFd], env });
  } finally {
    // The child holds its own copy of the descriptor.
    fs.closeSync(logFd);
  }
  if (child.pid === undefined) {
    // The 'error' event (e.g. ENOENT) follows asynchronously; without a listener it would crash.
    child.once('error', () => undefined);
    throw new Error(`control-plane: could not start ${name} (${binary}); see ${logPath}`);
  }
  // Do not keep the event loop (and so Jest) alive just because a component runs; stop() and the
  // exit handlers below own its lifetime.
  child.unref();
  const component: ComponentProcess = {
    name,
    pid: child.pid,
    logPath,
    exit: undefined,
    exited: Promise.resolve(),
    child,
  };
  component.exited = new Promise<void>((resolve) => {
    const markExited = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (component.exit !== undefined) return;
      component.exit = { code, signal };
      liveComponents.delete(component);
      resolve();
    };
    child.once('exit', markExited);
    // A spawn error (e.g. ENOENT) comes with no 'exit' event.
    child.once('error', (error) => {
      fs.appendFileSync(logPath, `control-plane: spawn error: ${error.message}\n`);
      markExited(-1, null);
    });
  });
  liveComponents.add(component);
  return component;
}

/**
 * SIGTERM to the process group, then SIGKILL if it has not exited within graceMs; resolves once it
 * has exited (bounded: a process that survives SIGKILL for killWaitMs is reported, not awaited).
 */
export async function stopComponent(component: ComponentProcess, graceMs: number, killWaitMs = 5_000): Promise<void> {
  if (component.exit !== undefined) return;
  signalGroup(component.pid, 'SIGTERM');
  if (await exitedWithin(component, graceMs)) return;
  signalGroup(component.pid, 'SIGKILL');
  if (await exitedWithin(component, killWaitMs)) return;
  throw new Error(`control-plane: ${component.name} (pid ${component.pid}) survived SIGKILL for ${killWaitMs} ms`);
}

/** A control plane's temp dir, removed by the exit handlers if stop() never ran. */
export function registerDir(dir: string): void {
  installExitHandlers();
  liveDirs.add(dir);
}

export function unregisterDir(dir: string): void {
  liveDirs.delete(dir);
}

/** Last lines of a log file, for error messages. */
export function logTail(logPath: string, lines = 40): string {
  let text: string;
  try {
    text = fs.readFileSync(logPath, 'utf8');
  } catch {
    return '(no log)';
  }
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function exitedWithin(component: ComponentProcess, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const exited = component.exited.then(() => true as const);
  try {
    return await Promise.race([exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Last resort when stop() did not run: kill every live group and remove every temp dir, synchronously. */
function killEverything(): void {
  for (const component of liveComponents) signalGroup(component.pid, 'SIGKILL');
  liveComponents.clear();
  for (const dir of liveDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // Best effort while exiting.
    }
  }
  liveDirs.clear();
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killEverything);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killEverything();
      process.off(signal, onSignal);
      // Re-raise so the process ends the way it would have without this handler, unless someone
      // else (e.g. Jest) handles the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/**
 * The owner record a control plane keeps in its dir while it runs: which Node process started it
 * and the process groups it leads. If that Node process died without running its exit handlers
 * (SIGKILL, OOM), reapOrphans() finds the record on the next start and cleans up after it.
 */
const ownerFile = 'owner.json';

interface OwnerRecord {
  ownerPid: number;
  pids: number[];
}

export function writeOwnerRecord(dir: string, pids: number[]): void {
  const record: OwnerRecord = { ownerPid: process.pid, pids };
  fs.writeFileSync(`${dir}/${ownerFile}`, JSON.stringify(record));
}

/** Drops the record, so reapOrphans() leaves the dir alone (a failed start keeps its logs). */
export function removeOwnerRecord(dir: string): void {
  fs.rmSync(`${dir}/${ownerFile}`, { force: true });
}

/**
 * Kills the process groups of control planes whose owning Node process is gone, and removes their
 * dirs. A pid is only signalled if it still leads its own group and runs one of `binaries` (so a
 * recycled pid is never hit).
 */
export function reapOrphans(parentDir: string, dirPrefix: string, binaries: readonly string[]): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(parentDir).filter((name) => name.startsWith(dirPrefix));
  } catch {
    return;
  }
  for (const name of entries) {
    const dir = `${parentDir}/${name}`;
    let record: OwnerRecord;
    try {
      record = JSON.parse(fs.readFileSync(`${dir}/${ownerFile}`, 'utf8')) as OwnerRecord;
    } catch {
      continue; // No record: kept logs of a failed start, or a dir being set up right now.
    }
    if (isAlive(record.ownerPid)) continue;
    for (const pid of record.pids) {
      if (runsComponent(pid, binaries)) signalGroup(pid, 'SIGKILL');
    }
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function runsComponent(pid: number, binaries: readonly string[]): boolean {
  try {
    const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    // Field 5 of /proc/<pid>/stat is the process group id (after the parenthesised command name).
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    return pgid === pid && binaries.some((binary) => argv0.endsWith(`/${binary}`));
  } catch {
    return false; // Gone already.
  }
}
