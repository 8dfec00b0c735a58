// A minimal DER (ASN.1 Distinguished Encoding Rules) writer and reader: exactly what building and reading
// PKCS#10 requests and X.509 certificates needs, nothing more. node:crypto makes keys, signs, verifies and parses
// certificates, but cannot build a request or a certificate, and the one pure-JS library that can with ECDSA
// (@peculiar/x509) needs a global reflect-metadata polyfill. The reader is strict (definite, minimal lengths, no
// multi-byte tags, nothing left over) because it reads requests that anyone who may create a CSR can write.

/** Tag bytes (class, constructed bit and number in one byte) of the universal types used here. */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Deepest nesting the reader follows; X.509 needs about 8, so anything deeper is hostile input. */
const MAX_DEPTH = 32;

// --- writer ----------------------------------------------------------------------------------------------

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One element: identifier byte `tag`, DER length, `content`. */
export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

/** SEQUENCE of the encoded `items`, in order. */
export const sequence = (...items: Buffer[]): Buffer => tlv(Tag.SEQUENCE, Buffer.concat(items));

/** SET OF: DER orders the encoded members (X.690 §11.6). */
export const set = (...items: Buffer[]): Buffer => tlv(Tag.SET, Buffer.concat([...items].sort(Buffer.compare)));

/** A non-negative INTEGER from a bigint or big-endian unsigned bytes, minimally encoded. */
export function unsignedInteger(value: bigint | Buffer): Buffer {
  let bytes: Buffer;
  if (typeof value === 'bigint') {
    if (value < 0n) throw new RangeError('unsignedInteger: negative value');
    const hex = value.toString(16);
    bytes = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  } else {
    bytes = value;
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  // A set high bit would read as negative: prefix a zero byte.
  if (bytes[0] & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(Tag.INTEGER, bytes);
}

/** OBJECT IDENTIFIER from dotted notation, e.g. `2.5.4.3`. */
export function objectIdentifier(dotted: string): Buffer {
  const arcs = dotted.split('.').map((part) => {
    if (!/^\d+$/.test(part)) throw new Error(`objectIdentifier: bad arc in ${dotted}`);
    return BigInt(part);
  });
  if (arcs.length < 2 || arcs[0] > 2n || (arcs[0] < 2n && arcs[1] > 39n)) {
    throw new Error(`objectIdentifier: ${dotted} is not a valid OID`);
  }
  const out: number[] = [];
  const base128 = (value: bigint): void => {
    const groups: number[] = [Number(value & 0x7fn)];
    for (let v = value >> 7n; v > 0n; v >>= 7n) groups.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...groups);
  };
  base128(arcs[0] * 40n + arcs[1]);
  for (const arc of arcs.slice(2)) base128(arc);
  return tlv(Tag.OID, Buffer.from(out));
}

/** UTF8String. */
export const utf8String = (text: string): Buffer => tlv(Tag.UTF8_STRING, Buffer.from(text, 'utf8'));

/** IA5String (ASCII); throws for any other character. */
export function ia5String(text: string): Buffer {
  // IA5 is 7-bit ASCII; anything else would be re-read differently by other parsers.
  if ([...text].some((c) => c.charCodeAt(0) > 0x7f)) throw new Error(`ia5String: ${JSON.stringify(text)} is not ASCII`);
  return tlv(Tag.IA5_STRING, Buffer.from(text, 'ascii'));
}

/** OCTET STRING. */
export const octetString = (bytes: Buffer): Buffer => tlv(Tag.OCTET_STRING, bytes);

/** A BIT STRING of whole bytes (keys, signatures). */
export const bitString = (bytes: Buffer): Buffer => tlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([0]), bytes]));

/**
 * A named-bit BIT STRING (e.g. KeyUsage) with bits numbered from the most significant bit of the first byte; DER
 * drops trailing zero bits (X.690 §11.2.2).
 */
export function namedBits(bits: number[]): Buffer {
  if (bits.length === 0) return tlv(Tag.BIT_STRING, Buffer.from([0]));
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[Math.floor(bit / 8)] |= 0x80 >> (bit % 8);
  const unused = 7 - (highest % 8);
  return tlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([unused]), bytes]));
}

/** BOOLEAN (DER: 0xff for true). */
export const boolean = (value: boolean): Buffer => tlv(Tag.BOOLEAN, Buffer.from([value ? 0xff : 0x00]));

/** NULL. */
export const nullValue = (): Buffer => tlv(Tag.NULL, Buffer.alloc(0));

/** UTCTime through 2049, GeneralizedTime from 2050, as RFC 5280 §4.1.2.5 requires; whole seconds, UTC. */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new RangeError(`time: year ${year} cannot be encoded`);
  return year < 2050
    ? tlv(Tag.UTC_TIME, Buffer.from(`${digits.slice(2)}Z`, 'ascii'))
    : tlv(Tag.GENERALIZED_TIME, Buffer.from(`${digits}Z`, 'ascii'));
}

/** `[n] EXPLICIT`: a constructed context-specific wrapper around one encoded element. */
export const explicit = (n: number, element: Buffer): Buffer => tlv(0xa0 | n, element);

