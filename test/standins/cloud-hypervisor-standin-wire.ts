/**
 * HTTP/1.1 framing for the CH stand-in, written by hand (not node:http) so it can behave like CH's
 * `micro_http` where node's server would not (reference/cloud-hypervisor.md §5):
 * - a body exists only when `Content-Length` says so: without it (e.g. chunked encoding) the request is
 *   bodiless and the bytes that follow are read as the next request, which then fails to parse;
 * - a `Content-Length` longer than the bytes that arrive is answered with 400 once the client stops sending
 *   (half-close or `stallMs` of silence) — CH would wait; the stand-in reports it so a test can see it;
 * - bodies over 51,200 bytes are refused, as v53.0's server was measured to do (reference §14; §5's 4 MiB is
 *   later upstream);
 * - malformed requests get 400 with micro_http's `{ "error": … }` body — byte for byte, including the raw newline
 *   inside the JSON string that makes it invalid JSON (§14) — and the connection is closed.
 * Requests on one connection are answered in order; the caller serialises across connections.
 */
import type { Socket } from 'node:net';

/** v53.0's request body limit (reference §14). */
export const MAX_BODY_BYTES = 51_200;
const MAX_HEAD_BYTES = 64 * 1024;

export interface WireRequest {
  readonly method: string;
  /** Absolute path without query, e.g. `/api/v1/vm.create`. */
  readonly path: string;
  /** Header names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  /** Present only when a `Content-Length` above 0 announced it. */
  readonly body: Buffer | undefined;
}

export interface WireResponse {
  readonly status: number;
  /** JSON-serialised into the body; no body when undefined. */
  readonly body?: unknown;
}

export interface WireOptions {
  readonly onRequest: (request: WireRequest) => Promise<WireResponse>;
  /** Called for every request that could not be framed, with the 400 the client got. */
  readonly onMalformed?: (reason: string) => void;
  /** How long a partly received request may sit without new bytes before it is refused. @default 1000 */
  readonly stallMs?: number;
}

const REASONS: Record<number, string> = {
  200: 'OK',
  204: 'No Content',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
};

