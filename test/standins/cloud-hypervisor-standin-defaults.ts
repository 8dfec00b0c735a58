/**
 * The fields Cloud Hypervisor fills in when it deserialises a request body. CH's Rust structs give omitted fields
 * their serde defaults and serialise every non-optional field back, so `vm.info` reports 30–48 more fields than a
 * typical kubevisor VmConfig sends (reference/cloud-hypervisor.md §14): `memory.shared: false`, disk
 * `num_queues: 1`, net `offload_tso: true`, …
 *
 * The defaults are read from the copied v53.0 spec (a property's `default`, or the default of the enum schema it
 * refers to), with the places where CH's code differs from the spec's `default`s listed below. Omitted top-level
 * sections (`cpus`, `memory`, `rng`, `serial`, `console`) get CH's `Default` values first (reference §6).
 */
import { refName, type OpenApiSchema } from '../../operator/cloudhypervisor/spec';

/** Spec defaults CH does not apply. */
const NOT_APPLIED: Readonly<Record<string, readonly string[]>> = {
  // The spec's 192.168.249.1 / 255.255.255.0 are stale: CH leaves ip and mask unset (reference §6).
  NetConfig: ['ip', 'mask'],
  // Fields compiled only into tdx / sev_snp builds; the measured build (kvm, io_uring) has neither.
  PlatformConfig: ['tdx', 'sev_snp'],
};

/** Booleans CH serialises only when true: v53.0 echoed a vdpa device without its `iommu: false` (§14). */
const OMITTED_WHEN_FALSE: Readonly<Record<string, readonly string[]>> = {
  VdpaConfig: ['iommu'],
};

/** Defaults that live only in CH's code (reference §6: `max_phys_bits` 46). */
const CODE_DEFAULTS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  CpusConfig: { max_phys_bits: 46 },
};

/** CH's `Default` for each top-level VmConfig section that may be omitted (reference §6). */
const SECTION_DEFAULTS: Readonly<Record<string, unknown>> = {
  cpus: { boot_vcpus: 1, max_vcpus: 1 },
  memory: { size: 512 * 1024 * 1024 },
  rng: { src: '/dev/urandom' },
  serial: { mode: 'Null' },
  console: { mode: 'Tty' },
};

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A random locally administered unicast MAC, as CH's `MacAddr::local_random` gives a NIC that came without one. */
function randomLocalMac(): string {
  const bytes = Array.from({ length: 6 }, () => Math.floor(Math.random() * 256));
  bytes[0] = (bytes[0] & 0xfe) | 0x02;
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Fills request bodies in with CH's defaults; one instance per parsed spec. */
export class CloudHypervisorStandinDefaults {
  constructor(private readonly schemas: Readonly<Record<string, OpenApiSchema>>) {}

  /** A copy of `value` (a body valid against schema `schemaName`) with every default CH would fill in. */
  apply<T>(schemaName: string, value: T): T {
    const copy = structuredClone(value);
    if (schemaName === 'VmConfig' && isObject(copy)) {
      const config: Json = copy;
      for (const [key, section] of Object.entries(SECTION_DEFAULTS)) config[key] ??= structuredClone(section);
    }
    this.fill(schemaName, copy);
    return copy;
  }

  private fill(schemaName: string, value: unknown): void {
    this.fillSchema(this.schemas[schemaName], schemaName, value);
  }

  private fillSchema(schema: OpenApiSchema | undefined, name: string | undefined, value: unknown): void {
    if (!schema) return;
    if (schema.$ref) {
      this.fill(refName(schema.$ref), value);
      return;
    }
    if (Array.isArray(value)) {
      for (const item of value) this.fillSchema(schema.items, undefined, item);
      return;
    }
    if (!isObject(value) || !schema.properties) return;
    const skipped = (name && NOT_APPLIED[name]) || [];
    for (const [key, property] of Object.entries(schema.properties)) {
      if (key in value) {
        this.fillSchema(property, undefined, value[key]);
        continue;
      }
      const fallback = property.default ?? (property.$ref ? this.schemas[refName(property.$ref)]?.default : undefined);
      if (fallback !== undefined && !skipped.includes(key)) value[key] = structuredClone(fallback);
    }
    for (const [key, fallback] of Object.entries((name && CODE_DEFAULTS[name]) || {})) value[key] ??= fallback;
    for (const key of (name && OMITTED_WHEN_FALSE[name]) || []) if (value[key] === false) delete value[key];
    if (name === 'NetConfig') value.mac ??= randomLocalMac();
  }
}
