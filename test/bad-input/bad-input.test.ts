/**
 * Runs the bad-input table through the synth-time validator: every case must be rejected with its field path and
 * error text, the base objects must be accepted, and no two cases may claim the same rule.
 */
import { formatFieldError, validateObject } from '../../api';
import { BAD_INPUT_CASES, VALID_UPDATES, baseVm } from './cases';

const verdicts: boolean[] = [];

afterAll(() => {
  const rejected = verdicts.filter(Boolean).length;
  // The closing line the issue asks for; printed once every case has run.
  process.stdout.write(`bad-input: ${rejected} rejected, ${verdicts.length - rejected} accepted\n`);
});

test('the base VM and the valid updates are accepted', () => {
  expect(validateObject(baseVm()).map(formatFieldError)).toEqual([]);
  for (const u of VALID_UPDATES) {
    expect({ name: u.name, errors: validateObject(u.before).map(formatFieldError) }).toEqual({
      name: u.name,
      errors: [],
    });
    expect({ name: u.name, errors: validateObject(u.object, u.before).map(formatFieldError) }).toEqual({
      name: u.name,
      errors: [],
    });
  }
});

test('the table has at least 60 cases, each a distinct rule', () => {
  expect(BAD_INPUT_CASES.length).toBeGreaterThanOrEqual(60);
  expect(new Set(BAD_INPUT_CASES.map((c) => c.name)).size).toBe(BAD_INPUT_CASES.length);
});

describe.each(BAD_INPUT_CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  test(`is rejected at ${c.field || '<root>'}`, () => {
    if (c.before) expect(validateObject(c.before).map(formatFieldError)).toEqual([]);
    const errors = validateObject(c.object, c.before);
    verdicts.push(errors.length > 0);
    const matching = errors.filter((e) => e.field === c.field && formatFieldError(e).includes(c.message));
    expect({ errors: errors.map(formatFieldError), matched: matching.length > 0 }).toEqual(
      expect.objectContaining({ matched: true }),
    );
  });
});
