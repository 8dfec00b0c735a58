/**
 * `npm run crds`: writes deploy/crds/*.yaml (removing CRD files no kind produces any more), deploy/kubevisor.yaml (the
 * whole install for `kubectl apply --server-side -f`) and api/generated/types.ts (the TypeScript types with the CRD's
 * descriptions as TSDoc).
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { GENERATED_TYPES_FILE, renderApiTypes } from './api-types';
import { CRD_DIR, INSTALL_FILE, renderCrdFiles, renderInstallFile } from './crds';

const files = renderCrdFiles();
mkdirSync(CRD_DIR, { recursive: true });
for (const f of readdirSync(CRD_DIR)) if (f.endsWith('.yaml') && !files.has(f)) rmSync(join(CRD_DIR, f));
for (const [f, text] of [...files]
  .map(([f, t]) => [join(CRD_DIR, f), t] as const)
  .concat([[INSTALL_FILE, renderInstallFile()]])) {
  writeFileSync(f, text);
  console.log(`crds: wrote ${f} (${text.length} bytes)`);
}
const types = renderApiTypes();
writeFileSync(GENERATED_TYPES_FILE, types.text);
console.log(
  `crds: wrote ${relative(process.cwd(), GENERATED_TYPES_FILE)} (${types.stats.types} types, ${types.stats.documentedFields} fields with TSDoc, ` +
    `${types.stats.unions} unions)`,
);
