/**
 * The cloud-init parts of the launcher that need no tools: the base64 check (linear, so a maximal document is checked
 * at once) and the staging of plaintext, which must be gone on every way out of the ISO build.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCloudInitIso, cloudInitDocument, isBase64Text } from '../../../operator/launcher/cloud-init';
import { LaunchError } from '../../../operator/launcher/failure';
import type { LaunchVm } from '../../../operator/launcher/vm-env';

describe('base64 text', () => {
  test.each([
    ['', true],
    ['QUJD', true],
    ['QUI=', true],
    ['QQ==', true],
    ['QQ==\n', true],
    ['QU\nJD\r\n', true],
    ['QQ===', false],
    ['QQ=A', false],
    ['not base64!', false],
    ['QQ== =', false],
  ])('%j → %s', (text, ok) => expect(isBase64Text(text)).toBe(ok));

  test('maximal documents, valid and invalid, are judged correctly', () => {
    // The API allows 87,384 characters of base64; the old pattern took ≈0.45 s at 20,000 of whitespace-rich text.
    const valid = Buffer.alloc(65_536, 7).toString('base64').replace(/.{76}/g, '$&\n');
    expect(valid.length).toBeGreaterThan(20_000);
    expect(isBase64Text(valid)).toBe(true);
    const spaces = ' '.repeat(87_000);
    expect(isBase64Text(`${spaces}!`)).toBe(false);
    expect(isBase64Text(`${'A \n'.repeat(29_000)}==  `)).toBe(true);
    expect(isBase64Text(`${'A \n'.repeat(29_000)}=\n=`)).toBe(false);
    expect(cloudInitDocument({ userDataBase64: valid }, 'userData', 'f')).toBe(
      Buffer.alloc(65_536, 7).toString('utf8'),
    );
  });
});

describe('the NoCloud ISO build', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kv-cloud-init-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const vm = (cloudInit: Record<string, string>): LaunchVm => ({
    metadata: { name: 'vm1', uid: 'u-1' },
    spec: { instance: {}, volumes: [{ name: 'ci', cloudInit }] },
  });
  const paths = () => ({ staging: join(dir, 'staging'), iso: join(dir, 'cloud-init.iso') });

  test('success leaves the ISO and no plaintext', async () => {
    const seen: string[] = [];
    const iso = await buildCloudInitIso(vm({ userData: 'secret: 1\n' }), 0, paths(), async (argv) => {
      const output = argv[argv.indexOf('-output') + 1];
      seen.push(...readdirSync(argv[argv.length - 1]));
      writeFileSync(output, 'iso');
      return { stdout: '', stderr: '' };
    });
    expect(iso).toBe(paths().iso);
    expect(seen.sort()).toEqual(['meta-data', 'user-data']);
    expect(readdirSync(dir)).toEqual(['cloud-init.iso']);
  });

  test('a failed genisoimage leaves neither plaintext nor a partial ISO', async () => {
    const failing = async (argv: readonly string[]) => {
      writeFileSync(argv[argv.indexOf('-output') + 1], 'half');
      throw new LaunchError('genisoimage failed');
    };
    await expect(
      buildCloudInitIso(vm({ userData: 'secret: 1\n', networkData: 'n' }), 0, paths(), failing),
    ).rejects.toThrow('genisoimage failed');
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a document that cannot be read leaves no plaintext either', async () => {
    const never = async () => {
      throw new Error('not reached');
    };
    await expect(
      buildCloudInitIso(vm({ userData: 'secret: 1\n', networkDataBase64: 'not base64!' }), 0, paths(), never),
    ).rejects.toThrow('spec.volumes[0].cloudInit.networkDataBase64 is not valid base64');
    expect(existsSync(paths().staging)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });
});
