// What the CH stand-in refuses before any state is touched: bad bodies (schema), bad framing, bad routes.
import { request as httpRequest } from 'node:http';
import type { VmConfig } from '../../../operator/cloudhypervisor/types';
import { chError, rawExchange, sampleVmConfig, useStandin } from './standin-fixture';

const DESERIALIZE = 'Failed to deserialize JSON';

/**
 * micro_http's answer to a request it cannot frame, byte for byte: a raw newline inside the JSON string, so the body
 * is not valid JSON (reference §14).
 */
const MICRO_HTTP_ERROR = (reason: string) =>
  `{ "error": "${reason}\nAll previous unanswered requests will be dropped." }`;

describe('CH stand-in: request bodies are validated against the v53.0 spec', () => {
  const fixture = useStandin();

  const badConfigs: [string, unknown, string][] = [
    [
      'wrong type',
      { ...sampleVmConfig(), cpus: { boot_vcpus: 'two', max_vcpus: 2 } },
      'VmConfig/cpus/boot_vcpus: must be integer',
    ],
    [
      'missing required field inside an object',
      { ...sampleVmConfig(), serial: { socket: '/s' } },
      "VmConfig/serial: must have required property 'mode'",
    ],
    [
      'unknown console mode',
      { ...sampleVmConfig(), console: { mode: 'Serial' } },
      'VmConfig/console/mode: must be one of "Off", "Pty", "Tty", "File", "Socket", "Null"',
    ],
    [
      'image type spelled in lower case',
      { ...sampleVmConfig(), disks: [{ path: '/d', image_type: 'raw' }] },
      'VmConfig/disks/0/image_type: must be one of "FixedVhd", "Qcow2", "Raw", "Vhdx", "Unknown"',
    ],
    [
      'below minimum',
      { ...sampleVmConfig(), cpus: { boot_vcpus: 0, max_vcpus: 1 } },
      'VmConfig/cpus/boot_vcpus: must be >= 1',
    ],
    [
      'outside the uint8 range of its format',
      { ...sampleVmConfig(), disks: [{ path: '/d', image_type: 'Raw', pci_device_id: 300 }] },
      'VmConfig/disks/0/pci_device_id: must be <= 255',
    ],
    ['not an object', [sampleVmConfig()], 'VmConfig: must be object'],
  ];

  it.each(badConfigs)('vm.create refuses %s with 400 and the schema error', async (_name, body, expected) => {
    const { client, standin } = fixture();
    const error = await chError(client.vm.create(body as VmConfig));
    expect(error.statusCode).toBe(400);
    expect(error.chain[0]).toBe(DESERIALIZE);
    expect(error.chain[1]).toContain(expected);
    expect(standin.state().vm).toBe('NoVM');
  });

  it('accepts vm.create with `{}` (v53.0 reads payload as optional) and fails only at boot, with 500 (§14)', async () => {
    const { client, standin } = fixture();
    await expect(client.request('PUT', 'vm.create', {})).resolves.toEqual({ statusCode: 204, body: '' });
    expect(standin.state().vm).toBe('Created');
    const error = await chError(client.vm.boot());
    expect([error.statusCode, error.chain]).toEqual([
      500,
      ['Error from API', 'The VM could not boot', 'Failed to validate config', 'Payload configuration is not bootable'],
    ]);
    expect(standin.state().vm).toBe('Created');
  });

  it('validates the bodies of the other endpoints too, including fields only CH code requires', async () => {
    const { client } = fixture();
    await client.vm.create(sampleVmConfig());
    const disk = await chError(client.vm.addDisk({ path: '/d', readonly: 'yes' } as never));
    expect(disk.chain).toEqual([DESERIALIZE, 'DiskConfig/readonly: must be boolean']);
    // The spec leaves VmRemoveDevice.id optional; CH's struct requires it (reference §5).
    const remove = await chError(client.vm.removeDevice({} as never));
    expect(remove.chain).toEqual([DESERIALIZE, "VmRemoveDevice: must have required property 'id'"]);
    const migrate = await chError(client.vm.sendMigration({ destination_url: 'unix:/x', connections: 129 }));
    expect(migrate.chain).toEqual([DESERIALIZE, 'SendMigrationData/connections: must be <= 128']);
  });

  it('accepts keys the spec does not know, drops them as CH does, and records them', async () => {
    const { client, standin } = fixture();
    const config = {
      ...sampleVmConfig(),
      // The v53.0 spec's own spelling; CH's code reads generic_vhost_user (reference §5).
      'generic-vhost-user': [],
      disks: [{ path: '/d', imagetype: 'Raw' }],
    };
    await client.vm.create(config as VmConfig);
    expect(standin.requests.at(-1)?.ignoredKeys).toEqual(['/generic-vhost-user', '/disks/0/imagetype']);
    const info = await client.vm.info();
    expect(info.config).not.toHaveProperty(['generic-vhost-user']);
    expect(info.config.disks).toHaveLength(1);
    expect(info.config.disks?.[0]).toMatchObject({ path: '/d' });
    expect(info.config.disks?.[0]).not.toHaveProperty('imagetype');
    expect(info.config.disks?.[0]).not.toHaveProperty('image_type');
  });

  it('sends the exact byte length of a non-ASCII body as Content-Length', async () => {
    const { client, standin } = fixture();
    const config = { ...sampleVmConfig(), payload: { kernel: '/k', cmdline: 'hostname=größe' } };
    await client.vm.create(config);
    const recorded = standin.requests.at(-1);
    expect(recorded?.contentLength).toBe(String(Buffer.byteLength(JSON.stringify(config))));
    expect((await client.vm.info()).config.payload.cmdline).toBe('hostname=größe');
  });
});

