import { describe, expect, it } from 'vitest';
import { platformBusyMs } from '../../../bench/lib.js';

describe('platformBusyMs', () => {
  it('adds requests one after another', () => {
    expect(
      platformBusyMs([
        { startedAtMs: 100, finishedAtMs: 110 },
        { startedAtMs: 120, finishedAtMs: 125.5 },
      ]),
    ).toBeCloseTo(15.5);
  });

  it('counts overlapping and nested requests once, in any order', () => {
    expect(
      platformBusyMs([
        { startedAtMs: 105, finishedAtMs: 130 },
        { startedAtMs: 100, finishedAtMs: 110 },
        { startedAtMs: 112, finishedAtMs: 120 },
        { startedAtMs: 140, finishedAtMs: 150 },
      ]),
    ).toBe(40);
  });

  it('leaves out requests without both times (not answered yet, or logged by an older platform)', () => {
    expect(platformBusyMs([{ startedAtMs: 100 }, { finishedAtMs: 200 }, { startedAtMs: 10, finishedAtMs: 12 }])).toBe(2);
    expect(platformBusyMs([])).toBe(0);
  });
});
