/**
 * api/generated/types.ts is written from the schema declarations (one source with the CRDs): it must be up to date,
 * and the types `Infer<>` derives from the same declarations must equal it, checked by `npm run typecheck` (the
 * `true` constants below do not compile when they differ).
 */
import { readFileSync } from 'node:fs';
import type { Infer } from '../../api/schema';
import type {
  VirtualMachineMigrationSpec,
  VirtualMachineMigrationStatus,
  VirtualMachineSpec,
  VirtualMachineStatus,
} from '../../api';
import type { virtualMachineSpec, virtualMachineStatus } from '../../api/virtualmachine';
import type { virtualMachineMigrationSpec, virtualMachineMigrationStatus } from '../../api/virtualmachinemigration';
import { GENERATED_TYPES_FILE, renderApiTypes } from '../../tools/api-types';

// Both sides flattened member by member (the generated types intersect named parts, `Infer` spells them out), then
// compared for identity, so that a missing optional field or a `?` too many fails, not only an incompatible type.
type Flat<T> = T extends (infer I)[] ? Flat<I>[] : T extends object ? { [K in keyof T]: Flat<T[K]> } : T;
type Same<A, B> = (<T>() => T extends Flat<A> ? 1 : 2) extends <T>() => T extends Flat<B> ? 1 : 2 ? true : false;

const oneSource: Record<string, true> = {
  VirtualMachineSpec: true satisfies Same<Infer<typeof virtualMachineSpec>, VirtualMachineSpec>,
  VirtualMachineStatus: true satisfies Same<Infer<typeof virtualMachineStatus>, VirtualMachineStatus>,
  VirtualMachineMigrationSpec: true satisfies Same<
    Infer<typeof virtualMachineMigrationSpec>,
    VirtualMachineMigrationSpec
  >,
  VirtualMachineMigrationStatus: true satisfies Same<
    Infer<typeof virtualMachineMigrationStatus>,
    VirtualMachineMigrationStatus
  >,
};

test('api/generated/types.ts is up to date with api/ (run `npm run types` if this fails)', () => {
  const { text, stats } = renderApiTypes();
  expect(readFileSync(GENERATED_TYPES_FILE, 'utf8')).toBe(text);
  console.log(
    `types: api/generated/types.ts: ${stats.types} types, ${stats.documentedFields} fields with TSDoc, ` +
      `${stats.unions} unions`,
  );
  expect(stats.unions).toBe(4); // volume source, network source, interface binding, probe handler
});

test("the generated types equal what Infer<> derives from the same declarations (checked by tsc's typecheck)", () => {
  expect(Object.values(oneSource).every(Boolean)).toBe(true);
});