/** `rawBody` is sent as is, for answers that are not JSON-serialisable values (micro_http's own errors). */
export function encodeResponse(response: WireResponse, close: boolean, rawBody?: string): Buffer {
  const text = rawBody ?? (response.body === undefined ? undefined : JSON.stringify(response.body));
  const body = text === undefined ? undefined : Buffer.from(text, 'utf8');
  const lines = [
    `HTTP/1.1 ${response.status} ${REASONS[response.status] ?? 'Unknown'}`,
    'Server: Cloud Hypervisor API',
    `Connection: ${close ? 'close' : 'keep-alive'}`,
    'Content-Type: application/json',
  ];
  // 204 carries no body and no length; every other answer states its length, 0 included, so a
  // keep-alive client never has to wait for the connection to close.
  if (response.status !== 204) lines.push(`Content-Length: ${body?.length ?? 0}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
}

type Parsed =
  | { kind: 'incomplete' }
  | { kind: 'malformed'; reason: string }
  | { kind: 'request'; request: WireRequest; close: boolean; consumed: number };

const REQUEST_LINE = /^([A-Z]+) (\S+) HTTP\/(1\.[01])$/;

function parseOne(buffer: Buffer, ended: boolean): Parsed {
  // Judge the request line as soon as it is complete, so stray bytes fail at once instead of stalling.
  const lineEnd = buffer.indexOf('\r\n');
  if (lineEnd >= 0 || ended) {
    const line = buffer.subarray(0, lineEnd >= 0 ? lineEnd : buffer.length).toString('latin1');
    if (!REQUEST_LINE.test(line)) return { kind: 'malformed', reason: 'Invalid request line' };
  }
  const headEnd = buffer.indexOf('\r\n\r\n');
  if (headEnd < 0) {
    if (buffer.length > MAX_HEAD_BYTES) return { kind: 'malformed', reason: 'Request headers too large' };
    return ended ? { kind: 'malformed', reason: 'Incomplete request headers' } : { kind: 'incomplete' };
  }
  const [requestLine, ...headerLines] = buffer.subarray(0, headEnd).toString('latin1').split('\r\n');
  const [, method, target, version] = REQUEST_LINE.exec(requestLine) as RegExpExecArray;
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'malformed', reason: `Invalid header: ${line}` };
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length' && headers[name] !== undefined && headers[name] !== value) {
      return { kind: 'malformed', reason: 'Conflicting Content-Length headers' };
    }
    headers[name] = value;
  }
  let path: string;
  try {
    path = new URL(target, 'http://localhost').pathname;
  } catch {
    return { kind: 'malformed', reason: 'Invalid URI' };
  }

  let length = 0;
  if (headers['content-length'] !== undefined) {
    if (!/^\d+$/.test(headers['content-length'])) return { kind: 'malformed', reason: 'Invalid Content-Length' };
    length = Number(headers['content-length']);
  }
  if (length > MAX_BODY_BYTES) {
    return {
      kind: 'malformed',
      reason: `Request payload with size ${length} is larger than the limit of ${MAX_BODY_BYTES} allowed by server.`,
    };
  }
  const bodyStart = headEnd + 4;
  if (buffer.length - bodyStart < length) {
    if (!ended) return { kind: 'incomplete' };
    return {
      kind: 'malformed',
      reason: `Content-Length is ${length} but only ${buffer.length - bodyStart} body bytes arrived`,
    };
  }
  const connection = (headers.connection ?? '').toLowerCase();
  const close = connection === 'close' || (version === '1.0' && connection !== 'keep-alive');
  const body = length > 0 ? Buffer.from(buffer.subarray(bodyStart, bodyStart + length)) : undefined;
  return { kind: 'request', request: { method, path, headers, body }, close, consumed: bodyStart + length };
}

/** Serves HTTP/1.1 on one accepted connection until either side closes it. */
export function serveConnection(socket: Socket, options: WireOptions): void {
  const stallMs = options.stallMs ?? 1000;
  let buffer = Buffer.alloc(0);
  let ended = false;
  let busy = false;
  let closed = false;
  let stall: NodeJS.Timeout | undefined;

  const finish = () => {
    closed = true;
    if (stall) clearTimeout(stall);
    socket.end();
  };
  const refuse = (reason: string) => {
    options.onMalformed?.(reason);
    // micro_http's format string, raw newline included: `{ "error": "<reason>\nAll previous …" }`.
    const body = `{ "error": "${reason}\nAll previous unanswered requests will be dropped." }`;
    socket.write(encodeResponse({ status: 400 }, true, body));
    finish();
  };

  const pump = async () => {
    if (busy || closed) return;
    busy = true;
    try {
      while (!closed) {
        if (stall) clearTimeout(stall);
        if (buffer.length === 0) {
          if (ended) finish();
          return;
        }
        const parsed = parseOne(buffer, ended);
        if (parsed.kind === 'incomplete') {
          stall = setTimeout(() => {
            ended = true;
            void pump();
          }, stallMs);
          return;
        }
        if (parsed.kind === 'malformed') {
          refuse(parsed.reason);
          return;
        }
        buffer = buffer.subarray(parsed.consumed);
        const response = await options.onRequest(parsed.request);
        if (closed || socket.destroyed) return;
        socket.write(encodeResponse(response, parsed.close));
        if (parsed.close) finish();
      }
    } finally {
      busy = false;
    }
    // Bytes may have arrived while a request was being answered.
    if (!closed && buffer.length > 0) void pump();
  };

  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    void pump();
  });
  socket.on('end', () => {
    ended = true;
    void pump();
  });
  socket.on('error', () => finish());
  socket.on('close', () => {
    closed = true;
    if (stall) clearTimeout(stall);
  });
}
