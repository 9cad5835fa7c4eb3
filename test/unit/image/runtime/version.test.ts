import { describe, expect, it } from 'vitest';

import {
  airflowMajorForRuntimeVersion,
  compareRuntimeVersions,
  isNewFormatVersion,
  isValidRuntimeVersion,
  maxRuntimeVersion,
  normalizeRuntimeVersion,
  parseRuntimeVersion,
  runtimeVersionMajor,
} from '../../../../src/image/runtime/version.js';

describe('normalizeRuntimeVersion', () => {
  it.each([
    ['3.1-8', '3.1.8'],
    ['3.0-7', '3.0.7'],
    ['3.1-1-rc1', '3.1.1-rc1'],
    ['3.1-1.rc1', '3.1.1-rc1'],
    ['v3.1-8', '3.1.8'],
    ['12.5.0', '12.5.0'],
    ['v12.5.0', '12.5.0'],
    ['3.1', '3.1'],
    ['nonsense', 'nonsense'],
  ])('%s -> %s', (input, expected) => {
    expect(normalizeRuntimeVersion(input)).toBe(expected);
  });
});

describe('validity (golang.org/x/mod/semver rules after normalisation)', () => {
  it.each([
    ['3.1-8', true],
    ['3.1-1-rc1', true],
    ['12.5.0', true],
    ['v12.5.0', true],
    ['12', true],
    ['12.5', true],
    ['12.5.0-slim', true],
    ['12.5.0+build.1', true],
    ['12.5.0-rc.1+build', true],
    ['', false],
    ['latest', false],
    ['12.5-rc1', false], // shorthand cannot carry a pre-release
    ['12.5+build', false],
    ['012.5.0', false],
    ['12.05.0', false],
    ['3.1-08', false], // normalises to 3.1.08
    ['12.5.0.1', false],
    ['12.5.0-', false],
    ['12.5.0-rc..1', false],
    ['12.5.0-01', false], // numeric pre-release identifiers have no leading zeros
    ['vv12.5.0', false],
    ['3.1-8-base', true], // a tag is not a version, but it normalises to semver with pre-release "base"
  ])('%s is valid: %s', (input, expected) => {
    expect(isValidRuntimeVersion(input)).toBe(expected);
  });
});

describe('compareRuntimeVersions', () => {
  // Rows: a, b, expected sign of compare(a, b).
  it.each([
    // same format, new
    ['3.1-8', '3.1-9', -1],
    ['3.1-9', '3.1-8', 1],
    ['3.1-8', '3.1-8', 0],
    ['3.1-10', '3.1-9', 1], // numeric, not lexical
    ['3.2-1', '3.1-9', 1],
    ['3.0-7', '3.1-1', -1],
    ['3.1-1-rc1', '3.1-1', -1], // pre-release below its release
    ['3.1-1-rc2', '3.1-1-rc1', 1],
    ['3.1-1-rc1', '3.1-0', 1],
    ['v3.1-8', '3.1-8', 0],
    // same format, old
    ['12.5.0', '13.1.0', -1],
    ['13.7.0', '13.10.0', -1],
    ['12.5', '12.5.0', 0], // shorthand
    ['12', '12.0.0', 0],
    ['12.5.0+build1', '12.5.0+build2', 0], // build metadata ignored
    ['12.5.0-rc.2', '12.5.0-rc.10', -1], // numeric identifiers compare numerically
    ['12.5.0-alpha', '12.5.0-1', 1], // alphanumeric ranks above numeric
    ['12.5.0-rc.1', '12.5.0-rc', 1], // longer pre-release wins when it extends the shorter
    ['99999999999999999999.0.0', '99999999999999999998.0.0', 1], // arbitrary precision
    // across formats: any new-format version beats any old-format one
    ['3.0-1', '13.7.0', 1],
    ['13.7.0', '3.0-1', -1],
    ['3.0-1', '99.0.0', 1],
    ['3.1', '3.0-1', -1], // a floating-looking X.Y is old format here
    ['4.2.6', '3.0-1', -1],
    // invalid versions
    ['latest', '3.1-8', -1],
    ['3.1-8', 'latest', 1],
    ['latest', 'nonsense', 0],
    ['', '4.1.0', -1],
  ])('compare(%s, %s) = %i', (a, b, expected) => {
    expect(compareRuntimeVersions(a, b)).toBe(expected);
    expect(compareRuntimeVersions(b, a)).toBe(-expected || 0);
  });

  it('orders a mixed list the way the reference describes', () => {
    const shuffled = ['3.1-1', '12.5.0', '3.0.0', '3.0-7', '2.1.1', 'garbage'];
    const sorted = [...shuffled].sort(compareRuntimeVersions);
    expect(sorted).toEqual(['garbage', '2.1.1', '3.0.0', '12.5.0', '3.0-7', '3.1-1']);
  });
});

describe('Airflow major and runtime major', () => {
  it.each([
    ['3.1-8', '3', '3'],
    ['3.0-1', '3', '3'],
    ['v3.1-8', '3', '3'],
    ['12.5.0', '2', '12'],
    ['4.2.6', '2', '4'],
    ['3.1', '2', '3'], // floating-looking tags are old format for these helpers
    ['3.0.0', '2', '3'],
    ['latest', '', ''],
    ['', '', ''],
  ])('%s -> airflow %s, runtime major %s', (version, airflow, runtime) => {
    expect(airflowMajorForRuntimeVersion(version)).toBe(airflow);
    expect(runtimeVersionMajor(version)).toBe(runtime);
  });
});

describe('parseRuntimeVersion', () => {
  it('splits a new-format version', () => {
    expect(parseRuntimeVersion('3.1-1-rc1')).toEqual({
      raw: '3.1-1-rc1',
      format: 'new',
      major: 3,
      minor: 1,
      patch: 1,
      prerelease: ['rc1'],
      airflowMajor: 3,
    });
  });

  it('splits an old-format version', () => {
    expect(parseRuntimeVersion('12.5.0')).toMatchObject({ format: 'old', major: 12, minor: 5, patch: 0, airflowMajor: 2 });
  });

  it('rejects invalid versions', () => {
    expect(parseRuntimeVersion('3.1-8x')).toBeUndefined();
  });

  it('detects the new format', () => {
    expect(isNewFormatVersion('3.1-8')).toBe(true);
    expect(isNewFormatVersion('12.5.0')).toBe(false);
    expect(isNewFormatVersion('3.1')).toBe(false);
  });
});

describe('maxRuntimeVersion', () => {
  it('takes the highest across formats and ignores nothing', () => {
    expect(maxRuntimeVersion(['13.1.0', '3.1-8', '3.2-1', '12.5.0'])).toBe('3.2-1');
    expect(maxRuntimeVersion(['13.1.0', '12.5.0'])).toBe('13.1.0');
    expect(maxRuntimeVersion([])).toBeUndefined();
  });
});
