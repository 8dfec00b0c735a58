// How the client reports what can go wrong on the socket: hung servers, no server, CH error bodies, odd answers.
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { CloudHypervisorClient, MAX_RESPONSE_BYTES } from '../../../operator/cloudhypervisor/client';
import { waitForSocket } from '../../../operator/cloudhypervisor/wait-for-socket';
import { startCloudHypervisorStandin, type CloudHypervisorStandin } from '../../standins/cloud-hypervisor-standin';
import { chError, sampleVmConfig, tempDir } from './standin-fixture';

/** A unix-socket server whose every connection is handed to `onConnection` (which may never answer). */
async function fakeServer(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

/** Answers every request with one canned raw HTTP response, then closes. */
function cannedResponse(status: string, body: string): (socket: Socket) => void {
  return (socket) =>
    socket.once('data', () =>
      socket.end(
        `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      ),
    );
}

describe('CloudHypervisorClient failure reporting', () => {
  let dir: string;
  let cleanupDir: () => void;
  let servers: Server[];
  let sockets: Set<Socket>;
  let standins: CloudHypervisorStandin[];

  beforeEach(() => {
    ({ dir, cleanup: cleanupDir } = tempDir());
    servers = [];
    sockets = new Set();
    standins = [];
  });

  afterEach(async () => {
    try {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
      await Promise.all(standins.map((s) => s.stop()));
    } finally {
      cleanupDir();
    }
  });

  async function serve(name: string, onConnection: (socket: Socket) => void): Promise<string> {
    const path = join(dir, name);
    servers.push(
      await fakeServer(path, (socket) => {
        sockets.add(socket);
        onConnection(socket);
      }),
    );
    return path;
  }

  it('gives up on a server that never answers, with a timeout error within the deadline', async () => {
    const socketPath = await serve('hung.sock', () => undefined);
    const client = new CloudHypervisorClient({ socketPath, timeoutMs: 5_000 });
    const error = await chError(client.vm.info({ timeoutMs: 150 }));
    expect(error.kind).toBe('timeout');
    expect(error.statusCode).toBeUndefined();
    expect(error.message).toBe('GET /api/v1/vm.info: no answer within 150 ms');
    // The client's own default applies when the call sets none.
    const slow = new CloudHypervisorClient({ socketPath, timeoutMs: 100 });
    expect((await chError(slow.vm.boot())).message).toContain('no answer within 100 ms');
  });

  it('reports a missing socket as a transport error', async () => {
    const client = new CloudHypervisorClient({ socketPath: join(dir, 'absent.sock') });
    const error = await chError(client.vmm.ping());
    expect(error.kind).toBe('transport');
    expect(error.message).toMatch(/^GET \/api\/v1\/vmm\.ping: connect ENOENT/);
  });

  it('surfaces CH`s error array as the chain and a readable message', async () => {
    const socketPath = await serve(
      'err.sock',
      cannedResponse(
        '500 Internal Server Error',
        '["Error from API","The VM could not boot","Kernel lacks PVH header"]',
      ),
    );
    const error = await chError(new CloudHypervisorClient({ socketPath }).vm.boot());
    expect(error).toMatchObject({ kind: 'http', method: 'PUT', path: '/api/v1/vm.boot', statusCode: 500 });
    expect(error.chain).toEqual(['Error from API', 'The VM could not boot', 'Kernel lacks PVH header']);
    expect(error.message).toBe(
      'PUT /api/v1/vm.boot → 500: Error from API: The VM could not boot: Kernel lacks PVH header',
    );
  });

  it('keeps micro_http`s own { "error": … } bodies and bodiless errors readable', async () => {
    const objectBody = await serve('obj.sock', cannedResponse('400 Bad Request', '{ "error": "Invalid URI." }'));
    const empty = await serve('empty.sock', cannedResponse('400 Bad Request', ''));
    expect((await chError(new CloudHypervisorClient({ socketPath: objectBody }).vm.boot())).chain).toEqual([
      'Invalid URI.',
    ]);
    const bare = await chError(new CloudHypervisorClient({ socketPath: empty }).vm.boot());
    expect(bare.chain).toEqual([]);
    expect(bare.message).toBe('PUT /api/v1/vm.boot → 400: Bad Request');
  });

  it('reports a 200 whose body is not JSON, or missing where one is due, as a protocol error', async () => {
    const notJson = await serve('text.sock', cannedResponse('200 OK', 'pong'));
    expect((await chError(new CloudHypervisorClient({ socketPath: notJson }).vmm.ping())).kind).toBe('protocol');
    const noBody = await serve('nobody.sock', (s) => s.once('data', () => s.end('HTTP/1.1 204 No Content\r\n\r\n')));
    const missing = await chError(new CloudHypervisorClient({ socketPath: noBody }).vm.info());
    expect([missing.kind, missing.message]).toEqual([
      'protocol',
      'GET /api/v1/vm.info: expected a JSON body, got none',
    ]);
  });

  it('parses no JSON from a 204: calls that answer nothing resolve with nothing', async () => {
    const socketPath = join(dir, 'api.sock');
    standins.push(await startCloudHypervisorStandin({ socketPath }));
    const client = new CloudHypervisorClient({ socketPath });
    await expect(client.request('PUT', 'vm.create', sampleVmConfig())).resolves.toEqual({ statusCode: 204, body: '' });
    await expect(client.vm.addDisk({ path: '/cold.raw', image_type: 'Raw' })).resolves.toBeUndefined();
  });

  describe('waitForSocket', () => {
    it('polls until the VMM comes up and returns its ping', async () => {
      const socketPath = join(dir, 'late.sock');
      const late = setTimeout(
        () => void startCloudHypervisorStandin({ socketPath }).then((s) => standins.push(s)),
        100,
      );
      try {
        const ping = await waitForSocket(socketPath, 10_000, { intervalMs: 20 });
        expect(ping.version).toBe('53.0.0');
      } finally {
        clearTimeout(late);
      }
    });

    it('gives up after the deadline, having tried at most timeout/interval + 1 times', async () => {
      const error = await chError(waitForSocket(join(dir, 'never.sock'), 200, { intervalMs: 50 }));
      expect(error.kind).toBe('timeout');
      const attempts = Number(/after (\d+) attempts/.exec(error.message)?.[1]);
      expect(attempts).toBeGreaterThanOrEqual(1);
      expect(attempts).toBeLessThanOrEqual(5);
      expect(error.message).toContain('ENOENT');
    });

    it('gives up on a socket that accepts but never answers', async () => {
      const socketPath = await serve('mute.sock', () => undefined);
      const error = await chError(waitForSocket(socketPath, 300, { intervalMs: 50, attemptTimeoutMs: 100 }));
      expect(error.kind).toBe('timeout');
      expect(error.message).toContain('no answer within');
    });
  });
});

test('an answer without end is cut off at MAX_RESPONSE_BYTES (the socket lives in a pod that may be hostile)', async () => {
  const { dir, cleanup } = tempDir();
  const socketPath = join(dir, 'endless.sock');
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const server = await fakeServer(socketPath, (socket) => {
    socket.on('error', () => undefined);
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n');
    const pump = (): void => {
      while (!socket.destroyed && sent < 64 * MAX_RESPONSE_BYTES) {
        sent += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  try {
    const client = new CloudHypervisorClient({ socketPath, timeoutMs: 10_000 });
    await expect(client.vm.info()).rejects.toThrow(/answer longer than 1048576 bytes/);
    expect(sent).toBeLessThan(64 * MAX_RESPONSE_BYTES);
  } finally {
    server.close();
    cleanup();
  }
});