describe('CH stand-in: routes, methods and framing', () => {
  const fixture = useStandin();
  const body = JSON.stringify(sampleVmConfig());

  it('answers unknown paths with 404 ["Not Found"], including vm.coredump of non-debug builds', async () => {
    const { client } = fixture();
    for (const endpoint of ['vm.nope', 'vm.coredump']) {
      const error = await chError(client.request('PUT', endpoint));
      expect([error.statusCode, error.chain]).toEqual([404, ['Not Found']]);
    }
    const [wrongRoot] = await rawExchange(
      fixture().socketPath,
      'GET /api/v2/vmm.ping HTTP/1.1\r\nConnection: close\r\n\r\n',
    );
    expect(wrongRoot.status).toBe(404);
  });

  it('answers a wrong method with 400 ["Bad Request"]: CH never sends the spec`s 405', async () => {
    const { client, socketPath } = fixture();
    expect((await chError(client.request('GET', 'vm.create'))).statusCode).toBe(400);
    const error = await chError(client.request('PUT', 'vm.info'));
    expect([error.statusCode, error.chain]).toEqual([400, ['Bad Request']]);
    const [del] = await rawExchange(socketPath, 'DELETE /api/v1/vm.info HTTP/1.1\r\nConnection: close\r\n\r\n');
    expect([del.status, del.body]).toEqual([400, '["Bad Request"]']);
  });

  it('refuses a body on an endpoint that takes none, and a missing body where one is required', async () => {
    const { client } = fixture();
    expect((await chError(client.request('PUT', 'vm.boot', {}))).chain).toEqual(['Bad Request']);
    // §14: v53.0 answers a missing body with an empty 400 body.
    const missing = await chError(client.request('PUT', 'vm.create'));
    expect([missing.statusCode, missing.chain, missing.message]).toEqual([
      400,
      [],
      'PUT /api/v1/vm.create → 400: Bad Request',
    ]);
  });

  it('refuses invalid JSON with CH`s deserialize error', async () => {
    const { socketPath, standin } = fixture();
    const bad = '{"payload": ';
    const [res] = await rawExchange(
      socketPath,
      `PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: ${bad.length}\r\nConnection: close\r\n\r\n${bad}`,
    );
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)[0]).toBe(DESERIALIZE);
    expect(standin.state().vm).toBe('NoVM');
  });

  it('treats a body without Content-Length as absent (node`s chunked fallback): 400, nothing created', async () => {
    const { socketPath, standin } = fixture();
    const status = await new Promise<number>((resolve, reject) => {
      // A streamed body without Content-Length: node falls back to chunked encoding, which CH does not decode
      // (reference §5). (`req.end(body)` alone would let node compute the length itself.)
      const req = httpRequest({ socketPath, method: 'PUT', path: '/api/v1/vm.create', agent: false });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write(body);
      req.end();
    });
    expect(status).toBe(400);
    expect(standin.requests[0]).toMatchObject({ status: 400, contentLength: undefined, body: undefined });
    expect(standin.state().vm).toBe('NoVM');
  });

  it('reads the bytes after a length-less request as the next request, which fails to parse', async () => {
    const { socketPath, standin } = fixture();
    const responses = await rawExchange(socketPath, `PUT /api/v1/vm.create HTTP/1.1\r\n\r\n${body}`, {
      halfClose: true,
    });
    expect(responses.map((r) => r.status)).toEqual([400, 400]);
    // A vm.create without a body: v53.0's bare 400 (§14).
    expect([responses[0].headers['content-length'], responses[0].body]).toEqual(['0', '']);
    expect(responses[1].body).toBe(MICRO_HTTP_ERROR('Invalid request line'));
    expect(standin.state().vm).toBe('NoVM');
  });

  it('refuses a Content-Length longer than the body, whether the client half-closes or just stalls', async () => {
    const { socketPath, standin } = fixture();
    const head = `PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: ${body.length + 10}\r\n\r\n`;
    for (const halfClose of [true, false]) {
      const [res] = await rawExchange(socketPath, head + body, { halfClose });
      expect(res.status).toBe(400);
      expect(res.body).toContain(`Content-Length is ${body.length + 10} but only ${body.length}`);
    }
    expect(standin.malformed).toHaveLength(2);
    expect(standin.state().vm).toBe('NoVM');
  });

  it('reads only Content-Length bytes when it is too short: the truncated JSON is refused', async () => {
    const { socketPath, standin } = fixture();
    const [first] = await rawExchange(
      socketPath,
      `PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: ${body.length - 5}\r\n\r\n${body}`,
      { halfClose: true },
    );
    expect(first.status).toBe(400);
    expect(JSON.parse(first.body)[0]).toBe(DESERIALIZE);
    expect(standin.state().vm).toBe('NoVM');
  });

  it('refuses a body over v53.0`s limit of 51,200 bytes with 400 before reading it; up to the limit is fine', async () => {
    const { client, standin } = fixture();
    const padded = (bytes: number): VmConfig => {
      const config: VmConfig = { ...sampleVmConfig(), payload: { ...sampleVmConfig().payload, cmdline: '' } };
      const base = Buffer.byteLength(JSON.stringify(config));
      return { ...config, payload: { ...config.payload, cmdline: 'x'.repeat(bytes - base) } };
    };
    // A 60,000-byte vm.create, as measured (reference §14).
    const tooBig = padded(60_000);
    expect(Buffer.byteLength(JSON.stringify(tooBig))).toBe(60_000);
    const error = await chError(client.vm.create(tooBig));
    expect(error.statusCode).toBe(400);
    // Not valid JSON, so the client keeps the raw text as the chain.
    expect(error.chain).toEqual([
      MICRO_HTTP_ERROR('Request payload with size 60000 is larger than the limit of 51200 allowed by server.'),
    ]);
    expect(standin.malformed).toEqual([
      'Request payload with size 60000 is larger than the limit of 51200 allowed by server.',
    ]);
    expect(standin.state().vm).toBe('NoVM');

    const atLimit = padded(51_200);
    expect(Buffer.byteLength(JSON.stringify(atLimit))).toBe(51_200);
    await expect(client.vm.create(atLimit)).resolves.toBeUndefined();
  });

  it('refuses a Content-Length that is not a number', async () => {
    const { socketPath } = fixture();
    const [res] = await rawExchange(socketPath, `PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n{}`);
    expect(res.status).toBe(400);
    expect(res.body).toBe(MICRO_HTTP_ERROR('Invalid Content-Length'));
  });

  it('answers pipelined requests on one keep-alive connection in order', async () => {
    const { socketPath } = fixture();
    const responses = await rawExchange(
      socketPath,
      `PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        'GET /api/v1/vm.info HTTP/1.1\r\n\r\n' +
        'PUT /api/v1/vm.boot HTTP/1.1\r\nConnection: close\r\n\r\n',
    );
    expect(responses.map((r) => r.status)).toEqual([204, 200, 204]);
    expect(JSON.parse(responses[1].body).state).toBe('Created');
  });
});
