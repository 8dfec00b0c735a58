/**
 * Cloud Hypervisor's event monitor, as the node daemon reads it. CH (`--event-monitor path=…`) writes each event as
 * a pretty-printed JSON object followed by a blank line: `{ "timestamp": {secs, nanos}, "source": "vm", "event":
 * "booted", "properties": null }` (reference/cloud-hypervisor.md §7). The file lives in the pod's run dir, so it is
 * read as untrusted input: records are bounded, anything that does not parse as an event is skipped, and a record
 * still being written stays in the buffer until its terminating blank line arrives.
 */

export interface ChEvent {
  readonly source: string;
  readonly event: string;
  readonly properties?: Readonly<Record<string, string>>;
  /** Seconds since the VMM started, as CH stamps it. */
  readonly secs?: number;
}

/** A real event record is a few hundred bytes; anything far longer is not one. */
const MAX_RECORD_BYTES = 4096;

/** Splits the stream into events; feed it bytes as they arrive. */
export class EventMonitorParser {
  private pending = '';
  /** Records skipped because they were not events (garbage, or too long). */
  skipped = 0;

  push(chunk: string): ChEvent[] {
    this.pending += chunk;
    const events: ChEvent[] = [];
    let end: number;
    while ((end = this.pending.indexOf('\n\n')) >= 0) {
      const record = this.pending.slice(0, end);
      this.pending = this.pending.slice(end + 2);
      if (record.trim() === '') continue;
      const event = parseRecord(record);
      if (event) events.push(event);
      else this.skipped++;
    }
    // A record that never ends is dropped rather than held without bound.
    if (this.pending.length > MAX_RECORD_BYTES) {
      this.pending = '';
      this.skipped++;
    }
    return events;
  }
}

function parseRecord(record: string): ChEvent | undefined {
  if (record.length > MAX_RECORD_BYTES) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(record);
  } catch {
    return undefined;
  }
  if (!value || typeof value !== 'object') return undefined;
  const v = value as { source?: unknown; event?: unknown; properties?: unknown; timestamp?: { secs?: unknown } };
  if (typeof v.source !== 'string' || typeof v.event !== 'string') return undefined;
  const properties =
    v.properties && typeof v.properties === 'object'
      ? Object.fromEntries(
          Object.entries(v.properties as Record<string, unknown>)
            .filter(([, x]) => typeof x === 'string')
            .map(([k, x]) => [k, (x as string).slice(0, 256)]),
        )
      : undefined;
  const secs = typeof v.timestamp?.secs === 'number' ? v.timestamp.secs : undefined;
  return {
    source: v.source.slice(0, 32),
    event: v.event.slice(0, 64),
    ...(properties ? { properties } : {}),
    ...(secs !== undefined ? { secs } : {}),
  };
}

/** What a VMM's event history says about it, folded event by event. */
export interface VmmHistory {
  /** The VM has booted at least once in this VMM. */
  booted: boolean;
  /** Guest reboots (requested through the API or by the guest). */
  reboots: number;
  /** The VMM process is ending or has ended (`vmm shutdown`). */
  vmmShutdown: boolean;
  /** An outgoing migration completed: the guest now lives elsewhere. */
  migratedAway: boolean;
  /** The last outgoing migration failed (the VM went on running here). */
  migrationFailed?: string;
}

export const emptyHistory = (): VmmHistory => ({ booted: false, reboots: 0, vmmShutdown: false, migratedAway: false });

export function foldEvent(h: VmmHistory, e: ChEvent): VmmHistory {
  if (e.source === 'vmm') return e.event === 'shutdown' ? { ...h, vmmShutdown: true } : h;
  switch (e.event) {
    case 'booted':
    case 'restored':
    case 'migration-receive-finished':
      return { ...h, booted: true };
    case 'rebooted':
      return { ...h, reboots: h.reboots + 1 };
    case 'migration-finished':
      return { ...h, migratedAway: true };
    case 'migration-failed':
      return { ...h, migrationFailed: e.properties?.error ?? 'the migration failed' };
    case 'migration-started':
      return { ...h, migrationFailed: undefined };
    default:
      return h;
  }
}
