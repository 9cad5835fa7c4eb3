import { describe, expect, it } from 'vitest';
import { byString } from '../../../src/util/compare.js';

describe('byString', () => {
  it('orders ISO 8601 times (and any strings) by code unit, as sort() does', () => {
    const times = ['2026-12-01T10:00:00.500Z', '2026-11-30T23:59:59Z', '', '2026-12-01T10:00:00.050Z', '2026-12-01T09:59:59.999Z'];
    expect([...times].sort(byString)).toEqual([...times].sort());
    expect([...times].sort(byString)).toEqual(['', '2026-11-30T23:59:59Z', '2026-12-01T09:59:59.999Z', '2026-12-01T10:00:00.050Z', '2026-12-01T10:00:00.500Z']);
    expect(byString('a', 'a')).toBe(0);
    expect(byString('B', 'a')).toBeLessThan(0);
  });
});
