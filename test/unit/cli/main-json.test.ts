// With --json anywhere on the line, every outcome is one JSON document on stdout: commander's own parse errors,
// a missing command and help included.
import { describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';

const env = { HOME: '/nonexistent-home', ASTRO_HOME: '/nonexistent-astro-home' };

function oneDocument(stdout: string): Record<string, unknown> {
  // JSON.parse refuses trailing text, so a second document or a stray line fails here.
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('--json and usage errors', () => {
  it.each([
    [['--json', 'deploy', '--bogus'], "unknown option '--bogus'"],
    [['deploy', '--bogus', '--json'], "unknown option '--bogus'"],
    [['deploy', '--json', 'dep-1', '--bogus'], "unknown option '--bogus'"],
    [['--json', 'nonsense-command'], "unknown command 'nonsense-command'"],
    [['--json', 'deploy', '--wait-time'], "option '--wait-time <duration>' argument missing"],
    [['context', 'delete', '--json'], "missing required argument 'domain'"],
    [['version', 'extra', '--json'], "too many arguments for 'version'"],
    [['--json'], 'No command given.'],
    [['dev', '--json'], 'No command given.'],
  ])('%j: one usage-error document on stdout, exit 2', async (argv, message) => {
    const run = await runCli(argv, { env });
    expect(run.code).toBe(2);
    const doc = oneDocument(run.stdout);
    expect(doc).toEqual({
      error: { kind: 'usage', message: expect.stringContaining(message), nextStep: expect.stringContaining('astro --help'), exitCode: 2 },
    });
    // People still read the error on stderr.
    expect(run.stderr).not.toBe('');
  });

  it('wraps help in a document when --json asks for one, and leaves plain help alone', async () => {
    const json = await runCli(['--json', 'deploy', '--help'], { env });
    expect(json.code).toBe(0);
    expect(oneDocument(json.stdout)).toEqual({ help: expect.stringContaining('Usage: astro deploy') });
    const text = await runCli(['deploy', '--help'], { env });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Usage: astro deploy/);
  });

  it('treats --json after -- as an argument, not the flag', async () => {
    const run = await runCli(['version', '--', '--json'], { env });
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('too many arguments');
  });

  it('keeps text mode for usage errors without --json: nothing on stdout', async () => {
    const run = await runCli(['deploy', '--bogus'], { env });
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^Error: unknown option '--bogus'/);
  });
});
