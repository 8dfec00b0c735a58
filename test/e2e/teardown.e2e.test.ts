// stop() leaves nothing behind: a second, separate control plane is started and stopped, then no
// process it started is alive, every port it listened on can be bound again, and its dir is gone.
import fs from 'node:fs';
import { startControlPlane } from './harness/control-plane';
import { isPortFree } from './harness/ports';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM would mean the pid exists but belongs to someone else: still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

test('a stopped control plane leaves no process, port or directory behind', async () => {
  const controlPlane = await startControlPlane({ nodes: 1 });
  const pids = Object.values(controlPlane.pids);
  const ports = Object.values(controlPlane.ports);
  expect(pids).toHaveLength(5);
  expect(pids.every(isAlive)).toBe(true);
  expect(await Promise.all(ports.map(isPortFree))).not.toContain(true);

  await controlPlane.stop();
  // Idempotent: a second stop is a no-op that resolves.
  await controlPlane.stop();

  for (const pid of pids) {
    expect({ pid, alive: isAlive(pid) }).toEqual({ pid, alive: false });
    // Each component led its own process group: nothing it forked may survive either.
    expect({ group: pid, alive: isAlive(-pid) }).toEqual({ group: pid, alive: false });
  }
  for (const port of ports) expect({ port, free: await isPortFree(port) }).toEqual({ port, free: true });
  expect(fs.existsSync(controlPlane.dir)).toBe(false);
});
