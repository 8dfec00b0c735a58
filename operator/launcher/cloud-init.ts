/**
 * The cloud-init NoCloud disk: an ISO 9660 image labelled `cidata` holding meta-data (instance-id = VM UID,
 * local-hostname = VM name), user-data and, when given, network-config. The data comes inline, base64-encoded or
 * from a Secret the pod mounts (key `value`). The plaintext is staged, and the ISO written, on a memory-backed
 * emptyDir (CLOUD_INIT_DIR in operator/pod-layout.ts), and the staged files are removed whether the ISO could be built or not.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VmVolume } from '../../api';
import { CLOUD_INIT_ISO, CLOUD_INIT_STAGING, cloudInitSecretFile } from '../pod-layout';
import { run } from './command';
import { LaunchError } from './failure';
import type { LaunchVm } from './vm-env';

type CloudInit = NonNullable<VmVolume['cloudInit']>;

const isBase64Char = (c: number) =>
  (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47; // A-Z a-z 0-9 + /
const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);

/**
 * Base64 text as the launcher accepts it: alphabet characters and whitespace, then at most two '=' and trailing
 * whitespace. One pass over the text; the regular expression it replaces backtracked quadratically over whitespace.
 */
export function isBase64Text(text: string): boolean {
  let i = 0;
  while (i < text.length && (isBase64Char(text.charCodeAt(i)) || isSpace(text.charCodeAt(i)))) i++;
  for (let pad = 0; pad < 2 && i < text.length && text.charCodeAt(i) === 61; pad++) i++; // '='
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i === text.length;
}

/** One document (user-data or network-config) from whichever source the spec set; undefined when none is set. */
export function cloudInitDocument(
  source: CloudInit,
  kind: 'userData' | 'networkData',
  field: string,
  readSecret: (kind: 'userdata' | 'networkdata') => string | undefined = readSecretFile,
): string | undefined {
  const inline = source[kind];
  if (inline !== undefined) return inline;
  const b64 = source[`${kind}Base64`];
  if (b64 !== undefined) {
    if (!isBase64Text(b64)) throw new LaunchError(`${field}.${kind}Base64 is not valid base64`);
    return Buffer.from(b64, 'base64').toString('utf8');
  }
  const secret = source[`${kind}SecretName`];
  if (secret !== undefined) {
    const secretKind = kind === 'userData' ? 'userdata' : 'networkdata';
    const text = readSecret(secretKind);
    if (text === undefined) {
      throw new LaunchError(
        `${field}.${kind}SecretName: Secret ${secret} has no key "value" (expected at ${cloudInitSecretFile(secretKind)})`,
      );
    }
    return text;
  }
  return undefined;
}

function readSecretFile(kind: 'userdata' | 'networkdata'): string | undefined {
  const path = cloudInitSecretFile(kind);
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/** meta-data as YAML; both values are plain scalars (a UID and a DNS label), quoted anyway as JSON strings. */
export function metaData(vm: LaunchVm): string {
  const instanceId = vm.metadata.uid ?? `${vm.metadata.namespace ?? 'default'}/${vm.metadata.name}`;
  return `instance-id: ${JSON.stringify(instanceId)}\nlocal-hostname: ${JSON.stringify(vm.metadata.name)}\n`;
}

/** Where the ISO is built; tests point it at a directory of their own. */
export interface CloudInitPaths {
  /** Directory for the plaintext files, removed afterwards. */
  readonly staging: string;
  /** The ISO. */
  readonly iso: string;
}

const POD_PATHS: CloudInitPaths = { staging: CLOUD_INIT_STAGING, iso: CLOUD_INIT_ISO };

/** Builds the ISO at {@link CLOUD_INIT_ISO} for the VM's cloudInit volume (at most one, by API rule). */
export async function buildCloudInitIso(
  vm: LaunchVm,
  volumeIndex: number,
  paths: CloudInitPaths = POD_PATHS,
  runTool: typeof run = run,
): Promise<string> {
  const volume = vm.spec.volumes![volumeIndex];
  const field = `spec.volumes[${volumeIndex}].cloudInit`;
  const source = volume.cloudInit!;
  const { staging, iso } = paths;
  const partial = `${iso}.partial`;
  rmSync(staging, { recursive: true, force: true });
  // Owner only: the plaintext is for genisoimage, which runs as the launcher.
  mkdirSync(staging, { recursive: true, mode: 0o700 });
  try {
    writeFileSync(join(staging, 'meta-data'), metaData(vm), { mode: 0o600 });
    // NoCloud reads user-data even when there is nothing to do; an empty file is valid.
    writeFileSync(join(staging, 'user-data'), cloudInitDocument(source, 'userData', field) ?? '', { mode: 0o600 });
    const network = cloudInitDocument(source, 'networkData', field);
    if (network !== undefined) writeFileSync(join(staging, 'network-config'), network, { mode: 0o600 });
    await runTool(['genisoimage', '-quiet', '-output', partial, '-volid', 'cidata', '-joliet', '-rock', staging], {
      what: `${field}: build the NoCloud ISO`,
    });
    renameSync(partial, iso);
    return iso;
  } finally {
    // Every way out — a bad document, a failed genisoimage, success — leaves no plaintext behind but the ISO.
    rmSync(staging, { recursive: true, force: true });
    rmSync(partial, { force: true });
  }
}
