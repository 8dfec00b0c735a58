/** The relay's framing: payloads survive any split into reads, the end is explicit, and bad streams are refused. */
import { randomBytes } from 'node:crypto';
import {
  END_OF_STREAM,
  FrameError,
  FrameReader,
  MAX_FRAME_BYTES,
  frameHeader,
} from '../../../operator/daemon/migration-relay-frames';

const framed = (...payloads: Buffer[]): Buffer =>
  Buffer.concat([...payloads.flatMap((p) => [frameHeader(p.length), p]), END_OF_STREAM]);

test('payloads come back whole and in order however the stream is cut into reads', () => {
  const payloads = [randomBytes(1), randomBytes(70_000), randomBytes(3), randomBytes(65_536)];
  const stream = framed(...payloads);
  for (const step of [1, 3, 4, 5, 4096, stream.length]) {
    const reader = new FrameReader();
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i += step) out.push(...reader.push(stream.subarray(i, i + step)));
    expect(Buffer.concat(out).equals(Buffer.concat(payloads))).toBe(true);
    expect(reader.ended).toBe(true);
  }
});

test('a stream without its end frame is not ended (the relay calls that truncated)', () => {
  const reader = new FrameReader();
  const stream = framed(randomBytes(100));
  reader.push(stream.subarray(0, stream.length - END_OF_STREAM.length));
  expect(reader.ended).toBe(false);
});

test('bytes after the end frame and oversized frames are errors', () => {
  expect(() => new FrameReader().push(Buffer.concat([END_OF_STREAM, Buffer.from([1])]))).toThrow(
    'data after the end of the stream',
  );
  const ended = new FrameReader();
  ended.push(END_OF_STREAM);
  expect(() => ended.push(Buffer.from([0]))).toThrow(FrameError);
  expect(() => new FrameReader().push(frameHeader(MAX_FRAME_BYTES + 1))).toThrow(/exceeds/);
});
