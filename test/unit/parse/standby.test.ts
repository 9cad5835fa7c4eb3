import { describe, expect, it } from 'vitest';
import { standbyPaths } from '../../../src/parse/standby.js';
import { wantsStandby } from '../../../src/parse/standby-setting.js';

describe('when a parse starts the next run ahead', () => {
  it('at a terminal outside CI, unless told not to; elsewhere only when told to', () => {
    expect(wantsStandby({ setting: undefined, ci: false, interactive: true })).toBe(true);
    expect(wantsStandby({ setting: undefined, ci: true, interactive: true })).toBe(false);
    expect(wantsStandby({ setting: undefined, ci: false, interactive: false })).toBe(false);
    for (const off of ['0', 'false', 'off', ' No ']) expect(wantsStandby({ setting: off, ci: false, interactive: true })).toBe(false);
    for (const on of ['1', 'true', 'ON', 'yes']) expect(wantsStandby({ setting: on, ci: true, interactive: false })).toBe(true);
    // Anything else is no decision: the default holds.
    expect(wantsStandby({ setting: 'maybe', ci: false, interactive: false })).toBe(false);
  });

  it('needs a socket path the kernel takes', () => {
    expect(standbyPaths('/tmp/astro-parse-abc/run')).toEqual({
      socket: '/tmp/astro-parse-abc/run/standby.sock',
      readyFile: '/tmp/astro-parse-abc/run/standby-ready.json',
    });
    expect(standbyPaths(`/tmp/${'x'.repeat(100)}/run`)).toBeUndefined();
  });
});
