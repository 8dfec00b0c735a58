/**
 * The CEL environment used at synth time: @bufbuild/cel plus the Kubernetes CEL libraries our rules call
 * (quantity, and the IP/CIDR functions), with the semantics the API server gives them. Compiled programs are
 * cached per expression, so validating thousands of objects parses each rule once.
 */
import type { CelValue } from '@bufbuild/cel';
import { celEnv, celFunc, celMethod, CelScalar, isCelError, mapType, parse, plan } from '@bufbuild/cel';
import { isIPv4, isIPv6 } from 'node:net';
import type { Quantity } from './quantity';
import { compareQuantities, isQuantity, parseQuantity, quantityAsInteger } from './quantity';

// @bufbuild/cel has no opaque user types, so Kubernetes' Quantity/CIDR/IP objects are modelled as maps
// holding one private key; the methods below dispatch on that key.
const OBJ = mapType(CelScalar.STRING, CelScalar.DYN);
const QKEY = '__quantity';
const CKEY = '__cidr';
const IKEY = '__ip';

function q(v: CelValue): Quantity {
  const m = v as ReadonlyMap<string, unknown>;
  const text = m.get(QKEY);
  if (typeof text !== 'string') throw new Error('no such overload: expected a quantity');
  return parseQuantity(text);
}

function parseCidr(text: string): { ip: string; prefix: number } | undefined {
  const m = /^([^/]+)\/([0-9]{1,3})$/.exec(text);
  if (!m) return undefined;
  const prefix = Number(m[2]);
  if (m[2].length > 1 && m[2].startsWith('0')) return undefined;
  if (isIPv4(m[1]) && prefix <= 32) return { ip: m[1], prefix };
  if (isIPv6(m[1]) && !m[1].includes('%') && prefix <= 128) return { ip: m[1], prefix };
  return undefined;
}

function cidrOf(v: CelValue): { ip: string; prefix: number } {
  const text = (v as ReadonlyMap<string, unknown>).get(CKEY);
  const c = typeof text === 'string' ? parseCidr(text) : undefined;
  if (!c) throw new Error('no such overload: expected a CIDR');
  return c;
}

const obj = (key: string, value: string) =>
  new Map<string, string>([[key, value]]) as unknown as ReadonlyMap<string, never>;

const funcs = [
  // Quantity library (k8s.io/apiserver/pkg/cel/library/quantity.go).
  celFunc('isQuantity', [CelScalar.STRING], CelScalar.BOOL, (s) => isQuantity(s)),
  celFunc('quantity', [CelScalar.STRING], OBJ, (s) => {
    parseQuantity(s); // throws on invalid text, as the API server does
    return obj(QKEY, s);
  }),
  celMethod('isGreaterThan', OBJ, [OBJ], CelScalar.BOOL, function (o) {
    return compareQuantities(q(this), q(o)) > 0;
  }),
  celMethod('isLessThan', OBJ, [OBJ], CelScalar.BOOL, function (o) {
    return compareQuantities(q(this), q(o)) < 0;
  }),
  celMethod('compareTo', OBJ, [OBJ], CelScalar.INT, function (o) {
    return BigInt(compareQuantities(q(this), q(o)));
  }),
  celMethod('isInteger', OBJ, [], CelScalar.BOOL, function () {
    return quantityAsInteger(q(this)) !== undefined;
  }),
  celMethod('asInteger', OBJ, [], CelScalar.INT, function () {
    const i = quantityAsInteger(q(this));
    if (i === undefined) throw new Error('cannot convert value to integer');
    return i;
  }),
  celMethod('sign', OBJ, [], CelScalar.INT, function () {
    const n = q(this).num;
    return n > 0n ? 1n : n < 0n ? -1n : 0n;
  }),
  // IP and CIDR library (k8s.io/apiserver/pkg/cel/library/cidr.go, ip.go).
  celFunc('isCIDR', [CelScalar.STRING], CelScalar.BOOL, (s) => parseCidr(s) !== undefined),
  celFunc('cidr', [CelScalar.STRING], OBJ, (s) => {
    if (!parseCidr(s)) throw new Error(`network address parse error during conversion from string: ${s}`);
    return obj(CKEY, s);
  }),
  celMethod('prefixLength', OBJ, [], CelScalar.INT, function () {
    return BigInt(cidrOf(this).prefix);
  }),
  celMethod('ip', OBJ, [], OBJ, function () {
    return obj(IKEY, cidrOf(this).ip);
  }),
  celFunc('isIP', [CelScalar.STRING], CelScalar.BOOL, (s) => isIPv4(s) || (isIPv6(s) && !s.includes('%'))),
  celMethod('family', OBJ, [], CelScalar.INT, function () {
    const ip = (this as ReadonlyMap<string, unknown>).get(IKEY);
    if (typeof ip !== 'string') throw new Error('no such overload: expected an IP');
    return isIPv4(ip) ? 4n : 6n;
  }),
];

const env = celEnv({ funcs });

export type CelProgram = (bindings: Record<string, unknown>) => { value: unknown } | { error: string };
const programs = new Map<string, CelProgram>();

/** Compiles (once) and returns an evaluator for a CEL expression. Throws on syntax errors. */
export function compile(expr: string): CelProgram {
  let p = programs.get(expr);
  if (!p) {
    const run = plan(env, parse(expr));
    p = (bindings) => {
      try {
        const r = run(bindings as never);
        return isCelError(r) ? { error: r.message } : { value: r };
      } catch (e) {
        return { error: e instanceof Error ? e.message : String(e) };
      }
    };
    programs.set(expr, p);
  }
  return p;
}
