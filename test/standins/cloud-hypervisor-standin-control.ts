/**
 * The guest's side of the executable CH stand-in: a unix socket on which a test, acting as the guest, writes one
 * command per line —
 *
 *   poweroff   the guest powers off (ACPI)
 *   reboot     the guest reboots
 *   crash      a vCPU dies with a KVM internal error
 *
 * — and reads `ok` or `error <why>` back, one line per command. Lines may arrive in any fragments. This is the
 * stand-in's own interface; a real CH has no such socket (its guest does these things by itself).
 */
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import type { GuestActionResult, StandinGuest } from './cloud-hypervisor-standin-vmm';

/** A listening control socket. */
export interface StandinControl {
  readonly socketPath: string;
  /** Stops listening, drops every connection and removes the socket file; idempotent. */
  close(): Promise<void>;
}

const COMMANDS: Readonly<Record<string, (guest: StandinGuest) => GuestActionResult>> = {
  poweroff: (guest) => guest.powerOff(),
  reboot: (guest) => guest.reboot(),
  crash: (guest) => guest.crash(),
};

function answer(guest: StandinGuest, line: string): string {
  const command = COMMANDS[line.trim()];
  if (!command) return `error unknown command ${JSON.stringify(line.trim())} (expected poweroff, reboot or crash)`;
  const result = command(guest);
  return result.ok ? 'ok' : `error ${result.why}`;
}

/** Listens on `socketPath` (a stale file there is removed first) and acts as `guest` on every command. */
export async function serveStandinControl(socketPath: string, guest: StandinGuest): Promise<StandinControl> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      for (let newline = pending.indexOf('\n'); newline >= 0; newline = pending.indexOf('\n')) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.trim() !== '') socket.write(`${answer(guest, line)}\n`);
      }
    });
  });
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closed: Promise<void> | undefined;
  return {
    socketPath,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => {
          rmSync(socketPath, { force: true });
          resolve();
        });
      })),
  };
}
