/**
 * The launcher's side of the network handshake with the node daemon. The VM pod holds no NET_ADMIN, so the launcher
 * only asks: it writes NETWORK_REQUEST with a fresh id, and waits — inotify on the run dir, bounded — for the daemon's
 * NETWORK_READY answering that id (netprep, operator/netprep). A stale answer left by an earlier launcher run in the same
 * pod is ignored.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { isMissing, readBeneath } from '../daemon/pod-files';
import { NETWORK_READY, NETWORK_REQUEST } from '../pod-layout';
import { NETWORK_READY_MAX_BYTES, parseNetworkReady, type NetworkPrepared } from '../netprep/network-ready';
import { formatNetworkRequest } from '../netprep/network-request';
import { writeAtomically } from './atomic-write';
import { LaunchError } from './failure';

/** Lets a test (or an operator in a hurry) shorten the wait; the pod renderer leaves the default. */
export const NETWORK_TIMEOUT_ENV = 'KUBEVISOR_NETWORK_TIMEOUT_SECONDS';
/** The daemon answers within a second; this covers a daemon that is restarting. */
export const DEFAULT_NETWORK_TIMEOUT_SECONDS = 120;

function timeoutSeconds(env: NodeJS.ProcessEnv): number {
  const raw = env[NETWORK_TIMEOUT_ENV];
  const value = raw === undefined || raw === '' ? DEFAULT_NETWORK_TIMEOUT_SECONDS : Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new LaunchError(`${NETWORK_TIMEOUT_ENV}=${raw}: not a positive number`);
  return value;
}

/**
 * The ready file's text, or undefined while there is none. Read as the daemon reads the pod's files (bounded, regular
 * files only, no symlink followed): the run dir is shared with everything else in the pod.
 */
function readReady(): string | undefined {
  let read: { data: Buffer; size: number };
  try {
    read = readBeneath(dirname(NETWORK_READY), basename(NETWORK_READY), NETWORK_READY_MAX_BYTES);
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw new LaunchError(`read ${NETWORK_READY}: ${(e as Error).message}`);
  }
  if (read.size > NETWORK_READY_MAX_BYTES)
    throw new LaunchError(`${NETWORK_READY} is larger than ${NETWORK_READY_MAX_BYTES} bytes`);
  return read.data.toString('utf8');
}

/**
 * Asks the node daemon to prepare the pod network and resolves with its answer. Fails with one line when the daemon
 * reports a failure or does not answer in time.
 */
export async function requestNetwork(env: NodeJS.ProcessEnv = process.env): Promise<NetworkPrepared> {
  const seconds = timeoutSeconds(env);
  const id = randomBytes(16).toString('hex');
  const dir = dirname(NETWORK_READY);
  mkdirSync(dir, { recursive: true });
  return new Promise<NetworkPrepared>((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | undefined, ready?: NetworkPrepared) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      watcher.close();
      if (error) reject(error);
      else resolve(ready as NetworkPrepared);
    };
    const look = () => {
      try {
        const text = readReady();
        if (text === undefined) return;
        const ready = parseNetworkReady(text);
        if (ready.request !== id) return; // an answer to an earlier launcher's request
        if ('error' in ready) {
          finish(new LaunchError(`pod network: the node daemon could not prepare it: ${ready.error}`));
        } else {
          finish(undefined, ready);
        }
      } catch (e) {
        finish(e as Error);
      }
    };
    // Watch before asking, so the answer cannot slip in unseen.
    const watcher = watch(dir, { persistent: true }, (_event, name) => {
      if (name === null || name === basename(NETWORK_READY)) look();
    });
    watcher.on('error', (e) => finish(new LaunchError(`pod network: cannot watch ${dir}: ${e.message}`)));
    const timer = setTimeout(
      () =>
        finish(
          new LaunchError(
            `pod network: the node daemon did not answer ${NETWORK_REQUEST} with ${NETWORK_READY} within ${seconds} s (is the kubevisor daemon running on this node?)`,
          ),
        ),
      seconds * 1000,
    );
    try {
      writeAtomically(NETWORK_REQUEST, formatNetworkRequest(id));
    } catch (e) {
      finish(new LaunchError(`pod network: cannot write ${NETWORK_REQUEST}: ${(e as Error).message}`));
      return;
    }
    look();
  });
}
