/**
 * The cloud-init NoCloud disk: an ISO 9660 image labelled `cidata` holding meta-data (instance-id = VM UID,
 * local-hostname = VM name), user-data and, when given, network-config. The data comes inline, base64-encoded or
 * from a Secret the pod mounts (key `value`).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VmVolume } from '../../api';
import { CLOUD_INIT_ISO, RUN_DIR, cloudInitSecretFile } from '../pod-layout';
import { run } from './command';
import { LaunchError } from './failure';
import type { LaunchVm } from './vm-env';

type CloudInit = NonNullable<VmVolume['cloudInit']>;

const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

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
    if (!BASE64.test(b64)) throw new LaunchError(`${field}.${kind}Base64 is not valid base64`);
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

/** Builds the ISO at {@link CLOUD_INIT_ISO} for the VM's cloudInit volume (at most one, by API rule). */
export async function buildCloudInitIso(vm: LaunchVm, volumeIndex: number): Promise<string> {
  const volume = vm.spec.volumes![volumeIndex];
  const field = `spec.volumes[${volumeIndex}].cloudInit`;
  const source = volume.cloudInit!;
  const staging = join(RUN_DIR, 'cloud-init');
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  writeFileSync(join(staging, 'meta-data'), metaData(vm));
  // NoCloud reads user-data even when there is nothing to do; an empty file is valid.
  writeFileSync(join(staging, 'user-data'), cloudInitDocument(source, 'userData', field) ?? '');
  const network = cloudInitDocument(source, 'networkData', field);
  if (network !== undefined) writeFileSync(join(staging, 'network-config'), network);

  const partial = `${CLOUD_INIT_ISO}.partial`;
  await run(['genisoimage', '-quiet', '-output', partial, '-volid', 'cidata', '-joliet', '-rock', staging], {
    what: `${field}: build the NoCloud ISO`,
  });
  renameSync(partial, CLOUD_INIT_ISO);
  rmSync(staging, { recursive: true, force: true });
  return CLOUD_INIT_ISO;
}
