/**
 * Shared setup for the CH client/stand-in tests: a temp directory per test with the stand-in listening in it,
 * torn down in `afterEach` so a failing test still leaves no socket, server or directory behind. The directory's
 * `pod/` subdirectory stands for the VM pod's file system: the stand-in resolves every VmConfig path below it
 * (`resolvePath`), and it holds the files {@link sampleVmConfig} names, since a VM boots only when they exist.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CloudHypervisorClient } from '../../../operator/cloudhypervisor/client';
import { CloudHypervisorError } from '../../../operator/cloudhypervisor/error';
import type { VmConfig } from '../../../operator/cloudhypervisor/types';
import {
  startCloudHypervisorStandin,
  type CloudHypervisorStandin,
  type CloudHypervisorStandinOptions,
} from '../../standins/cloud-hypervisor-standin';

export interface StandinFixture {
  readonly dir: string;
  /** Where the pod's file system is on the host: `<dir>/pod`. */
  readonly podRoot: string;
  /** The stand-in's `resolvePath`: a path inside the pod → the host path below {@link podRoot}. */
  readonly resolvePath: (pathInPod: string) => string;
  readonly socketPath: string;
  readonly standin: CloudHypervisorStandin;
  readonly client: CloudHypervisorClient;
}

/** The host files {@link sampleVmConfig} needs for a boot: kernel, initramfs, root disk. */
export const SAMPLE_POD_FILES = ['/var/lib/kubevisor/vmlinux', '/initrd', '/var/lib/kubevisor/disks/root.raw'];

/** Creates (empty) files at pod paths below `podRoot`, with their directories. */
export function addPodFiles(podRoot: string, ...paths: string[]): void {
  for (const path of paths) {
    const file = join(podRoot, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, '');
  }
}

/** A `resolvePath` that puts the pod's file system below `podRoot`. */
export function podPaths(podRoot: string): (pathInPod: string) => string {
  return (pathInPod) => join(podRoot, pathInPod);
}

/** Fast enough for tests that do not watch the pace: a 1 GiB guest migrates in ≈60 ms. */
export const TEST_MIGRATION_BYTES_PER_SECOND = 16 * 1024 * 1024 * 1024;

/** A small but realistic pod VM: direct kernel boot, one raw disk, one tap, serial on a socket, console off. */
export function sampleVmConfig(): VmConfig {
  return {
    cpus: { boot_vcpus: 2, max_vcpus: 2 },
    memory: { size: 1024 * 1024 * 1024 },
    payload: { kernel: '/var/lib/kubevisor/vmlinux', cmdline: 'console=ttyS0 root=/dev/vda', initramfs: '/initrd' },
    disks: [{ path: '/var/lib/kubevisor/disks/root.raw', image_type: 'Raw' }],
    net: [{ tap: 'tap0', mac: '52:54:00:12:34:56', num_queues: 2 }],
    serial: { mode: 'Socket', socket: '/run/kubevisor/serial.sock' },
    console: { mode: 'Off' },
  };
}

/** Fresh temp directory, removed by the returned cleanup. Short prefix: unix socket paths are limited to 107 bytes. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kv-ch-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Registers beforeEach/afterEach that start a stand-in per test and always stop it; call the returned function
 * inside a test to get the current fixture.
 */
export function useStandin(options: Partial<CloudHypervisorStandinOptions> = {}): () => StandinFixture {
  let current: (StandinFixture & { cleanup: () => void }) | undefined;
  beforeEach(async () => {
    const { dir, cleanup } = tempDir();
    const socketPath = join(dir, 'api.sock');
    const podRoot = join(dir, 'pod');
    const resolvePath = podPaths(podRoot);
    addPodFiles(podRoot, ...SAMPLE_POD_FILES);
    try {
      const standin = await startCloudHypervisorStandin({
        stallMs: 100,
        resolvePath,
        migrationBytesPerSecond: TEST_MIGRATION_BYTES_PER_SECOND,
        ...options,
        socketPath,
      });
      const client = new CloudHypervisorClient({ socketPath });
      current = { dir, podRoot, resolvePath, socketPath, standin, client, cleanup };
    } catch (error) {
      cleanup();
      throw error;
    }
  });
  afterEach(async () => {
    const fixture = current;
    current = undefined;
    if (!fixture) return;
    try {
      await fixture.standin.stop();
    } finally {
      fixture.cleanup();
    }
  });
  return () => {
    if (!current) throw new Error('stand-in fixture used outside a test');
    return current;
  };
}

/** The CloudHypervisorError a call rejects with (fails the test if it resolves or throws something else). */
export async function chError(call: Promise<unknown>): Promise<CloudHypervisorError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(CloudHypervisorError);
    return error as CloudHypervisorError;
  }
  throw new Error('expected the call to fail with a CloudHypervisorError');
}

/** Polls `condition` until it holds; bounded in attempts so a broken condition fails instead of hanging. */
export async function waitUntil(condition: () => boolean, what: string, attempts = 200): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (condition()) return;
    await sleep(10);
  }
  throw new Error(`gave up waiting for ${what}`);
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * Writes raw bytes to the socket and collects everything until the server closes the connection, then splits
 * it into responses. For wire-level cases node's client would not produce. `halfClose` ends our side after
 * writing. Bounded: gives up after `timeoutMs`.
 */
export function rawExchange(
  socketPath: string,
  request: string,
  options: { halfClose?: boolean; timeoutMs?: number } = {},
): Promise<RawResponse[]> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`server did not close the connection within ${options.timeoutMs ?? 5000} ms`));
    }, options.timeoutMs ?? 5000);
    socket.on('connect', () => {
      if (options.halfClose) socket.end(request);
      else socket.write(request);
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseResponses(Buffer.concat(chunks).toString('utf8')));
    });
  });
}

function parseResponses(text: string): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = text;
  while (rest.length > 0) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) throw new Error(`unparsable response: ${rest}`);
    const [statusLine, ...lines] = rest.slice(0, headEnd).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    const body = rest.slice(headEnd + 4, headEnd + 4 + length);
    out.push({ status: Number(statusLine.split(' ')[1]), headers, body });
    rest = rest.slice(headEnd + 4 + length);
  }
  return out;
}
