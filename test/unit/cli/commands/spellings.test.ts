// The spellings of Astronomer's CLI for the config, context, login and deployment commands and the global flags.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from '../../../helpers/cli.js';

let home: string;
let project: string;
const globalFile = () => path.join(home, '.astro', 'config.yaml');
const projectFile = () => path.join(project, '.astro', 'config.yaml');

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-spell-'));
  project = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-spell-project-'));
  await fs.mkdir(path.join(home, '.astro'));
  await fs.copyFile('fixtures/config/astronomer-config.yaml', globalFile());
  await fs.mkdir(path.join(project, '.astro'));
  await fs.writeFile(projectFile(), 'project:\n  name: demo\nshow_warnings: "false"\n');
});
afterEach(async () => {
  await fs.rm(home, { recursive: true, force: true });
  await fs.rm(project, { recursive: true, force: true });
});

const run = (argv: string[], options: { tty?: boolean; input?: string } = {}) => runCli(argv, { env: { ASTRO_HOME: home }, cwd: project, ...options });

describe('--verbosity', () => {
  it('debug (and trace) print what --verbose prints; warn and info do not', async () => {
    await fs.writeFile(globalFile(), 'contexts: [\n');
    const verbose = await run(['--verbose', 'context', 'list']);
    expect(verbose.code).toBe(1);
    const plain = await run(['context', 'list']);
    expect(verbose.stderr).not.toBe(plain.stderr);
    for (const level of ['debug', 'DEBUG', 'trace']) expect((await run(['--verbosity', level, 'context', 'list'])).stderr).toBe(verbose.stderr);
    expect((await run(['context', 'list', '--verbosity=debug'])).stderr).toBe(verbose.stderr);
    for (const level of ['warn', 'warning', 'info', 'error']) expect((await run(['--verbosity', level, 'context', 'list'])).stderr).toBe(plain.stderr);
  });

  it('refuses a level that is not one, with exit 2', async () => {
    const bad = await run(['--verbosity', 'loud', 'context', 'list']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"loud" is not a log level');
  });
});

describe('astro config', () => {
  it('get prints "key: value": the effective value, or the global one with -g', async () => {
    const effective = await run(['config', 'get', 'show_warnings']);
    expect(effective.code).toBe(0);
    expect(effective.stdout).toBe('show_warnings: false\n');
    expect((await run(['config', 'get', 'show_warnings', '-g'])).stdout).toBe('show_warnings: true\n');
    expect((await run(['config', 'get', '--global', 'local.registry'])).stdout).toBe('local.registry: localhost:5555\n');
    expect((await run(['config', 'get', 'postgres.tag'])).stdout).toBe('postgres.tag: 12.6\n');
    expect((await run(['config', 'get', 'context'])).stdout).toBe('context: localhost\n');
  });

  it("set takes every key of Astronomer's config, in the project or with -g, and keeps unknown keys in the file", async () => {
    await fs.appendFile(globalFile(), 'somebody_elses:\n  key: [1, 2]\n');
    for (const [key, value] of [
      ['postgres.user', 'airflow'],
      ['api-server.port', '8081'],
      ['dev.mode', 'standalone'],
      ['cloud.api.token', 'abc'],
      ['cosmos_boost.pre_deploy', 'true'],
    ]) {
      const set = await run(['config', 'set', '-g', key!, value!]);
      expect(set.code, set.stderr).toBe(0);
      expect((await run(['config', 'get', key!, '-g'])).stdout).toBe(`${key}: ${value}\n`);
    }
    const doc = parse(await fs.readFile(globalFile(), 'utf8'));
    expect(doc.postgres.user).toBe('airflow');
    expect(doc['api-server'].port).toBe('8081');
    expect(doc.somebody_elses).toEqual({ key: [1, 2] });
    expect(doc.local.astrohub).toBe('http://localhost:8871/v1');

    expect((await run(['config', 'set', 'webserver.port', '8082'])).code).toBe(0);
    expect(parse(await fs.readFile(projectFile(), 'utf8'))).toEqual({ project: { name: 'demo' }, show_warnings: 'false', webserver: { port: '8082' } });
  });

  it("set refuses what Astronomer's CLI validates, and unknown keys, with exit 2", async () => {
    const mode = await run(['config', 'set', '-g', 'dev.mode', 'podman']);
    expect(mode.code).toBe(2);
    expect(mode.stderr).toContain('dev.mode must be "docker" or "standalone"');
    const registry = await run(['config', 'set', '-g', 'remote.client_registry', 'quay.io']);
    expect(registry.code).toBe(2);
    expect(registry.stderr).toContain('registry/repository');
    expect((await run(['config', 'set', '-g', 'no_such_key', '1'])).code).toBe(2);
    expect((await run(['config', 'set', '-g', 'contexts', 'x'])).code).toBe(2);
  });

  it('set context switches to a known context only', async () => {
    expect((await run(['config', 'set', 'context', 'astronomer.io'])).code).toBe(0);
    expect(parse(await fs.readFile(globalFile(), 'utf8')).context).toBe('astronomer.io');
    const unknown = await run(['config', 'set', 'context', 'nowhere.example.com', '-g']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('There is no context for "nowhere.example.com"');
  });
});

describe('astro context', () => {
  it('has the aliases c, ls, sw and de', async () => {
    const listed = await run(['c', 'ls']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('* localhost');
    expect((await run(['context', 'sw', 'astronomer.io'])).code).toBe(0);
    expect(parse(await fs.readFile(globalFile(), 'utf8')).context).toBe('astronomer.io');
    expect((await run(['context', 'de', 'localhost'])).code).toBe(0);
    expect(parse(await fs.readFile(globalFile(), 'utf8')).contexts.localhost).toBeUndefined();
  });

  it('delete asks before deleting the current context: exit 4 naming --force without a terminal, -f skips it', async () => {
    const refused = await run(['context', 'delete', 'localhost']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('--force');
    expect(parse(await fs.readFile(globalFile(), 'utf8')).contexts.localhost).toBeDefined();

    const kept = await run(['context', 'delete', 'localhost'], { tty: true, input: 'n\n' });
    expect(kept.code).toBe(0);
    expect(kept.stdout).toContain('Kept context localhost');
    expect(parse(await fs.readFile(globalFile(), 'utf8')).contexts.localhost).toBeDefined();

    const forced = await run(['context', 'delete', '-f', 'localhost']);
    expect(forced.code).toBe(0);
    const doc = parse(await fs.readFile(globalFile(), 'utf8'));
    expect(doc.contexts.localhost).toBeUndefined();
    expect(doc.context).toBe('');
  });

  it("delete takes Go's --force=true", async () => {
    expect((await run(['context', 'delete', 'localhost', '--force=true'])).code).toBe(0);
    expect(parse(await fs.readFile(globalFile(), 'utf8')).contexts.localhost).toBeUndefined();
    const bad = await run(['context', 'delete', 'astronomer.io', '--force=yes']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--force takes true or false, not "yes"');
  });
});

describe('astro deployment', () => {
  it('answers to de, deployments and ls (the command runs: it needs a login, not other words)', async () => {
    await fs.writeFile(globalFile(), 'context: ""\n');
    for (const argv of [
      ['de', 'ls'],
      ['deployments', 'list'],
      ['deployment', 'ls', '--all=true'],
    ]) {
      const result = await run(argv);
      expect(result.code, `${argv.join(' ')}: ${result.stderr}`).toBe(1);
      expect(result.stderr).toContain('no context set');
    }
  });
});

describe("global flags in Go's form", () => {
  it('--json=true and --verbose=false', async () => {
    const json = await run(['--json=true', 'config', 'get', 'postgres.port', '--verbose=false']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ key: 'postgres.port', value: '5432', scope: 'effective' });
  });
});
