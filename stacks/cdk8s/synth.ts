/**
 * Synthesizes a cdk8s app into `outdir` atomically: the app synthesizes into a temporary folder beside `outdir`
 * and its files move into place only when every object is valid, so a failed synth leaves the previous output
 * untouched and never writes a partial one.
 */
import type { App } from 'cdk8s';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Synthesizes and returns the paths written. Throws (writing nothing) when validation fails. */
export function synthAtomically(build: (outdir: string) => App, outdir: string): string[] {
  mkdirSync(outdir, { recursive: true });
  const staging = mkdtempSync(join(outdir, '.synth-'));
  try {
    build(staging).synth();
    return readdirSync(staging).map((f) => {
      renameSync(join(staging, f), join(outdir, f));
      return join(outdir, f);
    });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
