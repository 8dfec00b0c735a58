// PEM armour (RFC 7468): base64 DER between BEGIN/END lines. Kubernetes carries CSRs and certificates as PEM.

/** `der` as one PEM block with the given label (e.g. 'CERTIFICATE'). */
export function pemEncode(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Every block of `text` with its label and DER bytes, in order; text between blocks is ignored. */
export function pemBlocks(text: string): { label: string; der: Buffer }[] {
  const out: { label: string; der: Buffer }[] = [];
  const block = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = block.exec(text); m; m = block.exec(text)) {
    const body = m[2].replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new Error(`PEM block ${m[1]} is not valid base64`);
    out.push({ label: m[1], der: Buffer.from(body, 'base64') });
  }
  return out;
}

/** The DER of the only block of `text`, which must carry `label`. */
export function pemDecodeOne(text: string, label: string): Buffer {
  const blocks = pemBlocks(text);
  if (blocks.length !== 1) throw new Error(`expected one PEM block, found ${blocks.length}`);
  if (blocks[0].label !== label) throw new Error(`expected a PEM ${label}, found ${blocks[0].label}`);
  return blocks[0].der;
}

/** The certificates of a PEM bundle, each re-armoured on its own (for a TLS `ca` list). */
export function splitCertificateBundle(text: string): string[] {
  return pemBlocks(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => pemEncode('CERTIFICATE', b.der));
}
