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
