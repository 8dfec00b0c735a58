/** The VM's probes as the VM pod gets them. */
import type { VmProbe } from '../api';

/** The fields of a VM's probe the pod gets: httpGet or tcpSocket (never a host) and the timing fields. */
export function podProbe(probe: VmProbe): Record<string, unknown> {
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
