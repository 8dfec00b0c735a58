/**
 * One bounded HTTP(S) GET for the e2e harness: a deadline on the whole exchange (a peer that trickles bytes cannot
 * hold it open), a cap on the body (a peer cannot fill memory), self-signed serving certificates accepted (the
 * control plane's components use them). A guest or component is never trusted to end the exchange itself.
 */
import http from 'node:http';
import https from 'node:https';

export interface HttpAnswer {
  status: number;
  body: string;
}

/** Rejects with `code` TIMEOUT after `timeoutMs`, TOO_LARGE past `maxBytes` of body, or the socket's error code. */
export function httpGet(url: string, timeoutMs = 5_000, maxBytes = 64 * 1024): Promise<HttpAnswer> {
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const fail = (code: string, message: string) => req.destroy(Object.assign(new Error(message), { code }));
    const req = client.get(url, { rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) fail('TOO_LARGE', `GET ${url}: body over ${maxBytes} bytes`);
        else chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    const deadline = setTimeout(() => fail('TIMEOUT', `GET ${url}: no complete answer in ${timeoutMs} ms`), timeoutMs);
    req.on('error', reject);
    req.on('close', () => clearTimeout(deadline));
  });
}

/** How a GET ended: `HTTP <status>`, or the error code (`ECONNREFUSED`, `TIMEOUT`, …). */
export const httpOutcome = (url: string, timeoutMs: number): Promise<string> =>
  httpGet(url, timeoutMs).then(
    (r) => `HTTP ${r.status}`,
    (e: NodeJS.ErrnoException) => e.code ?? String(e),
  );
