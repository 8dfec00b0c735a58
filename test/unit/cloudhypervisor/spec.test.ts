// The copied CH spec, the code-vs-spec overlay, the OpenAPI → JSON Schema conversion and the generated types.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CLOUD_HYPERVISOR_API_ROOT, CloudHypervisorClient } from '../../../operator/cloudhypervisor/client';
import { toJsonSchema } from '../../../operator/cloudhypervisor/json-schema';
import {
  CLOUD_HYPERVISOR_SPEC_PATH,
  cloudHypervisorApiRoot,
  cloudHypervisorRoutes,
  cloudHypervisorSchemas,
  readCloudHypervisorSpec,
} from '../../../operator/cloudhypervisor/spec';
import { CH_TYPES_PATH, renderCloudHypervisorTypes } from '../../../tools/ch-types';

describe('the copied Cloud Hypervisor v53.0 spec', () => {
  it('is upstream`s file unchanged below one provenance line', () => {
    const [header, ...rest] = readFileSync(CLOUD_HYPERVISOR_SPEC_PATH, 'utf8').split('\n');
    expect(header).toMatch(/^# Cloud Hypervisor REST API spec v53\.0 \(Apache-2\.0\).*tag v53\.0/);
    // sha256 published for the v53.0 blob (reference/cloud-hypervisor.md, companion data file).
    expect(createHash('sha256').update(rest.join('\n')).digest('hex')).toBe(
      '004e2d5ab70d9d95a1de3289a70ca116c7592da62765e009232c85506cd0e6c4',
    );
  });

  it('puts every route under the root the client uses', () => {
    expect(cloudHypervisorApiRoot()).toBe(CLOUD_HYPERVISOR_API_ROOT);
  });

  it('lists GET for ping/info/counters and PUT for the rest, with their body schemas', () => {
    const routes = cloudHypervisorRoutes();
    expect(
      routes
        .filter((r) => r.method === 'GET')
        .map((r) => r.endpoint)
        .sort(),
    ).toEqual(['vm.counters', 'vm.info', 'vmm.ping']);
    expect(routes.find((r) => r.endpoint === 'vm.create')).toEqual({
      endpoint: 'vm.create',
      method: 'PUT',
      requestSchema: 'VmConfig',
    });
    expect(routes.find((r) => r.endpoint === 'vm.boot')).toEqual({ endpoint: 'vm.boot', method: 'PUT' });
  });

  it('applies what CH`s code reads differently (reference §5), and fails loudly if the spec drifts', () => {
    const raw = readCloudHypervisorSpec().components.schemas;
    const schemas = cloudHypervisorSchemas();
    expect(Object.keys(raw.VmConfig.properties ?? {})).toContain('generic-vhost-user');
    expect(Object.keys(schemas.VmConfig.properties ?? {})).toContain('generic_vhost_user');
    expect(Object.keys(schemas.VmConfig.properties ?? {})).not.toContain('generic-vhost-user');
    expect(raw.VmRemoveDevice.required).toBeUndefined();
    expect(schemas.VmRemoveDevice.required).toEqual(['id']);
    expect(schemas.VmSnapshotConfig.required).toEqual(['destination_url']);

    const drifted = readCloudHypervisorSpec();
    delete drifted.components.schemas.VmConfig.properties?.['generic-vhost-user'];
    expect(() => cloudHypervisorSchemas(drifted)).toThrow('spec drift: VmConfig.generic-vhost-user');
  });
});

describe('OpenAPI 3.0 → JSON Schema conversion', () => {
  it('turns nullable into a null type and integer formats into the Rust type`s range', () => {
    expect(toJsonSchema({ type: 'string', nullable: true, enum: ['a'] })).toEqual({
      type: ['string', 'null'],
      enum: ['a', null],
    });
    expect(toJsonSchema({ type: 'integer', format: 'uint8' })).toEqual({ type: 'integer', minimum: 0, maximum: 255 });
    expect(toJsonSchema({ type: 'integer', format: 'int16' })).toEqual({
      type: 'integer',
      minimum: -32768,
      maximum: 32767,
    });
    // The stricter bound wins.
    expect(toJsonSchema({ type: 'integer', format: 'int64', minimum: 1, maximum: 128 })).toMatchObject({
      minimum: 1,
      maximum: 128,
    });
  });

  it('re-points $refs and drops their siblings, as OpenAPI 3.0 ignores them', () => {
    expect(toJsonSchema({ $ref: '#/components/schemas/VmConfig', description: 'ignored' })).toEqual({
      $ref: '#/definitions/VmConfig',
    });
  });

  it('refuses what it does not understand instead of validating half of it', () => {
    expect(() => toJsonSchema({ type: 'string', format: 'uuid' })).toThrow("format 'uuid' is not handled");
    expect(() => toJsonSchema({ oneOf: [] } as never)).toThrow("OpenAPI keyword 'oneOf' is not handled");
  });

  it('can close objects to list keys CH would ignore', () => {
    expect(toJsonSchema({ type: 'object', properties: { a: { type: 'string' } } }, { closed: true })).toEqual({
      type: 'object',
      properties: { a: { type: 'string' } },
      additionalProperties: false,
    });
  });
});

describe('operator/cloudhypervisor/types.ts', () => {
  it('is what tools/ch-types.ts generates from the spec (run `npx tsx tools/ch-types.ts` if this fails)', () => {
    expect(readFileSync(CH_TYPES_PATH, 'utf8')).toBe(renderCloudHypervisorTypes());
  });
});

describe('CloudHypervisorClient routes', () => {
  it('calls only spec routes, each with the spec`s method', async () => {
    const client = new CloudHypervisorClient({ socketPath: '/unused' });
    const seen: [string, string, boolean][] = [];
    jest.spyOn(client, 'request').mockImplementation(async (method, endpoint, body) => {
      seen.push([method, endpoint, body !== undefined]);
      return { statusCode: 200, body: '{}' };
    });
    const payload = {} as never;
    await Promise.all([
      ...Object.values(client.vmm).map((call) => call()),
      ...Object.values(client.vm).map((call) => (call as (b: unknown) => Promise<unknown>)(payload)),
    ]);
    const routes = new Map(cloudHypervisorRoutes().map((r) => [r.endpoint, r]));
    expect(seen).toHaveLength(Object.keys(client.vmm).length + Object.keys(client.vm).length);
    for (const [method, endpoint, hasBody] of seen) {
      const route = routes.get(endpoint);
      expect({ endpoint, method, hasBody }).toEqual({
        endpoint,
        method: route?.method,
        hasBody: route?.requestSchema !== undefined,
      });
    }
  });
});
