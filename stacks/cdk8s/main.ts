/** `npm run synth` / `cdk8s synth`: synthesizes the example app into dist/ (or $CDK8S_OUTDIR). */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildApp } from './app';
import { synthAtomically } from './synth';

try {
  for (const f of synthAtomically(buildApp, resolve(process.env.CDK8S_OUTDIR ?? 'dist'))) {
    console.log(`synth: wrote ${f} (${statSync(f).size} bytes)`);
  }
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
}
