/** Events repeating one already queued for the same VM (same type, reason and message) within a window are dropped. */
import { EventRepeats } from '../../../operator/controller/kube-cluster';

const vm = (uid = 'u1') => ({ kind: 'VirtualMachine', metadata: { namespace: 'ns', name: 'web', uid } });

test('a repeat within the window is dropped; another reason, message, object or a later time is not', () => {
  let now = 0;
  const repeats = new EventRepeats(60_000, 4096, () => now);
  expect(repeats.repeat(vm(), 'Warning', 'PodFailed', 'oom')).toBe(false);
  expect(repeats.repeat(vm(), 'Warning', 'PodFailed', 'oom')).toBe(true);
  expect(repeats.repeat(vm(), 'Warning', 'PodFailed', 'exit 1')).toBe(false);
  expect(repeats.repeat(vm(), 'Warning', 'NodeLost', 'oom')).toBe(false);
  expect(repeats.repeat(vm('u2'), 'Warning', 'PodFailed', 'oom')).toBe(false);
  now = 59_999;
  expect(repeats.repeat(vm(), 'Warning', 'PodFailed', 'oom')).toBe(true);
  now = 60_000;
  expect(repeats.repeat(vm(), 'Warning', 'PodFailed', 'oom')).toBe(false);
});

test('memory is bounded: the least recently queued Event is forgotten first', () => {
  const repeats = new EventRepeats(60_000, 2, () => 0);
  repeats.repeat(vm(), 'Normal', 'a', 'm');
  repeats.repeat(vm(), 'Normal', 'b', 'm');
  repeats.repeat(vm(), 'Normal', 'c', 'm');
  expect(repeats.repeat(vm(), 'Normal', 'c', 'm')).toBe(true);
  expect(repeats.repeat(vm(), 'Normal', 'a', 'm')).toBe(false);
});
