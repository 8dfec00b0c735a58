/**
 * Why a Cloud Hypervisor API call failed: CH answered with an error status (`http`), it did not answer in time
 * (`timeout`), the socket could not be used (`transport`: missing socket, refused, reset), or the answer could not
 * be understood (`protocol`: a 200 whose body is not JSON).
 */
export type CloudHypervisorErrorKind = 'http' | 'timeout' | 'transport' | 'protocol';

export interface CloudHypervisorErrorDetails {
  readonly kind: CloudHypervisorErrorKind;
  readonly method: string;
  /** Request path, e.g. `/api/v1/vm.pause`. */
  readonly path: string;
  readonly statusCode?: number;
  /**
   * CH's error chain, top-level error first and root cause last (CH sends a JSON array of strings; reference
   * section 4). Empty when CH sent no body.
   */
  readonly chain?: readonly string[];
  readonly detail?: string;
  readonly cause?: unknown;
}

/**
 * A failed CH API call. The message reads like CH's own log line: `PUT /api/v1/vm.pause → 500: Error from API:
 * The VM could not be paused: …` (CH joins its chain with ": " too). Decide outcomes from `vm.info` state plus
 * {@link chain}, not from the status code alone (reference section 4).
 */
export class CloudHypervisorError extends Error {
  readonly kind: CloudHypervisorErrorKind;
  readonly method: string;
  readonly path: string;
  readonly statusCode: number | undefined;
  readonly chain: readonly string[];

  constructor(details: CloudHypervisorErrorDetails) {
    const status = details.statusCode !== undefined ? ` → ${details.statusCode}` : '';
    const what = [...(details.chain ?? []), ...(details.detail ? [details.detail] : [])].join(': ');
    super(`${details.method} ${details.path}${status}${what ? `: ${what}` : ''}`, { cause: details.cause });
    this.name = 'CloudHypervisorError';
    this.kind = details.kind;
    this.method = details.method;
    this.path = details.path;
    this.statusCode = details.statusCode;
    this.chain = details.chain ?? [];
  }

  /** Whether any message of CH's chain contains `text` (e.g. `'InvalidStateTransition(Paused, Paused)'`). */
  mentions(text: string): boolean {
    return this.chain.some((m) => m.includes(text));
  }
}

/**
 * Reads CH's error body. CH's API layer sends an array of strings; micro_http itself, on requests it cannot
 * parse, sends an object `{ "error": "…" }`. Anything else is kept verbatim so nothing is lost.
 */
export function parseErrorChain(body: string): string[] {
  if (body.trim() === '') return [];
  try {
    const parsed: unknown = JSON.parse(body);
    if (Array.isArray(parsed) && parsed.every((m) => typeof m === 'string')) return parsed;
    if (parsed && typeof parsed === 'object' && typeof (parsed as { error?: unknown }).error === 'string') {
      return [(parsed as { error: string }).error];
    }
  } catch {
    // Not JSON: fall through and keep the text.
  }
  return [body.trim()];
}
