/**
 * Checks for the values netprep writes into rules and files and the launcher reads back: every value that crosses the
 * pod boundary, or lands in an nftables ruleset, is one of these shapes and nothing else (no quotes, no spaces).
 */
import { ipv4ToInt } from '../launcher/ipv4';

/** A unicast-or-not Ethernet address in `ip`'s lower-case form. */
export const isMac = (value: unknown): value is string =>
  typeof value === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(value);

export function isIpv4(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    ipv4ToInt(value);
    return true;
  } catch {
    return false;
  }
}

/** `a.b.c.d/len` with a valid address and 0 ≤ len ≤ 32. */
export function isCidr(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const [address, prefix, extra] = value.split('/');
  return extra === undefined && isIpv4(address) && isPrefix(Number(prefix)) && /^\d{1,2}$/.test(prefix ?? '');
}

export const isPrefix = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 32;

/** A Linux interface name (IFNAMSIZ − 1 bytes) of the kind kubevisor makes: letters, digits, `-`, `_`, `.`. */
export const isLinkName = (value: unknown): value is string =>
  typeof value === 'string' && /^[A-Za-z0-9_.-]{1,15}$/.test(value);

/** An MTU Cloud Hypervisor and the kernel both accept on a TAP. */
export const isMtu = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 68 && value <= 65535;
