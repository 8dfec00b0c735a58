/**
 * How the launcher fails: one line that names what failed (a field path, a device, a command) in the pod's
 * termination message and on stderr, then a non-zero exit. Kubernetes shows the termination message in the pod
 * status, so a user sees why the VM did not start without reading logs (Virtink's pods often quit silently).
 */
import { writeFileSync } from 'node:fs';
import { TERMINATION_LOG } from '../pod-layout';

/** Lets tests, which run outside a container, point the termination message somewhere writable. */
export const TERMINATION_LOG_ENV = 'KUBEVISOR_TERMINATION_LOG';

/** A failure whose message is already fit for a user: it says what failed and, where it can, what to do. */
export class LaunchError extends Error {
  override readonly name = 'LaunchError';
}

/** The single line reported for any thrown value. Unexpected errors keep their own message, prefixed by where. */
export function failureLine(error: unknown): string {
  const message = error instanceof LaunchError ? error.message : `unexpected error: ${describe(error)}`;
  // The termination message is one line; multi-line tool output is folded so none of it is lost.
  return `launcher: ${message.trim().replace(/\s*\n\s*/g, ' | ')}`;
}

/** Writes the line to stderr and the termination log; a termination log that cannot be written is noted, not fatal. */
export function reportFailure(error: unknown, env: NodeJS.ProcessEnv = process.env): string {
  const line = failureLine(error);
  process.stderr.write(`${line}\n`);
  const path = env[TERMINATION_LOG_ENV] || TERMINATION_LOG;
  try {
    writeFileSync(path, `${line}\n`);
  } catch (e) {
    process.stderr.write(`launcher: could not write the termination log ${path}: ${describe(e)}\n`);
  }
  return line;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
