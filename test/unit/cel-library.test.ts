import { compile } from '../../api/cel/library';
import { compareQuantities, formatBytes, parseQuantity } from '../../api/cel/quantity';

const evalCel = (expr: string, self?: unknown) => compile(expr)({ self });

describe('quantities', () => {
  test.each([
    ['1Gi', 1073741824n, 1n],
    ['1.5Gi', 1610612736n, 1n],
    ['500m', 500n, 1000n],
    ['2k', 2000n, 1n],
    ['1e3', 1000n, 1n],
    ['-3', -3n, 1n],
  ])('%s parses exactly', (text, num, den) => {
    const q = parseQuantity(text);
    expect(q.num * den).toBe(num * q.den);
  });

  test('invalid text is rejected like the API server does', () => {
    expect(() => parseQuantity('1 GB')).toThrow(/must match the regular expression/);
    expect(() => parseQuantity('Gi')).toThrow();
  });

  test('compare across units', () => {
    expect(compareQuantities(parseQuantity('1024Mi'), parseQuantity('1Gi'))).toBe(0);
    expect(compareQuantities(parseQuantity('1G'), parseQuantity('1Gi'))).toBe(-1);
    expect(compareQuantities(parseQuantity('1100m'), parseQuantity('1'))).toBe(1);
  });

  test('formatBytes picks the largest exact binary unit', () => {
    expect(formatBytes(1073741824n)).toBe('1Gi');
    expect(formatBytes(1610612736n)).toBe('1536Mi');
    expect(formatBytes(1000n)).toBe('1000');
  });
});

describe('Kubernetes CEL functions', () => {
  test.each([
    ["quantity('1Gi').isGreaterThan(quantity('1000Mi'))", true],
    ["quantity('1Gi').isLessThan(quantity('1000Mi'))", false],
    ["quantity('1Gi').compareTo(quantity('1024Mi')) == 0", true],
    ["quantity('1.5').isInteger()", false],
    ["quantity('2Mi').asInteger() == 2097152", true],
    ["quantity('-1').sign() == -1", true],
    ["isQuantity('1Gi') && !isQuantity('1 Gi')", true],
    ["isCIDR('10.0.2.0/30') && !isCIDR('10.0.2.0') && !isCIDR('10.0.2.0/33')", true],
    ["cidr('10.0.2.0/30').prefixLength() == 30", true],
    ["cidr('fd00::/64').ip().family() == 6", true],
    ["isIP('10.0.0.1') && !isIP('10.0.0.256')", true],
  ])('%s → %s', (expr, expected) => {
    expect(evalCel(expr)).toEqual({ value: expected });
  });

  test('runtime errors are reported, not thrown', () => {
    expect(evalCel("quantity('1.5').asInteger() == 1")).toEqual({
      error: expect.stringMatching(/cannot convert value to integer/),
    });
    expect(evalCel("quantity('nope')")).toEqual({ error: expect.stringMatching(/regular expression/) });
    expect(evalCel('self.missing == 1', new Map())).toHaveProperty('error');
  });
});
