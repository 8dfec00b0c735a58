/** `npm run crds`: writes deploy/crds/*.yaml and removes CRD files that no kind produces any more. */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRD_DIR, renderCrdFiles } from './crds';

const files = renderCrdFiles();
mkdirSync(CRD_DIR, { recursive: true });
for (const f of readdirSync(CRD_DIR)) if (f.endsWith('.yaml') && !files.has(f)) rmSync(join(CRD_DIR, f));
for (const [f, text] of files) {
  writeFileSync(join(CRD_DIR, f), text);
  console.log(`crds: wrote ${join(CRD_DIR, f)} (${text.length} bytes)`);
}
