// Splits a watch response (newline-delimited JSON) into lines. Works on bytes, not strings: a
// chunk boundary may fall inside a multi-byte UTF-8 character, but never inside the newline byte,
// which UTF-8 does not use in any multi-byte sequence. Bounded: a line longer than maxLineBytes is
// an error rather than unbounded buffering.

const NEWLINE = 0x0a;

export class LineTooLongError extends Error {
  constructor(readonly limit: number) {
    super(`watch stream: a line exceeds ${limit} bytes without a newline`);
    this.name = 'LineTooLongError';
  }
}

export class JsonLineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxLineBytes = 64 * 1024 * 1024) {}

  /** Complete lines (without the newline; blank lines skipped) ending in this chunk. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE, start); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, nl);
      const line =
        this.pendingBytes > 0 ? Buffer.concat([...this.pending, piece]).toString('utf8') : piece.toString('utf8');
      this.pending = [];
      this.pendingBytes = 0;
      if (line.trim() !== '') lines.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
      if (this.pendingBytes > this.maxLineBytes) throw new LineTooLongError(this.maxLineBytes);
    }
    return lines;
  }

  /** What is left when the stream ends: a final line without a newline, if any. */
  end(): string | undefined {
    const rest = Buffer.concat(this.pending).toString('utf8');
    this.pending = [];
    this.pendingBytes = 0;
    return rest.trim() === '' ? undefined : rest;
  }
}
