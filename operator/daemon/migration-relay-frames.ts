// The framing of the relay's TLS stream. Node reports a TCP FIN and a TLS close_notify alike (both are 'end'), so on
// the wire alone a stream cut short by a dead peer or an on-path attacker would look finished. Each direction is
// therefore sent as frames — a 4-byte big-endian length, then that many bytes — and ends with an empty frame: a
// stream that stops without one was truncated, and the relay fails instead of half-closing Cloud Hypervisor's socket
// as if the migration stream were complete. The overhead is 4 bytes per socket read (up to 64 KiB).

/** Largest frame accepted; a reader never buffers more than this (a socket read is at most 64 KiB). */
export const MAX_FRAME_BYTES = 1024 * 1024;

const HEADER_BYTES = 4;

/** The header of a frame carrying `length` bytes; `frameHeader(0)` is the end-of-stream frame. */
export function frameHeader(length: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(length);
  return header;
}

/** The empty frame that ends a direction of the stream. */
export const END_OF_STREAM = frameHeader(0);

/** A framed stream that breaks the framing rules. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

/**
 * Splits a framed byte stream back into payloads; `ended` turns true at the end-of-stream frame. Linear in the bytes
 * pushed however they are split (a header is read once, and a payload is joined once, from only its own chunks).
 */
export class FrameReader {
  private pending: Buffer[] = [];
  /** Index of the first unread chunk in `pending`. */
  private head = 0;
  private pendingBytes = 0;
  /** The length of the frame whose header has been read, until its payload is complete. */
  private frameLength: number | undefined;
  private _ended = false;

  get ended(): boolean {
    return this._ended;
  }

  /** The payloads completed by `chunk`, in order. Throws FrameError on a bad frame or bytes after the end. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length === 0) return [];
    if (this._ended) throw new FrameError('data after the end of the stream');
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.frameLength === undefined) {
        if (this.pendingBytes < HEADER_BYTES) break;
        const length = this.take(HEADER_BYTES).readUInt32BE(0);
        if (length > MAX_FRAME_BYTES) throw new FrameError(`frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
        if (length === 0) {
          this._ended = true;
          if (this.pendingBytes > 0) throw new FrameError('data after the end of the stream');
          break;
        }
        this.frameLength = length;
      }
      if (this.pendingBytes < this.frameLength) break;
      out.push(this.take(this.frameLength));
      this.frameLength = undefined;
    }
    return out;
  }

  /** Removes and returns the first `n` buffered bytes (a view when one chunk holds them all). */
  private take(n: number): Buffer {
    this.pendingBytes -= n;
    const first = this.pending[this.head];
    if (first.length >= n) {
      if (first.length === n) this.advance();
      else this.pending[this.head] = first.subarray(n);
      return first.subarray(0, n);
    }
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const chunk = this.pending[this.head];
      const need = n - got;
      if (chunk.length <= need) {
        parts.push(chunk);
        got += chunk.length;
        this.advance();
      } else {
        parts.push(chunk.subarray(0, need));
        this.pending[this.head] = chunk.subarray(need);
        got = n;
      }
    }
    return Buffer.concat(parts, n);
  }

  private advance(): void {
    this.head++;
    // Drop consumed chunks once they are most of the list, so memory follows what is unread.
    if (this.head > 64 && this.head * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
  }
}
