import { describe, expect, it } from 'vitest';
import { isInside, relativeInside } from '../../../src/util/paths.js';

describe('isInside / relativeInside', () => {
  it('is the folder itself and what lies below it only', () => {
    expect(isInside('/a', '/a/b')).toBe(true);
    expect(isInside('/a', '/a')).toBe(true);
    expect(isInside('/a', '/ab')).toBe(false);
    expect(isInside('/a/b', '/a')).toBe(false);
    expect(isInside('/a', '/a/b/../../c')).toBe(false);
    expect(isInside('/', '/anything')).toBe(true);
  });

  it('counts a name that starts with two dots as inside: only a `..` segment climbs out', () => {
    expect(isInside('/a', '/a/..data')).toBe(true);
    expect(isInside('/a', '/a/..data/x.py')).toBe(true);
    expect(isInside('/a', '/a/b/..')).toBe(true);
    expect(isInside('/a', '/a/..')).toBe(false);
    expect(isInside('/a/b', '/a/..b')).toBe(false);
  });

  it('gives the path relative to the folder', () => {
    expect(relativeInside('/a', '/a/b/c.py')).toBe('b/c.py');
    expect(relativeInside('/a', '/a')).toBe('');
    expect(relativeInside('/a', '/a/..data/x')).toBe('..data/x');
    expect(relativeInside('/a', '/b')).toBeUndefined();
  });
});
