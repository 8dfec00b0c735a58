/** The VM's probes as the VM pod gets them. */
import type { VmProbe } from '../api';

/**
 * Why a probe cannot go on the VM pod, or undefined when it can. The API refuses all of these now; a VM stored before
 * those rules stays stored (the API server ratchets unchanged fields), and its pod must still be one the API server
 * admits and the kubelet can run, so such a probe is left off the pod rather than copied.
 */
export function probeNotApplied(probe: VmProbe): string | undefined {
  const { httpGet, tcpSocket } = probe;
  if (httpGet && tcpSocket) return 'both httpGet and tcpSocket are set; a probe has one handler';
  const handler = httpGet ?? tcpSocket;
  // exec would run commands in the pod beside Cloud Hypervisor's socket; grpc is not offered.
  if (!handler) return 'only httpGet and tcpSocket probes are run';
  if (typeof handler.port !== 'number') return `port "${handler.port}" is a name; the VM pod declares no named ports`;
  return undefined;
}

/**
 * The fields of a VM's probe the pod gets: httpGet or tcpSocket (never a host) and the timing fields; undefined when
 * the probe cannot go on the pod at all ({@link probeNotApplied}).
 */
export function podProbe(probe: VmProbe): Record<string, unknown> | undefined {
  if (probeNotApplied(probe)) return undefined;
  const out: Record<string, unknown> = {};
  if (probe.httpGet) {
    const { path, port, scheme, httpHeaders } = probe.httpGet;
    out.httpGet = {
      port,
      ...(path !== undefined ? { path } : {}),
      ...(scheme !== undefined ? { scheme } : {}),
      ...(httpHeaders ? { httpHeaders: httpHeaders.map(({ name, value }) => ({ name, value })) } : {}),
    };
  }
  if (probe.tcpSocket) out.tcpSocket = { port: probe.tcpSocket.port };
  for (const k of [
    'initialDelaySeconds',
    'periodSeconds',
    'timeoutSeconds',
    'successThreshold',
    'failureThreshold',
  ] as const) {
    if (probe[k] !== undefined) out[k] = probe[k];
  }
  return out;
}
