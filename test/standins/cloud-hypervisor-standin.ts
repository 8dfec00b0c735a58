/**
 * A stand-in for the Cloud Hypervisor binary, for tests: an HTTP server on a unix socket that speaks CH's REST
 * API. No registry ships CH, so this is one of the two parts DESIGN.md allows to be stood in for. It
 * - routes exactly the spec's paths under `/api/v1` (unknown path → 404 `["Not Found"]`; `vm.coredump` is absent
 *   as in CH builds without `guest_debug`, reference/cloud-hypervisor.md §3);
 * - answers a wrong HTTP method with 400 `["Bad Request"]` — CH never sends the spec's 405 (§4, issue #8680);
 * - takes a body only with `Content-Length` and of at most 51,200 bytes (§5, §14, see
 *   cloud-hypervisor-standin-wire.ts) and refuses a body on endpoints that take none, a missing body, invalid JSON
 *   and any schema violation with 400 `["Failed to deserialize JSON", <why>]`, validating against the copied
 *   v53.0 spec with ajv as the v53.0 binary reads it (`vm.create` takes `{}`, §14);
 * - fills every body in with CH's defaults, which `vm.info` then reports (cloud-hypervisor-standin-defaults.ts);
 * - records every request, including the keys a real CH would silently ignore (§5);
 * - serves one call at a time in arrival order, as CH's single control thread does (§5): a call that blocks
 *   (receive-migration, a boot waiting for a vhost-user backend) holds up every other;
 * - models the VMM state machine (cloud-hypervisor-standin-vmm.ts), the host resources a VM opens, through
 *   `resolvePath` (cloud-hypervisor-standin-resources.ts), and the guest's own transitions (`guest`).
 *
 * "§N" cites reference/cloud-hypervisor.md; §14 is what a real v53.0 binary was measured to do.
 */
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import {
  cloudHypervisorApiRoot,
  cloudHypervisorRoutes,
  cloudHypervisorSchemas,
  readCloudHypervisorSpec,
  type CloudHypervisorRoute,
} from '../../operator/cloudhypervisor/spec';
import type { VmConfig } from '../../operator/cloudhypervisor/types';
import { CloudHypervisorStandinDefaults } from './cloud-hypervisor-standin-defaults';
import { asV53Reads, CloudHypervisorStandinSchemas, withoutKeys } from './cloud-hypervisor-standin-schemas';
import {
  CloudHypervisorStandinVmm,
  type ObservedVmState,
  type StandinEvent,
  type StandinGuest,
  type StandinMachine,
} from './cloud-hypervisor-standin-vmm';
import { serveConnection, type WireRequest, type WireResponse } from './cloud-hypervisor-standin-wire';

export interface CloudHypervisorStandinOptions {
  /** Where to listen; a stale socket file there is removed first, as CH does (§1). */
  readonly socketPath: string;
  /** Mirrors CH's `--no-shutdown` (§2). */
  readonly noShutdown?: boolean;
  /** What the guest does on `vm.power-button`. @default 'ignore' */
  readonly powerButton?: 'ignore' | 'poweroff';
  /** Called for every event CH's `--event-monitor` would emit. */
  readonly onEvent?: (event: StandinEventRecord) => void;
  /** How long a partly sent request may stall before it is refused. @default 1000 */
  readonly stallMs?: number;
  /** Receives CH's log lines, as CH writes them to stderr at its default level (a vCPU error, a panic, …). */
  readonly log?: (line: string) => void;
  /**
   * Maps a path inside the VM pod (every path of a VmConfig: payload, disks, sockets; snapshot directories;
   * `unix:` migration URLs) to the path the stand-in opens, emulating the container's mount table when the
   * stand-in runs on the host. @default identity
   */
  readonly resolvePath?: (pathInPod: string) => string;
  /** How long `vm.boot` retries a missing vhost-user backend before it fails (CH: ≈60 s, §14). @default 60000 */
  readonly vhostUserWaitMs?: number;
  /** Guest memory per second an outgoing migration moves (it lasts memory / rate). @default 1073741824 (1 GiB/s) */
  readonly migrationBytesPerSecond?: number;
  /**
   * Runs a real guest for every booted VM (the QEMU guest, cloud-hypervisor-standin-qemu.ts). The "process" ends
   * only once that guest has. @default none: the guest is modelled and played through `guest`
   */
  readonly machine?: StandinMachine;
}

