/**
 * What the node daemon reads about a guest besides Cloud Hypervisor's API: the DHCP leases the pod's dnsmasq handed
 * out (the guest's addresses) and Cloud Hypervisor's own log lines in the container log (how it ended). Both come
 * from files the pod or the guest influences, so both parsers take bounded text and accept only what they expect.
 */

/** A DHCP lease: the guest behind `mac` holds `ip`. */
export interface Lease {
  readonly mac: string;
  readonly ip: string;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** dnsmasq's leases file: `<expiry> <mac> <ip> <hostname> <client-id>` per line. */
export function parseLeases(text: string): Lease[] {
  const leases: Lease[] = [];
  for (const line of text.split('\n').slice(0, 64)) {
    const [, mac, ip] = line.trim().split(/\s+/);
    const m = mac?.toLowerCase();
    if (m && ip && MAC.test(m) && IPV4.test(ip)) leases.push({ mac: m, ip });
  }
  return leases;
}

/**
 * Cloud Hypervisor v53.0 exits 0, with the same events, whether the guest powered off or a vCPU failed
 * (reference/cloud-hypervisor.md §14); only its error log tells the crash. These are its lines for the ways a guest
 * dies under it (vmm/src/cpu.rs: a vCPU run error or panic, any thread panic).
 */
const CRASH_MARKERS = [
  /^cloud-hypervisor: [\d.]+s: <[^>]*> ERROR:.*(VCPU generated error|vCPU thread panicked)/,
  // A Rust panic message, as the runtime prints it at the start of a line.
  /^thread '[^']*' panicked/,
];

/**
 * The crash line in a CRI container log (`<time> <stream> <P|F> <text>` per line), if any. Only stderr counts, and
 * only lines that are CH's own (its log prefix, or a panic): stdout carries the guest's serial console, and other
 * programs of the pod (dnsmasq) may log text the guest chose.
 */
export function crashLine(criLog: string): string | undefined {
  for (const line of criLog.split('\n')) {
    const m = /^\S+ (stdout|stderr) [PF] (.*)$/.exec(line);
    if (!m || m[1] !== 'stderr') continue;
    if (CRASH_MARKERS.some((r) => r.test(m[2]))) return m[2].slice(0, 512);
  }
  return undefined;
}
