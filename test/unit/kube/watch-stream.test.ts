import { JsonLineSplitter, LineTooLongError } from '../../../operator/kube/watch-stream';

describe('JsonLineSplitter', () => {
  test('joins lines across chunks, keeps multi-byte characters whole, skips blank lines', () => {
    const text = '{"a":"é€"}\n\n{"b":2}\n{"c":';
    const bytes = Buffer.from(text);
    const splitter = new JsonLineSplitter();
    const lines: string[] = [];
    // One byte at a time: every possible split point, including inside é and €.
    for (let i = 0; i < bytes.length; i++) lines.push(...splitter.push(bytes.subarray(i, i + 1)));
    expect(lines).toEqual(['{"a":"é€"}', '{"b":2}']);
    expect(splitter.push(Buffer.from('3}'))).toEqual([]);
    expect(splitter.end()).toBe('{"c":3}');
    expect(splitter.end()).toBeUndefined();
  });

  test('several lines in one chunk come out in order', () => {
    expect(new JsonLineSplitter().push(Buffer.from('1\n2\n3\n'))).toEqual(['1', '2', '3']);
  });

  test('a line longer than the limit without a newline is an error, not unbounded buffering', () => {
    const splitter = new JsonLineSplitter(8);
    expect(splitter.push(Buffer.from('12345'))).toEqual([]);
    expect(() => splitter.push(Buffer.from('6789'))).toThrow(LineTooLongError);
  });
});
