/**
 * Kubernetes resource quantities (`1.5Gi`, `500m`, `1e3`) parsed to exact fractions, so comparisons and the
 * CEL `quantity` library behave exactly like `resource.Quantity` in the API server.
 */
import { QUANTITY_PATTERN } from '../schema';

const QUANTITY = new RegExp(QUANTITY_PATTERN);
const BINARY: Record<string, number> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

/** An exact quantity: `num / den`, with `den > 0`. */
export interface Quantity {
  readonly num: bigint;
  readonly den: bigint;
  /** The text it was parsed from. */
  readonly text: string;
}

export function isQuantity(text: string): boolean {
  return QUANTITY.test(text);
}

/** Parses a quantity; throws on text the API server would reject. */
export function parseQuantity(input: string | number): Quantity {
  const text = String(input);
  if (!QUANTITY.test(text)) throw new Error(`quantities must match the regular expression '${QUANTITY_PATTERN}'`);
  const m = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(.*)$/.exec(text)!;
  const [, sign, whole, frac = '', suffix] = m;
  let num = BigInt((whole || '0') + frac);
  let den = 10n ** BigInt(frac.length);
  if (suffix in BINARY) num *= 1024n ** BigInt(BINARY[suffix]);
  else if (suffix in DECIMAL) {
    const e = DECIMAL[suffix];
    if (e >= 0) num *= 10n ** BigInt(e);
    else den *= 10n ** BigInt(-e);
  } else {
    const e = Number(suffix.slice(1));
    if (e >= 0) num *= 10n ** BigInt(e);
    else den *= 10n ** BigInt(-e);
  }
  if (sign === '-') num = -num;
  return { num, den, text };
}

export function compareQuantities(a: Quantity, b: Quantity): -1 | 0 | 1 {
  const l = a.num * b.den;
  const r = b.num * a.den;
  return l < r ? -1 : l > r ? 1 : 0;
}

/** The integer value, or undefined when the quantity has a fractional part. */
export function quantityAsInteger(q: Quantity): bigint | undefined {
  return q.num % q.den === 0n ? q.num / q.den : undefined;
}

/** Bytes as a canonical binary quantity string (`1Gi`, `1536Mi`, or plain bytes). */
export function formatBytes(bytes: bigint): string {
  const units = ['Ei', 'Pi', 'Ti', 'Gi', 'Mi', 'Ki'];
  for (let i = 0; i < units.length; i++) {
    const f = 1024n ** BigInt(6 - i);
    if (bytes !== 0n && bytes % f === 0n) return `${bytes / f}${units[i]}`;
  }
  return String(bytes);
}
