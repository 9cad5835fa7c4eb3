import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEnv } from '../../../src/env.js';
import { runCli } from '../../helpers/cli.js';

describe('colour from the environment', () => {
  it.each([
    [{}, { noColor: false, forceColor: false }],
    [{ NO_COLOR: '1' }, { noColor: true, forceColor: false }],
    [{ NO_COLOR: '' }, { noColor: false, forceColor: false }],
    [{ CLICOLOR: '0' }, { noColor: true, forceColor: false }],
    [{ CLICOLOR: '1' }, { noColor: false, forceColor: false }],
    [{ CLICOLOR_FORCE: '1' }, { noColor: false, forceColor: true }],
    [{ CLICOLOR_FORCE: '0' }, { noColor: true, forceColor: false }],
    // As in Astronomer's CLI, a forced colour wins over CLICOLOR=0.
    [
      { CLICOLOR: '0', CLICOLOR_FORCE: '1' },
      { noColor: false, forceColor: true },
    ],
  ])('%o gives %o', (env, expected) => {
    expect(readEnv(env)).toMatchObject(expected);
  });

  it('CLICOLOR=0 takes the colour out of what astro prints on a terminal', async () => {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-colour-'));
    try {
      const argv = ['context', 'switch', 'nowhere.example.com'];
      const coloured = await runCli(argv, { tty: true, env: { ASTRO_HOME: home, NO_COLOR: '' } });
      expect(coloured.code).toBe(1);
      expect(coloured.stderr).toContain('\u001b[');
      const plain = await runCli(argv, { tty: true, env: { ASTRO_HOME: home, NO_COLOR: '', CLICOLOR: '0' } });
      expect(plain.code).toBe(1);
      expect(plain.stderr).toContain('There is no context for "nowhere.example.com"');
      expect(plain.stderr).not.toContain('\u001b[');
    } finally {
      await fs.rm(home, { recursive: true, force: true });
    }
  });
});

describe('BUILD_SECRET_INPUT', () => {
  it('is unset: no secrets', () => {
    expect(readEnv({}).buildSecretInput).toEqual([]);
  });

  it("holds one secret per line, trimmed, blank lines dropped (as Astronomer's CLI splits it)", () => {
    const input = '  id=pip,src=/run/pip.conf \n\n\tid=token,env=GH_TOKEN\r\n   \n';
    expect(readEnv({ BUILD_SECRET_INPUT: input }).buildSecretInput).toEqual(['id=pip,src=/run/pip.conf', 'id=token,env=GH_TOKEN']);
  });

  it('a single secret without a newline is one entry', () => {
    expect(readEnv({ BUILD_SECRET_INPUT: 'id=a,src=a.txt' }).buildSecretInput).toEqual(['id=a,src=a.txt']);
  });
});

describe('DOCKER_BUILDKIT', () => {
  it.each([
    [undefined, undefined],
    ['', undefined],
    ['1', 'buildkit'],
    [' true ', 'buildkit'],
    ['0', 'classic'],
    ['false', 'classic'],
    ['OFF', 'classic'],
    ['maybe', undefined],
  ])('%j gives the builder %j', (value, builder) => {
    expect(readEnv(value === undefined ? {} : { DOCKER_BUILDKIT: value }).dockerBuilder).toBe(builder);
  });
});

describe('ASTRO_PUSH_RELAY', () => {
  it.each([
    [undefined, true],
    ['', true],
    ['1', true],
    ['0', false],
    [' No ', false],
    ['off', false],
    ['false', false],
  ])('%j leaves the relay on: %j', (value, on) => {
    expect(readEnv(value === undefined ? {} : { ASTRO_PUSH_RELAY: value }).pushRelay).toBe(on);
  });
});
