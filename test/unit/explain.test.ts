/**
 * Synth-time wording of validation errors (api/explain.ts) on top of the API server's verdict: one error per
 * problem, the offending value named (and the items a rule over a list fails for), the fix for a misspelled quantity
 * suggested.
 */
import { explainFieldErrors, quantityHint, validateObject } from '../../api';
import { printable } from '../../api/explain';
import { renderVirtualMachine } from '../../constructs';
import type { VirtualMachineProps } from '../../constructs';

const base: VirtualMachineProps = {
  disks: [{ name: 'root' }],
  volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1' } }],
};
const explain = (props: VirtualMachineProps) => explainFieldErrors(validateObject(renderVirtualMachine('x', props)));

test('memory.size "2GB": exactly one error, suggesting 2G or 2Gi (the API server gives three)', () => {
  const props = { ...base, memory: { size: '2GB' } };
  expect(validateObject(renderVirtualMachine('x', props))).toHaveLength(3);
  expect(explain(props)).toEqual([
    'spec.instance.memory.size: Invalid value: "2GB": spec.instance.memory.size in body should match \'^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$\': write 2G (powers of 1000) or 2Gi (powers of 1024)',
  ]);
});

test('a rule on an object names the offending value at its field, not the kind of object', () => {
  const props = {
    ...base,
    interfaces: [{ name: 'pod', mac: 'zz:zz', masquerade: {} }],
    networks: [{ name: 'pod', pod: {} }],
  };
  expect(explain(props as VirtualMachineProps)).toEqual([
    'spec.instance.interfaces[0].mac: Invalid value: "zz:zz": mac must look like 52:54:00:12:34:56',
  ]);
});

test('a value too long to help is left out rather than printed whole', () => {
  const lines = explain({ disks: [{ name: 'ghost' }] });
  expect(lines).toContain(
    'spec.instance: Invalid value: (value omitted: too long): nothing to boot: attach a containerDisk, persistentVolumeClaim or dataVolume disk, or set instance.kernel',
  );
});

test('a rule over every item of a list names the items it fails for, with their names', () => {
  const lines = explain({
    ...base,
    disks: [{ name: 'root' }, { name: 'data' }, { name: 'logs' }],
    interfaces: [{ name: 'pod', masquerade: {} }],
    networks: [
      { name: 'pod', pod: {} },
      { name: 'spare', pod: {} },
    ],
  });
  expect(lines).toEqual(
    expect.arrayContaining([
      'spec.instance.disks: Invalid value: (value omitted: too long): every disk needs a volume of the same name: ' +
        'add the volume or remove the disk (fails for spec.instance.disks[1] ("data"), spec.instance.disks[2] ("logs"))',
      expect.stringMatching(/^spec\.networks: .* \(fails for spec\.networks\[1\] \("spare"\)\)$/),
    ]),
  );
});

test('a rule over a map names the keys it fails for', () => {
  const lines = explain({ ...base, resources: { requests: { memory: '2Gi', cpu: '1' }, limits: { memory: '1Gi' } } });
  expect(lines).toEqual([expect.stringMatching(/\(fails for spec\.resources\.requests\[memory\]\)$/)]);
});

test('a value or key cannot forge a line, reorder text or flood the terminal', () => {
  const key = 'evil\n[vms/web] ok\u001b[2J\u202e' + 'x'.repeat(5000);
  const lines = explain({ ...base, resources: { requests: { [key]: '2', cpu: '1' }, limits: { [key]: '1' } } });
  expect(lines).toHaveLength(1);
  const [line] = lines as [string];
  expect(['\n', '\u001b', '\u202e'].filter((c) => line.includes(c))).toEqual([]);
  expect(line).toContain('evil\\u000a[vms/web] ok\\u001b[2J\\u202e');
  expect(line.length).toBeLessThan(450);
  // Any line, whatever produced it, is cut.
  expect(printable('y'.repeat(1000))).toBe(`${'y'.repeat(400)}… (600 more)`);
});

test("a schema error stands alone: the API server's note that rules were skipped is not repeated as a problem", () => {
  expect(explain({ ...base, runPolicy: 'always' as never })).toEqual([
    'spec.runPolicy: Unsupported value: "always": supported values: "Always", "RerunOnFailure", "Once", "Manual", "Halted"',
  ]);
});

test.each([
  ['2GB', 'write 2G (powers of 1000) or 2Gi (powers of 1024)'],
  ['512 MiB', 'write 512M (powers of 1000) or 512Mi (powers of 1024)'],
  ['1.5gb', 'write 1.5G (powers of 1000) or 1.5Gi (powers of 1024)'],
  ['4gi', 'write 4G (powers of 1000) or 4Gi (powers of 1024)'],
  ['2Gi', undefined],
  ['two gigs', undefined],
  [2, undefined],
])('quantity hint for %j', (value, hint) => {
  expect(quantityHint(value)).toBe(hint);
});
