/**
 * Cloud Hypervisor's log lines, as the CH stand-in emits them. CH logs through its own logger to stderr (or
 * `--log-file`), one line per record:
 *
 *   cloud-hypervisor: 12.345678s: <vcpu0> ERROR:vmm/src/cpu.rs:1460 -- VCPU generated error: …
 *
 * (seconds since the VMM started, the thread's name, the level, the Rust source location, the message). At the
 * default level only warnings and errors appear, so a guest that powers off leaves no line while a vCPU that
 * dies leaves one — which is how a supervisor can tell the two apart when the exit code cannot
 * (reference/cloud-hypervisor.md §14).
 */

/** One log record before formatting. */
export interface StandinLogRecord {
  /** CH's thread name: `vmm`, `vcpu0`, `http-server`, … */
  readonly thread: string;
  readonly level: 'ERROR' | 'WARN';
  /** `<file>:<line>` in CH's source tree, as CH prints it. */
  readonly location: string;
  readonly message: string;
}

/** Formats a record the way CH's logger does; `elapsedNs` counts from the VMM's start. */
export function formatLogLine(elapsedNs: bigint, record: StandinLogRecord): string {
  const micros = elapsedNs / 1000n;
  const seconds = `${micros / 1_000_000n}.${(micros % 1_000_000n).toString().padStart(6, '0')}s`;
  return `cloud-hypervisor: ${seconds}: <${record.thread}> ${record.level}:${record.location} -- ${record.message}`;
}
