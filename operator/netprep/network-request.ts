/**
 * NETWORK_REQUEST (`/var/run/kubevisor/network-request`): the launcher's ask, `{"request":"<random hex id>"}`. It
 * carries nothing netprep acts on — what to build comes from the VirtualMachine the daemon reads from the API server —
 * only an id, echoed in NETWORK_READY, so a launcher restarted in the same pod tells a fresh answer from a stale one.
 */
import { NETWORK_READY, NETWORK_REQUEST, inRunDir } from '../pod-layout';
import { readBeneath } from '../daemon/pod-files';

const REQUEST_ID = /^[0-9a-f]{16,64}$/;
/** A request is a few dozen bytes; anything larger is not one. */
const REQUEST_MAX_BYTES = 1024;
const READY_HEAD_BYTES = 256 * 1024;

export const formatNetworkRequest = (id: string): string => `${JSON.stringify({ request: id })}\n`;

/** The request's id, or undefined when the text is not a well-formed request. */
export function parseNetworkRequest(text: string): string | undefined {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.keys(v).length !== 1) return undefined;
    const id = (v as { request?: unknown }).request;
    return typeof id === 'string' && REQUEST_ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Reads a small JSON file of the run dir without following symlinks; undefined when missing, oversized or odd. */
function readSmall(runDir: string, path: string, max: number): string | undefined {
  try {
    const { data, size } = readBeneath(runDir, inRunDir(path), max);
    return size > max ? undefined : data.toString('utf8');
  } catch {
    // Missing, or a symlink, FIFO or directory planted there: not a file the launcher or netprep wrote.
    return undefined;
  }
}

/** The id of the pod's network request (`runDir` is the pod's run dir on the host), if it made a valid one. */
export function readNetworkRequest(runDir: string): string | undefined {
  const text = readSmall(runDir, NETWORK_REQUEST, REQUEST_MAX_BYTES);
  return text === undefined ? undefined : parseNetworkRequest(text);
}

/**
 * The id of a network request the daemon has not answered yet: the pod asked, and NETWORK_READY is missing or answers
 * another request. The daemon calls `prepareVmNetwork` when this returns an id (calling it again is harmless).
 */
export function pendingNetworkRequest(runDir: string): string | undefined {
  const id = readNetworkRequest(runDir);
  if (id === undefined) return undefined;
  const ready = readSmall(runDir, NETWORK_READY, READY_HEAD_BYTES);
  if (ready === undefined) return id;
  try {
    return (JSON.parse(ready) as { request?: unknown }).request === id ? undefined : id;
  } catch {
    return id;
  }
}
