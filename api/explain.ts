/**
 * Validation errors as synth time shows them: the API server's verdict (same fields, same rules — validate.ts keeps
 * its exact wording for the agreement tests), worded for the person who wrote the value: one error per problem, the
 * offending value instead of the kind of object a rule sits on, the items a rule over a list fails for, and the likely
 * fix for a misspelled quantity.
 */
import type { FieldError } from './validate';
import { formatFieldError } from './validate';

/** Longer values (whole objects a rule sits on) would bury the message: they are left out. */
const MAX_SHOWN = 60;

/** The value as the error shows it, or undefined when it is too long to help. */
function shown(value: unknown): string | undefined {
  const text = JSON.stringify(value);
  return text !== undefined && text.length <= MAX_SHOWN ? text : undefined;
}

/** Units people write for bytes, and the Kubernetes suffixes they mean (decimal, binary). */
const UNIT_FIXES: Readonly<Record<string, readonly [string, string]>> = {
  kb: ['k', 'Ki'],
  k: ['k', 'Ki'],
  kib: ['k', 'Ki'],
  ki: ['k', 'Ki'],
  mb: ['M', 'Mi'],
  mib: ['M', 'Mi'],
  mi: ['M', 'Mi'],
  gb: ['G', 'Gi'],
  g: ['G', 'Gi'],
  gib: ['G', 'Gi'],
  gi: ['G', 'Gi'],
  tb: ['T', 'Ti'],
  t: ['T', 'Ti'],
  tib: ['T', 'Ti'],
  ti: ['T', 'Ti'],
};

/** "write 2G (10^9 bytes) or 2Gi (2^30 bytes)" for a value like `2GB`, `2 gib`, `2g`; undefined otherwise. */
export function quantityHint(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]+)\s*$/.exec(value);
  const fix = m && UNIT_FIXES[m[2].toLowerCase()];
  if (!m || !fix) return undefined;
  const [decimal, binary] = fix;
  if (`${m[1]}${decimal}` === value || `${m[1]}${binary}` === value) return undefined;
  return `write ${m[1]}${decimal} (powers of 1000) or ${m[1]}${binary} (powers of 1024)`;
}

const isQuantityPattern = (detail: string) => /should match '.*(Ki\|Mi\||\[KMGTPE\]i)/.test(detail);

/** Longest line shown: a value or key a tenant chose cannot fill a terminal or a log. */
const UNPRINTABLE = new RegExp(
  // eslint-disable-next-line no-control-regex -- control characters are what printable() escapes
  '[\\u0000-\\u001f\\u007f-\\u009f\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]',
  'g',
);
const MAX_LINE = 400;

/**
 * The line as a terminal or log may show it: control, line-separator and bidirectional-override characters escaped
 * (`\u0085`), so a value cannot forge another line or reorder the text; cut at {@link MAX_LINE} characters.
 */
export function printable(line: string): string {
  const escaped = line.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return escaped.length <= MAX_LINE ? escaped : `${escaped.slice(0, MAX_LINE)}… (${escaped.length - MAX_LINE} more)`;
}

/** The API server's note that rules were skipped: synth time lists the problems themselves, one line each. */
const isSkippedRulesNote = (e: FieldError) => e.detail.includes('some validation rules were not checked');

/** The errors as synth time reports them, each formatted `field: Type: detail`. */
export function explainFieldErrors(errors: readonly FieldError[]): string[] {
  // A field that breaks its schema (type, pattern, enum, bounds) also fails the rules that read it; those failures
  // say nothing new.
  const broken = new Set(errors.filter((e) => !e.rule).map((e) => e.field));
  const out: string[] = [];
  for (const e of errors) {
    if ((e.rule && broken.has(e.field)) || isSkippedRulesNote(e)) continue;
    let detail = e.detail;
    if (e.rule && e.type === 'Invalid value') {
      const value = shown(e.rule.value);
      detail = detail.replace(/^"[a-z]+": /, value === undefined ? '(value omitted: too long): ' : `${value}: `);
    }
    if (e.rule?.offenders) detail = `${detail} (fails for ${e.rule.offenders.join(', ')})`;
    if (!e.rule && isQuantityPattern(detail)) {
      const value = /^("(?:[^"\\]|\\.)*")/.exec(detail)?.[1];
      const hint = value ? quantityHint(JSON.parse(value)) : undefined;
      if (hint) detail = `${detail}: ${hint}`;
    }
    const line = printable(formatFieldError({ ...e, detail }));
    if (!out.includes(line)) out.push(line);
  }
  return out;
}
