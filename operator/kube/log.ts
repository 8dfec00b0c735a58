// Structured JSON logs, one object per line on stdout: {level, ts, msg, controller?, key?, …fields}.
// JSON because the cluster's log pipeline indexes fields; one line per record so nothing is torn
// apart when lines interleave. The level comes from LOG_LEVEL (debug|info|warn|error).
import { KubeApiError } from './errors';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `bindings` (e.g. `{controller: 'virtualmachine', key: 'ns/name'}`) to every line. */
  child(bindings: LogFields): Logger;
}

export interface LoggerOptions {
  /** @default LOG_LEVEL, else 'info' */
  level?: LogLevel;
  /** Where lines go (without the newline). @default process.stdout */
  write?: (line: string) => void;
  bindings?: LogFields;
  /** @default () => new Date() */
  now?: () => Date;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** Keys every line owns; a field of the same name is written as `_<name>` instead of clobbering it. */
const reserved = new Set(['level', 'ts', 'msg']);

/** LOG_LEVEL's value, case-insensitive; anything unknown (or unset) gives `fallback`. */
export function parseLogLevel(value: string | undefined, fallback: LogLevel = 'info'): LogLevel {
  const v = value?.trim().toLowerCase();
  if (v === 'warning') return 'warn';
  return v === 'debug' || v === 'info' || v === 'warn' || v === 'error' ? v : fallback;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? parseLogLevel(process.env.LOG_LEVEL);
  const write = options.write ?? ((line: string) => void process.stdout.write(line + '\n'));
  const now = options.now ?? (() => new Date());
  return new JsonLogger(level, write, now, options.bindings ?? {});
}

class JsonLogger implements Logger {
  constructor(
    readonly level: LogLevel,
    private readonly write: (line: string) => void,
    private readonly now: () => Date,
    private readonly bindings: LogFields,
  ) {}

  enabled(level: LogLevel): boolean {
    return rank[level] >= rank[this.level];
  }
  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }
  child(bindings: LogFields): Logger {
    return new JsonLogger(this.level, this.write, this.now, { ...this.bindings, ...bindings });
  }

  private log(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (!this.enabled(level)) return;
    const record: LogFields = { level, ts: this.now().toISOString(), msg };
    for (const [key, value] of Object.entries({ ...this.bindings, ...fields })) {
      if (value === undefined) continue;
      record[reserved.has(key) ? `_${key}` : key] = value;
    }
    let line: string;
    try {
      line = JSON.stringify(record, replacer);
    } catch (error) {
      // A field that cannot be serialised (a cycle) must not lose the message itself.
      line = JSON.stringify({ level, ts: record.ts, msg, logError: String(error) });
    }
    this.write(line);
  }
}

/** Errors become objects with the parts worth reading; bigints become strings. */
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof KubeApiError) {
    return { name: value.name, message: value.message, code: value.code, reason: value.reason, causes: value.causes };
  }
  if (value instanceof Error) {
    const out: LogFields = { name: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    if (value.stack) out.stack = value.stack;
    if (value.cause !== undefined) out.cause = value.cause;
    return out;
  }
  return value;
}

/** Discards everything; the default where a component is given no logger. */
export const silentLogger: Logger = createLogger({ level: 'error', write: () => undefined }).child({});