/** How the stand-in "process" ended. */
export interface StandinExit {
  /** What ended it: `vmm.shutdown`, `guest powered off`, `guest crashed (vCPU error)`, `migrated`, `stopped`, … */
  readonly reason: string;
  /** The exit code CH would have: 0 for all of the above (§14), 1 when the VMM thread panicked. */
  readonly code: number;
}

export interface StandinRequestRecord {
  readonly method: string;
  readonly path: string;
  /** The `Content-Length` header as sent, if any. */
  readonly contentLength: string | undefined;
  /** The request body as received (only when a `Content-Length` announced one). */
  readonly body: string | undefined;
  readonly status: number;
  readonly response: unknown;
  /** JSON pointers of body keys the spec does not know; a real CH would drop them silently. */
  readonly ignoredKeys: readonly string[];
}

/** An event as CH's event monitor writes it; `timestamp` counts from the VMM's start. */
export interface StandinEventRecord extends StandinEvent {
  readonly timestamp: { readonly secs: number; readonly nanos: number };
}

export interface CloudHypervisorStandin {
  readonly socketPath: string;
  /** Every request in arrival order, with the answer it got. */
  readonly requests: readonly StandinRequestRecord[];
  /** Requests that could not even be framed (bad Content-Length …), with the reason given. */
  readonly malformed: readonly string[];
  readonly events: readonly StandinEventRecord[];
  state(): { vm: ObservedVmState; migrating: boolean; config: VmConfig | undefined };
  /** Transitions the guest causes without an API call (§2, §14). */
  readonly guest: StandinGuest;
  /** Resolves once the VMM has "exited" (vmm.shutdown, guest power-off or crash, migrated, panic, stopped). */
  readonly exited: Promise<StandinExit>;
  /** Closes the socket and every connection; idempotent. */
  stop(): Promise<void>;
}

/** CH's event-monitor framing: pretty-printed JSON objects written back to back, each followed by a blank line. */
export function formatEventMonitorRecord(event: StandinEventRecord): string {
  return `${JSON.stringify({ ...event, properties: event.properties ?? null }, null, 2)}\n\n`;
}

interface Spec {
  readonly apiRoot: string;
  readonly routes: ReadonlyMap<string, CloudHypervisorRoute>;
  readonly schemas: CloudHypervisorStandinSchemas;
  readonly defaults: CloudHypervisorStandinDefaults;
}

let cachedSpec: Spec | undefined;

/** Parsing the spec and compiling ajv takes a moment; every stand-in in a process shares the result. */
function spec(): Spec {
  if (!cachedSpec) {
    const doc = readCloudHypervisorSpec();
    // vm.coredump exists only in guest_debug builds (§3).
    const routes = cloudHypervisorRoutes(doc).filter((r) => r.endpoint !== 'vm.coredump');
    const schemas = asV53Reads(cloudHypervisorSchemas(doc));
    cachedSpec = {
      apiRoot: cloudHypervisorApiRoot(doc),
      routes: new Map(routes.map((r) => [r.endpoint, r])),
      schemas: new CloudHypervisorStandinSchemas(schemas),
      defaults: new CloudHypervisorStandinDefaults(schemas),
    };
  }
  return cachedSpec;
}

const BAD_REQUEST: WireResponse = { status: 400, body: ['Bad Request'] };
const NOT_FOUND: WireResponse = { status: 404, body: ['Not Found'] };

