/**
 * `npm run synth` / `cdk8s synth`: synthesizes the example app into dist/ (or $CDK8S_OUTDIR). It synthesizes into a
 * temporary folder first and moves the files only when every object is valid, so a failed synth leaves the
 * previous output untouched and never writes a partial one.
 */
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildApp } from './app';

function main(): void {
  const outdir = resolve(process.env.CDK8S_OUTDIR ?? 'dist');
  mkdirSync(outdir, { recursive: true });
  const staging = mkdtempSync(join(outdir, '.synth-'));
  try {
    buildApp(staging).synth();
    for (const f of readdirSync(staging)) {
      renameSync(join(staging, f), join(outdir, f));
      console.log(`synth: wrote ${join(outdir, f)} (${statSync(join(outdir, f)).size} bytes)`);
    }
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

main();
