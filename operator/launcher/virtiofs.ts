/**
 * virtio-fs shares: one virtiofsd per fileSystem, serving the volume's mount over a vhost-user socket that CH
 * connects to. virtiofsd is native and stays resident beside CH, like dnsmasq. `--sandbox none`: the VM pod is the
 * sandbox, and it has neither CAP_SYS_ADMIN (namespace sandbox) nor CAP_SYS_CHROOT (chroot sandbox).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { virtiofsSocket, volumeDir } from '../pod-layout';
import { formatArgv } from './command';
import { LaunchError } from './failure';
import type { LaunchVm } from './vm-env';

/** virtiofsd (the Rust implementation's command line); the operator image puts it on PATH. */
export const virtiofsdArgv = (volume: string) => [
  'virtiofsd',
  `--socket-path=${virtiofsSocket(volume)}`,
  `--shared-dir=${volumeDir(volume)}`,
  '--sandbox=none',
  '--cache=auto',
];

/** Starts virtiofsd per share and waits (bounded) for its socket. Returns socket by share name, and the pids. */
export async function startVirtiofs(vm: LaunchVm): Promise<{ sockets: Record<string, string>; pids: number[] }> {
  const sockets: Record<string, string> = {};
  const pids: number[] = [];
  for (const [i, fs] of (vm.spec.instance.fileSystems ?? []).entries()) {
    const what = `spec.instance.fileSystems[${i}] (${fs.name})`;
    const socket = virtiofsSocket(fs.name);
    mkdirSync(dirname(socket), { recursive: true });
    const argv = virtiofsdArgv(fs.name);
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', 'inherit', 'inherit'] });
    let failure: string | undefined;
    child.once('error', (e) => (failure = e.message));
    child.once('exit', (code, signal) => (failure = `exited (${signal ?? code})`));
    for (let waited = 0; !existsSync(socket) && failure === undefined && waited < 10_000; waited += 50) await sleep(50);
    if (failure !== undefined || !existsSync(socket)) {
      child.kill('SIGKILL');
      throw new LaunchError(`${what}: ${formatArgv(argv)} ${failure ?? 'did not create its socket within 10 s'}`);
    }
    child.unref();
    if (child.pid) pids.push(child.pid);
    sockets[fs.name] = socket;
  }
  return { sockets, pids };
}