export async function startCloudHypervisorStandin(
  options: CloudHypervisorStandinOptions,
): Promise<CloudHypervisorStandin> {
  const { apiRoot, routes, schemas, defaults } = spec();
  const started = process.hrtime.bigint();
  const requests: StandinRequestRecord[] = [];
  const malformed: string[] = [];
  const events: StandinEventRecord[] = [];
  const sockets = new Set<Socket>();
  let stopped: Promise<void> | undefined;
  let exit: StandinExit | undefined;
  let resolveExited: (exit: StandinExit) => void = () => undefined;
  const exited = new Promise<StandinExit>((resolve) => (resolveExited = resolve));

  const onExit = (reason: string, code: number) => {
    exit ??= { reason, code };
    // Let the answer that caused the exit (vmm.shutdown's 200, a panic's 500) reach the client first.
    setImmediate(() => void stop());
  };

  const vmm = new CloudHypervisorStandinVmm({
    noShutdown: options.noShutdown,
    powerButton: options.powerButton,
    log: options.log,
    resolvePath: options.resolvePath,
    vhostUserWaitMs: options.vhostUserWaitMs,
    migrationBytesPerSecond: options.migrationBytesPerSecond,
    machine: options.machine,
    onEvent: (event) => {
      const ns = process.hrtime.bigint() - started;
      const record = { timestamp: { secs: Number(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) }, ...event };
      events.push(record);
      options.onEvent?.(record);
    },
    onExit,
  });

  const answer = async (req: WireRequest): Promise<{ response: WireResponse; ignoredKeys: string[] }> => {
    const prefix = `${apiRoot}/`;
    const route = req.path.startsWith(prefix) ? routes.get(req.path.slice(prefix.length)) : undefined;
    if (!route) return { response: NOT_FOUND, ignoredKeys: [] };
    if (req.method !== route.method) return { response: BAD_REQUEST, ignoredKeys: [] };
    if (!route.requestSchema) {
      // A PUT action takes no body and refuses one; GET handlers ignore it.
      if (req.method === 'PUT' && req.body) return { response: BAD_REQUEST, ignoredKeys: [] };
      return { response: await vmm.handle(route.endpoint, undefined), ignoredKeys: [] };
    }
    // v53.0 answers a missing body with a bare 400: no error body at all (§14).
    if (!req.body) return { response: { status: 400 }, ignoredKeys: [] };
    let json: unknown;
    try {
      json = JSON.parse(req.body.toString('utf8'));
    } catch (error) {
      return {
        response: { status: 400, body: ['Failed to deserialize JSON', (error as Error).message] },
        ignoredKeys: [],
      };
    }
    const check = schemas.check(route.requestSchema, json);
    if (check.errors.length > 0) {
      return {
        response: { status: 400, body: ['Failed to deserialize JSON', check.errors.join('; ')] },
        ignoredKeys: [],
      };
    }
    // CH's serde drops unknown keys and fills in defaults, so the VMM never sees (nor reports in vm.info) what it
    // ignored, and reports what it defaulted.
    const accepted = defaults.apply(route.requestSchema, withoutKeys(json, check.ignoredKeys));
    return { response: await vmm.handle(route.endpoint, accepted), ignoredKeys: check.ignoredKeys };
  };

  // One control thread (§5): calls are answered strictly one after another, across all connections.
  let queue: Promise<unknown> = Promise.resolve();
  const onRequest = (req: WireRequest): Promise<WireResponse> => {
    const turn = queue.then(async () => {
      // The process has "exited": nothing is answered any more, and stop() is about to drop the connection.
      if (exit) return new Promise<WireResponse>(() => undefined);
      const { response, ignoredKeys } = await answer(req).catch((error: Error) => ({
        // A stand-in bug must not kill the connection loop; it shows up as a 500 in `requests`.
        response: { status: 500, body: ['Error from API', `stand-in failure: ${error.message}`] },
        ignoredKeys: [],
      }));
      requests.push({
        method: req.method,
        path: req.path,
        contentLength: req.headers['content-length'],
        body: req.body?.toString('utf8'),
        status: response.status,
        response: response.body,
        ignoredKeys,
      });
      return response;
    });
    queue = turn.catch(() => undefined);
    return turn;
  };

  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveConnection(socket, { onRequest, onMalformed: (reason) => malformed.push(reason), stallMs: options.stallMs });
  });

  const stop = (): Promise<void> => {
    stopped ??= new Promise<void>((resolve) => {
      vmm.dispose();
      server.close(() => {
        rmSync(options.socketPath, { force: true });
        resolve();
      });
      for (const socket of sockets) {
        // Flush what is already written (vmm.shutdown's answer), then drop the connection; the timer covers a
        // peer that never drains.
        socket.end(() => socket.destroy());
        setTimeout(() => socket.destroy(), 500).unref();
      }
    })
      // A real guest's emulator ends before the process does.
      .then(() => vmm.settled())
      .then(() => resolveExited(exit ?? { reason: 'stopped', code: 0 }));
    return stopped;
  };

  rmSync(options.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  vmm.emitStarting();

  return {
    socketPath: options.socketPath,
    requests,
    malformed,
    events,
    state: () => vmm.state(),
    guest: vmm.guest,
    exited,
    stop,
  };
}
