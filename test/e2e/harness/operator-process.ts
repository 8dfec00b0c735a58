/**
 * Runs `kubevisor controller` and `kubevisor daemon` as real child processes against a test control plane, so tests
 * can SIGKILL them, restart them and run several. One Node process each (`node --import tsx`), in its own process
 * group, killed with the group on stop and when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from './wait';

const ROOT = path.join(__dirname, '..', '..', '..');

export interface OperatorProcess {
  readonly pid: number;
  /** Port of /metrics, /healthz, /readyz (from the process's own log line). */
  readonly port: number;
  readonly logFile: string;
  /** The process's log lines so far (JSON per line). */
  lines(): string[];
  /** Sends a signal to the whole process group. */
  kill(signal: NodeJS.Signals): void;
  /** Resolves with the exit code (or signal) once the process is gone. */
  readonly exited: Promise<number | NodeJS.Signals>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

const alive = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of alive)
    if (c.pid)
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
});

export interface StartControllerOptions {
  /** Run the compiled controller (`lib/`, from `npm run build`) as the image does, instead of the TypeScript sources. */
  compiled?: boolean;
  /** Extra Node.js flags (e.g. V8 heap limits, as the operator image sets them). */
  nodeArgs?: string[];
}

/** The controller process of the e2e tests (VM pods name the image `kubevisor:e2e`). */
export type ControllerProcess = OperatorProcess;

export function startController(
  kubeconfigPath: string,
  extraArgs: string[] = [],
  options: StartControllerOptions = {},
): Promise<ControllerProcess> {
  return startOperatorProcess(
    'controller',
    ['--kubeconfig', kubeconfigPath, '--image', 'kubevisor:e2e', '--metrics-port', '0', ...extraArgs],
    options,
  );
}

/** Starts `kubevisor <command> <args>` and waits until it serves its metrics port. */
export async function startOperatorProcess(
  command: 'controller' | 'daemon',
  args: string[],
  options: StartControllerOptions = {},
): Promise<OperatorProcess> {
  const logFile = path.join(mkdtempSync(path.join(tmpdir(), `kubevisor-${command}-`)), `${command}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      ...(options.compiled ? ['lib/operator/cli.js'] : ['--import', 'tsx', 'operator/cli.ts']),
      command,
      ...args,
    ],
    {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' },
    },
  );
  alive.add(child);
  const lines: string[] = [];
  let partial = '';
  const onData = (chunk: Buffer) => {
    log.write(chunk);
    const text = partial + chunk.toString('utf8');
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | NodeJS.Signals>((resolve) =>
    child.once('exit', (code, signal) => {
      alive.delete(child);
      log.end();
      resolve(signal ?? code ?? 0);
    }),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  const kill = (signal: NodeJS.Signals) => {
    if (!gone && child.pid)
      try {
        process.kill(-child.pid, signal);
      } catch {
        /* already gone */
      }
  };
  const port = await waitFor(
    `${command} ${child.pid} to serve metrics (log: ${logFile})`,
    async () => {
      if (gone) throw new Error(`${command} exited early; log ${logFile}:\n${lines.slice(-20).join('\n')}`);
      for (const l of lines) {
        const m = /"msg":"serving metrics and health".*"port":(\d+)/.exec(l);
        if (m) return Number(m[1]);
      }
      return undefined;
    },
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  return {
    pid: child.pid ?? -1,
    port,
    logFile,
    lines: () => [...lines],
    kill,
    exited,
    async stop(graceMs = 10_000) {
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** GET from an operator process's metrics/health port. */
export async function controllerGet(port: number, pathName: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${pathName}`);
  return { status: res.status, body: await res.text() };
}
