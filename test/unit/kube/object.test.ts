import { sameJson } from '../../../operator/kube/object';

describe('sameJson', () => {
  test('key order does not matter, values do', () => {
    expect(sameJson({ a: 1, b: { c: [1, { d: 2, e: 3 }] } }, { b: { c: [1, { e: 3, d: 2 }] }, a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 2 })).toBe(false);
    expect(sameJson({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(sameJson({ a: [1] }, { a: [1, 1] })).toBe(false);
    expect(sameJson({ a: {} }, { a: [] })).toBe(false);
    expect(sameJson({ a: null }, { a: undefined })).toBe(false);
  });

  test('undefined members count as absent, as in JSON', () => {
    expect(sameJson({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: 0 })).toBe(false);
    expect(sameJson('x', 'x')).toBe(true);
    expect(sameJson(1, '1')).toBe(false);
  });
});
