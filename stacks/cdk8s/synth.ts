/**
 * Synthesizes a cdk8s app into `outdir` atomically: the app synthesizes into a temporary folder beside `outdir`
 * and its files move into place only when every object is valid, so a failed synth leaves the previous output
 * untouched and never writes a partial one; a successful one also removes manifests it no longer writes.
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
    const written = readdirSync(staging);
    // Manifests an earlier synth wrote that this one did not (a renamed chart) would still be applied with
    // `kubectl apply -f dist/`: they go, once the new set is complete.
    for (const f of readdirSync(outdir)) {
      if (f.endsWith('.k8s.yaml') && !written.includes(f)) rmSync(join(outdir, f), { force: true });
    }
    return written.map((f) => {
      renameSync(join(staging, f), join(outdir, f));
      return join(outdir, f);
    });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
