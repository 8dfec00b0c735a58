import { KubeApiError } from '../../../operator/kube/errors';
import { createLogger, parseLogLevel } from '../../../operator/kube/log';

function capture(level?: 'debug' | 'info' | 'warn' | 'error') {
  const lines: string[] = [];
  const logger = createLogger({ level, write: (l) => lines.push(l), now: () => new Date('2025-01-01T00:00:00.000Z') });
  return { logger, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>), lines };
}

describe('structured logs', () => {
  test('one JSON object per line: level, ts, msg first, then bindings and fields', () => {
    const { logger, lines } = capture('info');
    logger.child({ controller: 'virtualmachine' }).child({ key: 'vms/a' }).info('reconciled', { phase: 'Running' });
    expect(lines).toEqual([
      '{"level":"info","ts":"2025-01-01T00:00:00.000Z","msg":"reconciled","controller":"virtualmachine","key":"vms/a","phase":"Running"}',
    ]);
  });

  test('drops records below the level', () => {
    const { logger, records } = capture('warn');
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    expect(records().map((r) => r.msg)).toEqual(['w', 'e']);
    expect(logger.enabled('info')).toBe(false);
  });

  test('LOG_LEVEL parsing is case-insensitive and falls back on unknown values', () => {
    expect(parseLogLevel('DEBUG')).toBe('debug');
    expect(parseLogLevel(' warning ')).toBe('warn');
    expect(parseLogLevel('verbose')).toBe('info');
    expect(parseLogLevel(undefined, 'error')).toBe('error');
    const saved = process.env.LOG_LEVEL;
    process.env.LOG_LEVEL = 'error';
    try {
      expect(createLogger({ write: () => undefined }).level).toBe('error');
    } finally {
      if (saved === undefined) delete process.env.LOG_LEVEL;
      else process.env.LOG_LEVEL = saved;
    }
  });

  test('errors are serialised with what matters; fields cannot clobber level/ts/msg; cycles do not lose the line', () => {
    const { logger, records } = capture('debug');
    const api = new KubeApiError(409, 'Conflict', 'modified', [{ field: 'x' }], 'PUT', '/p', {});
    logger.error('failed', { error: api, msg: 'sneaky', level: 'x' });
    logger.warn('plain', { error: new Error('boom'), n: 10n });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    logger.info('cyclic', { cyclic });
    const [first, second, third] = records();
    expect(first).toMatchObject({
      level: 'error',
      msg: 'failed',
      _msg: 'sneaky',
      _level: 'x',
      error: { name: 'KubeApiError', code: 409, reason: 'Conflict', causes: [{ field: 'x' }] },
    });
    expect(second).toMatchObject({ error: { name: 'Error', message: 'boom' }, n: '10' });
    expect((second.error as { stack?: string }).stack).toContain('boom');
    expect(third).toMatchObject({ level: 'info', msg: 'cyclic' });
    expect(third.logError).toBeDefined();
  });
});
