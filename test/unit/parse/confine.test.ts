import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/** Calls a function of python/astro_parse/confine.py with JSON arguments, returning its JSON result. */
function confine(fn: string, ...args: unknown[]): unknown {
  const code = [
    'import json, sys',
    `sys.path.insert(0, ${JSON.stringify(path.resolve('python'))})`,
    'from astro_parse import confine',
    `print(json.dumps(getattr(confine, ${JSON.stringify(fn)})(*json.loads(sys.argv[1]))))`,
  ].join('\n');
  return JSON.parse(execFileSync('python3', ['-I', '-S', '-B', '-c', code, JSON.stringify(args)], { encoding: 'utf8' }));
}

describe('confine.py', () => {
  it('reads mount points as /proc/self/mountinfo escapes them (space, tab, newline, backslash), so every one is made read-only', () => {
    expect(confine('unescape_mountinfo', '/tmp/a\\040b\\011c\\012d\\134e')).toBe('/tmp/a b\tc\nd\\e');
    expect(confine('unescape_mountinfo', '/plain/path')).toBe('/plain/path');
    // A backslash not followed by three digits is itself.
    expect(confine('unescape_mountinfo', '/odd\\04')).toBe('/odd\\04');
  });

  it('a step it did not foresee still ends as a set-up failure: exit 97 and one line, never a traceback', () => {
    const run = spawnSync('python3', ['-I', '-S', '-B', path.resolve('python/astro_parse/confine.py'), 'too', 'few'], { encoding: 'utf8' });
    expect(run.status).toBe(97);
    expect(run.stderr).toMatch(/^astro sandbox: ValueError: [^\n]+\n$/);
  });

  it('splits its arguments into the hidden folders, the shown ones and the command', () => {
    expect(confine('split_lists', ['/h1', '/h2', '--', '/r1', '--', 'python', '-c', '--'])).toEqual([['/h1', '/h2'], ['/r1'], ['python', '-c', '--']]);
    expect(confine('split_lists', ['--', '--', 'python'])).toEqual([[], [], ['python']]);
  });
});
