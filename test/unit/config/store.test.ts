import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigFileError, readConfigFile, updateConfigFile } from '../../../src/config/file.js';
import { AstroConfig, configPaths } from '../../../src/config/store.js';

const FIXTURE = path.resolve('fixtures/config/astronomer-config.yaml');
let home: string;
let project: string;
let globalFile: string;

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-home-'));
  project = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-project-'));
  globalFile = path.join(home, '.astro', 'config.yaml');
  await fs.mkdir(path.dirname(globalFile), { recursive: true });
});
afterEach(async () => {
  await fs.rm(home, { recursive: true, force: true });
  await fs.rm(project, { recursive: true, force: true });
});

const load = () => AstroConfig.load(configPaths(home, project));

describe('an Astronomer-format config file', () => {
  beforeEach(async () => fs.copyFile(FIXTURE, globalFile));

  it("reads contexts and settings as Astronomer's CLI wrote them", async () => {
    const cfg = await load();
    expect(cfg.currentDomain()).toBe('localhost');
    expect(cfg.currentContext()?.organization).toBe('org-local');
    expect(cfg.context('astronomer.io')?.user_email).toBe('dana@example.com');
    expect(cfg.context('astronomer.io')?.key).toBe('astronomer_io');
    expect(cfg.get('local.registry')).toBe('localhost:5555');
    expect(cfg.getBool('show_warnings')).toBe(true);
    expect(cfg.getBool('skip_parse')).toBe(false);
    expect(cfg.get('houston.dial_timeout')).toBe('10');
    expect(cfg.currentDomain('astronomer.io')).toBe('astronomer.io');
  });

  it('keeps every other key and value when a context is written back', async () => {
    const before = parse(await fs.readFile(FIXTURE, 'utf8'));
    const cfg = await load();
    await cfg.saveContext('localhost', { workspace: 'ws-other', token: 'Bearer new' });
    const after = parse(await fs.readFile(globalFile, 'utf8'));
    expect(after.contexts.localhost.workspace).toBe('ws-other');
    expect(after.contexts.localhost.token).toBe('Bearer new');
    expect(after.contexts.astronomer_io).toEqual(before.contexts.astronomer_io);
    expect(after.local).toEqual(before.local);
    expect(after.container).toEqual(before.container);
    expect(after.context).toBe('localhost');
    const reread = await load();
    expect(reread.context('astronomer.io')?.expiresin).toBe('2026-11-22T07:14:05.123456789Z');
  });

  it('writes with mode 0600 even when the file was world-readable', async () => {
    await fs.chmod(globalFile, 0o644);
    await (await load()).setSetting('show_warnings', 'false', 'global');
    expect((await fs.stat(globalFile)).mode & 0o777).toBe(0o600);
    expect((await load()).getBool('show_warnings')).toBe(false);
  });

  it('lets the project file override settings, and reads project.deployment only from there', async () => {
    await fs.writeFile(globalFile, (await fs.readFile(globalFile, 'utf8')).replace('deployment: ""', 'deployment: from-global'));
    await fs.mkdir(path.join(project, '.astro'));
    await fs.writeFile(path.join(project, '.astro', 'config.yaml'), 'show_warnings: false\nproject:\n  name: demo\n');
    const cfg = await load();
    expect(cfg.getBool('show_warnings')).toBe(false);
    expect(cfg.get('project.name')).toBe('demo');
    expect(cfg.get('project.deployment')).toBe('');
    await cfg.setSetting('project.deployment', 'dep-1', 'project');
    expect((await load()).get('project.deployment')).toBe('dep-1');
    expect(parse(await fs.readFile(globalFile, 'utf8')).project.deployment).toBe('from-global');
  });

  it('switches and deletes contexts, and refuses unknown ones', async () => {
    const cfg = await load();
    await cfg.switchContext('astronomer.io');
    expect((await load()).currentDomain()).toBe('astronomer.io');
    await expect(cfg.switchContext('nowhere.example.com')).rejects.toThrow(/no context for "nowhere.example.com"/);
    await cfg.deleteContext('astronomer.io');
    const after = await load();
    expect(after.context('astronomer.io')).toBeUndefined();
    expect(after.currentDomain()).toBe('');
  });
});

describe('a config file astro cannot understand', () => {
  it.each([
    ['broken YAML', 'contexts:\n  localhost: [\n', /not valid YAML \(line/],
    ['a list at the top', '- a\n- b\n', /top level must be a mapping/],
    ['contexts as a list', 'contexts:\n  - 1\n  - 2\n', /unexpected value at contexts/],
    ['a context token as a mapping', 'contexts:\n  localhost:\n    token: {a: 1}\n', /unexpected value at contexts\.localhost\.token/],
  ])('is refused with the file named (%s) and is never overwritten', async (_name, text, problem) => {
    await fs.writeFile(globalFile, text);
    const error = await load().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigFileError);
    expect((error as ConfigFileError).message).toContain(globalFile);
    expect((error as ConfigFileError).message).toMatch(problem);
    await expect(updateConfigFile(globalFile, (d) => ({ ...d, context: 'x' }))).rejects.toBeInstanceOf(ConfigFileError);
    expect(await fs.readFile(globalFile, 'utf8')).toBe(text);
  });

  it('is refused when it is a directory', async () => {
    await fs.rm(globalFile, { force: true });
    await fs.mkdir(globalFile);
    await expect(readConfigFile(globalFile)).rejects.toThrow(/is a directory/);
  });

  it('treats keys case-insensitively, as viper does', async () => {
    await fs.writeFile(globalFile, 'Context: localhost\nContexts:\n  localhost:\n    Domain: localhost\n    Token: Bearer abc\n');
    const cfg = await load();
    expect(cfg.currentContext()?.token).toBe('Bearer abc');
  });
});

describe('concurrent writers', () => {
  it("never lose each other's changes (two processes, 15 writes each)", async () => {
    const script = path.resolve('test/helpers/config-writer.ts');
    const tsx = path.resolve('node_modules/.bin/tsx');
    const run = (prefix: string) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(tsx, [script, globalFile, prefix, '15'], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (c) => (err += c));
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${prefix} failed: ${err}`))));
      });
    await Promise.all([run('a'), run('b')]);
    const cfg = await load();
    const domains = cfg
      .contexts()
      .map((c) => c.domain)
      .sort();
    expect(domains).toHaveLength(30);
    expect(domains.filter((d) => d.startsWith('a'))).toHaveLength(15);
    expect((await fs.stat(globalFile)).mode & 0o777).toBe(0o600);
    const leftovers = (await fs.readdir(path.dirname(globalFile))).filter((f) => f !== 'config.yaml').sort();
    expect(leftovers).toEqual(['config.yaml.lock']);
  });
});
