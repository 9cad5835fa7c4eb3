import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { normalizeBooleanFlags } from '../../../src/cli/bool-flags.js';
import { UsageError } from '../../../src/errors.js';

function program(): Command {
  const root = new Command('astro').option('--json').option('--verbosity <level>');
  const deploy = root.command('deploy').argument('[id]').option('-f, --force').option('--wait').option('--dags-path <path>').option('-d, --dags');
  deploy.option('--dags-base-dir').option('--no-dags-base-dir');
  deploy.option('--pytest [file]');
  const context = root.command('context').alias('c');
  context.command('delete').alias('de').argument('<domain>').option('-f, --force');
  root.command('login').argument('[domain]').option('-t, --token-login <token>').option('-l, --login-link');
  return root;
}

const norm = (...argv: string[]) => normalizeBooleanFlags(program(), argv);

describe('Go-style boolean flags', () => {
  it.each([
    [
      ['deploy', '--wait=true'],
      ['deploy', '--wait'],
    ],
    [['deploy', '--wait=false'], ['deploy']],
    [
      ['deploy', '--wait=1', '--force=T', '-d=TRUE'],
      ['deploy', '--wait', '--force', '--dags'],
    ],
    [['deploy', '--wait=0', '--force=F', '-d=False'], ['deploy']],
    [
      ['deploy', '--dags-base-dir=false'],
      ['deploy', '--no-dags-base-dir'],
    ],
    [
      ['deploy', '--no-dags-base-dir=true'],
      ['deploy', '--no-dags-base-dir'],
    ],
    [
      ['deploy', '--no-dags-base-dir=false'],
      ['deploy', '--dags-base-dir'],
    ],
    [
      ['--json=true', 'deploy', 'dep-1'],
      ['--json', 'deploy', 'dep-1'],
    ],
    [
      ['deploy', 'dep-1', '--json=false'],
      ['deploy', 'dep-1'],
    ],
    [
      ['c', 'de', 'x', '-f=true'],
      ['c', 'de', 'x', '--force'],
    ],
    [
      ['context', 'delete', 'x', '--force=false'],
      ['context', 'delete', 'x'],
    ],
  ])('%j → %j', (argv, expected) => {
    expect(norm(...argv)).toEqual(expected);
  });

  it('leaves values of options that take one alone, whatever they look like', () => {
    expect(norm('login', '-t', '--wait=true')).toEqual(['login', '-t', '--wait=true']);
    expect(norm('login', '--token-login=--force=false')).toEqual(['login', '--token-login=--force=false']);
    expect(norm('deploy', '--dags-path', 'x=true', '--wait=true')).toEqual(['deploy', '--dags-path', 'x=true', '--wait']);
    expect(norm('deploy', '--pytest', 'tests/x.py', '--wait=true')).toEqual(['deploy', '--pytest', 'tests/x.py', '--wait']);
    expect(norm('deploy', '--pytest', '--wait=true')).toEqual(['deploy', '--pytest', '--wait']);
  });

  it('leaves everything after -- and options of other commands alone', () => {
    expect(norm('deploy', '--', '--wait=true')).toEqual(['deploy', '--', '--wait=true']);
    // --login-link is login's, not deploy's: commander reports it as unknown, unchanged.
    expect(norm('deploy', '--login-link=true')).toEqual(['deploy', '--login-link=true']);
    expect(norm('login', '--login-link=true')).toEqual(['login', '--login-link']);
  });

  it('refuses a value that is neither true nor false, as a usage error naming the flag', () => {
    expect(() => norm('deploy', '--wait=maybe')).toThrow(UsageError);
    expect(() => norm('deploy', '--wait=maybe')).toThrow('--wait takes true or false, not "maybe"');
    expect(() => norm('deploy', '--wait=')).toThrow(UsageError);
  });
});