/** `[n] IMPLICIT`: the content of an element under a context-specific tag. */
export const implicit = (n: number, content: Buffer, constructed = false): Buffer =>
  tlv((constructed ? 0xa0 : 0x80) | n, content);

// --- reader ----------------------------------------------------------------------------------------------

/** One element as read: its identifier byte, its content and its whole encoding. */
export interface DerNode {
  /** The identifier byte, e.g. 0x30 for SEQUENCE, 0xa0 for `[0]` constructed. */
  tag: number;
  constructed: boolean;
  content: Buffer;
  /** Identifier, length and content: what a signature covers. */
  raw: Buffer;
}

/** Input that is not the DER this reader accepts. */
export class DerError extends Error {
  constructor(message: string) {
    super(`malformed DER: ${message}`);
    this.name = 'DerError';
  }
}

function readOne(buf: Buffer, offset: number): { node: DerNode; next: number } {
  if (offset + 2 > buf.length) throw new DerError('truncated element header');
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at offset ${offset}`);
  let length = buf[offset + 1];
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    // 0x80 is BER's indefinite length; more than 4 length bytes is beyond anything we accept.
    if (count === 0 || count > 4) throw new DerError(`unsupported length form at offset ${offset}`);
    if (offset + 2 + count > buf.length) throw new DerError('truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[offset + 2 + i];
    if (buf[offset + 2] === 0 || length < 0x80) throw new DerError(`non-minimal length at offset ${offset}`);
    header += count;
  }
  const end = offset + header + length;
  if (end > buf.length) throw new DerError(`element at offset ${offset} runs past the end`);
  return {
    node: {
      tag,
      constructed: (tag & 0x20) !== 0,
      content: buf.subarray(offset + header, end),
      raw: buf.subarray(offset, end),
    },
    next: end,
  };
}

/** Reads exactly one element from `buf`; trailing bytes are an error. */
export function parseDer(buf: Buffer): DerNode {
  const { node, next } = readOne(buf, 0);
  if (next !== buf.length) throw new DerError(`${buf.length - next} bytes after the element`);
  return node;
}

/** The elements inside a constructed element. */
export function childrenOf(node: DerNode, depth = 0): DerNode[] {
  if (!node.constructed) throw new DerError(`tag 0x${node.tag.toString(16)} is not constructed`);
  if (depth > MAX_DEPTH) throw new DerError('nesting too deep');
  const out: DerNode[] = [];
  for (let offset = 0; offset < node.content.length;) {
    const { node: child, next } = readOne(node.content, offset);
    out.push(child);
    offset = next;
  }
  return out;
}

/** The children of `node` after checking its tag, e.g. `expectChildren(n, Tag.SEQUENCE, 'subject')`. */
export function expectChildren(node: DerNode | undefined, tag: number, what: string): DerNode[] {
  return childrenOf(expect(node, tag, what));
}

/** `node` after checking that it exists and has tag `tag`. */
export function expect(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node) throw new DerError(`${what} is missing`);
  if (node.tag !== tag) {
    throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`);
  }
  return node;
}

/** The dotted form of an OBJECT IDENTIFIER element. */
export function readObjectIdentifier(node: DerNode | undefined, what = 'OID'): string {
  const { content } = expect(node, Tag.OID, what);
  if (content.length === 0) throw new DerError(`${what}: empty OID`);
  const arcs: bigint[] = [];
  let value = 0n;
  for (let i = 0; i < content.length; i++) {
    const byte = content[i];
    // A leading 0x80 would be a non-minimal arc encoding.
    if (value === 0n && byte === 0x80) throw new DerError(`${what}: non-minimal OID arc`);
    value = (value << 7n) | BigInt(byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(value);
      value = 0n;
    } else if (i === content.length - 1) {
      throw new DerError(`${what}: truncated OID`);
    }
  }
  const first = arcs[0];
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

/** A non-negative INTEGER as a bigint. */
export function readUnsignedInteger(node: DerNode | undefined, what = 'INTEGER'): bigint {
  const { content } = expect(node, Tag.INTEGER, what);
  if (content.length === 0) throw new DerError(`${what}: empty INTEGER`);
  if (content[0] & 0x80) throw new DerError(`${what}: negative INTEGER`);
  return BigInt(`0x${content.toString('hex')}`);
}

/** The bytes of a BIT STRING that has no unused bits (keys, signatures). */
export function readBitStringBytes(node: DerNode | undefined, what = 'BIT STRING'): Buffer {
  const { content } = expect(node, Tag.BIT_STRING, what);
  if (content.length === 0 || content[0] !== 0) throw new DerError(`${what}: expected whole bytes`);
  return content.subarray(1);
}

/** The text of a string element (UTF8String, PrintableString or IA5String). */
export function readString(node: DerNode | undefined, what = 'string'): string {
  if (!node) throw new DerError(`${what} is missing`);
  switch (node.tag) {
    case Tag.UTF8_STRING:
      return node.content.toString('utf8');
    case Tag.PRINTABLE_STRING:
    case Tag.IA5_STRING:
      return node.content.toString('latin1');
    default:
      throw new DerError(`${what}: tag 0x${node.tag.toString(16)} is not a supported string type`);
  }
}
