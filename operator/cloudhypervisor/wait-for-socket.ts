/**
 * Readiness wait for a freshly started CH: it binds its API socket some time after exec, and is ready once
 * `vmm.ping` answers (reference/cloud-hypervisor.md §1; upstream's tests poll ping for up to 5 s).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CLOUD_HYPERVISOR_API_ROOT, CloudHypervisorClient } from './client';
import { CloudHypervisorError } from './error';
import type { VmmPingResponse } from './types';

export interface WaitForSocketOptions {
  /** Pause between attempts. @default 50 */
  readonly intervalMs?: number;
  /** Deadline of a single ping, so one hung connection cannot eat the whole budget. @default 1000 */
  readonly attemptTimeoutMs?: number;
}

/**
 * Pings the socket until CH answers, and returns its ping answer. Bounded twice: by `timeoutMs` of wall time and
 * by the number of attempts that fit in it (`timeoutMs / intervalMs + 1`), so neither a clock jump nor fast
 * failures can make it spin. A socket that answers with an HTTP error is up but broken: that fails at once.
 */
export async function waitForSocket(
  socketPath: string,
  timeoutMs: number,
  options: WaitForSocketOptions = {},
): Promise<VmmPingResponse> {
  const intervalMs = Math.max(1, options.intervalMs ?? 50);
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 1000;
  const maxAttempts = Math.floor(timeoutMs / intervalMs) + 1;
  const client = new CloudHypervisorClient({ socketPath });
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let attempts = 0;
  while (attempts < maxAttempts) {
    attempts++;
    const remaining = deadline - Date.now();
    try {
      return await client.vmm.ping({ timeoutMs: Math.max(1, Math.min(attemptTimeoutMs, remaining)) });
    } catch (error) {
      if (error instanceof CloudHypervisorError && error.kind === 'http') throw error;
      last = error;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(intervalMs, left));
  }
  throw new CloudHypervisorError({
    kind: 'timeout',
    method: 'GET',
    path: `${CLOUD_HYPERVISOR_API_ROOT}/vmm.ping`,
    detail: `${socketPath} not ready after ${attempts} attempts in ${timeoutMs} ms (last: ${last instanceof Error ? last.message : String(last)})`,
    cause: last,
  });
}
