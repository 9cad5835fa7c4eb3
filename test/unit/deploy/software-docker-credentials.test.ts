// The user's Docker credentials for custom registries (src/image/docker-credentials.ts), with real helper programs.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDockerCredentials, registryHostname, runCredentialHelper } from '../../../src/image/docker-credentials.js';
import { UserError } from '../../../src/errors.js';

let dir: string;
let binDir: string;
let helperLog: string;

const basic = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');

async function configDir(name: string, config: unknown): Promise<string> {
  const d = path.join(dir, name);
  await fs.mkdir(d, { recursive: true });
  await fs.writeFile(path.join(d, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return d;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-docker-creds-'));
  binDir = path.join(dir, 'bin');
  helperLog = path.join(dir, 'helper.log');
  await fs.mkdir(binDir);
  // A credential helper that knows one server, logs what it was asked, and answers like the real ones.
  await fs.writeFile(
    path.join(binDir, 'docker-credential-vault'),
    `#!/bin/sh
read server
echo "$1 $server" >> "${helperLog}"
case "$server" in
  registry.example.com) echo '{"ServerURL":"registry.example.com","Username":"robot","Secret":"from-helper"}' ;;
  oauth.example.com) echo '{"ServerURL":"oauth.example.com","Username":"<token>","Secret":"identity-token"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`,
    { mode: 0o755 },
  );
  await fs.writeFile(path.join(binDir, 'docker-credential-broken'), '#!/bin/sh\necho "vault sealed" >&2\nexit 3\n', { mode: 0o755 });
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const env = () => ({ PATH: `${binDir}:${process.env.PATH}` });

describe('registryHostname', () => {
  it('reduces config keys and image names to the host Docker compares', () => {
    expect(registryHostname('https://Registry.Example.com/v1/')).toBe('registry.example.com');
    expect(registryHostname('127.0.0.1:5000/byo/airflow')).toBe('127.0.0.1:5000');
    expect(registryHostname('http://localhost:5000')).toBe('localhost:5000');
  });
});

describe('readDockerCredentials', () => {
  it('reads base64 auth entries, matching keys written with a scheme or a path', async () => {
    const configDirPath = await configDir('auths', {
      auths: {
        'https://registry.example.com/v1/': { auth: basic('alice', 'pa:ss') },
        'other.example.com': { username: 'bob', password: 'secret' },
      },
    });
    expect(await readDockerCredentials({ configDir: configDirPath, host: 'registry.example.com/team/airflow' })).toEqual({
      username: 'alice',
      password: 'pa:ss',
      source: path.join(configDirPath, 'config.json'),
    });
    expect(await readDockerCredentials({ configDir: configDirPath, host: 'other.example.com' })).toMatchObject({ username: 'bob', password: 'secret' });
    expect(await readDockerCredentials({ configDir: configDirPath, host: 'unknown.example.com' })).toBeUndefined();
  });

  it('asks the per-registry helper first, then the default store, and falls back to auths when a helper knows nothing', async () => {
    const configDirPath = await configDir('helpers', {
      credsStore: 'vault',
      credHelpers: { 'oauth.example.com': 'vault' },
      auths: { 'fallback.example.com': { auth: basic('carol', 'from-file') } },
    });
    const runHelper = runCredentialHelper(env());
    expect(await readDockerCredentials({ configDir: configDirPath, host: 'registry.example.com', runHelper })).toEqual({
      username: 'robot',
      password: 'from-helper',
      source: 'docker-credential-vault',
    });
    expect(await readDockerCredentials({ configDir: configDirPath, host: 'oauth.example.com', runHelper })).toEqual({
      username: '',
      password: '',
      identityToken: 'identity-token',
      source: 'docker-credential-vault',
    });
    expect(await readDockerCredentials({ configDir: configDirPath, host: 'fallback.example.com', runHelper })).toMatchObject({
      username: 'carol',
      password: 'from-file',
    });
    const log = await fs.readFile(helperLog, 'utf8');
    expect(log).toContain('get registry.example.com');
    expect(log).toContain('get oauth.example.com');
  });

  it('returns nothing without a config file, and explains a broken file or helper', async () => {
    expect(await readDockerCredentials({ configDir: path.join(dir, 'missing'), host: 'registry.example.com' })).toBeUndefined();
    const bad = await configDir('bad-json', '{"auths": ');
    await expect(readDockerCredentials({ configDir: bad, host: 'x' })).rejects.toThrow(/is not valid JSON/);
    const broken = await configDir('broken-helper', { credsStore: 'broken' });
    await expect(readDockerCredentials({ configDir: broken, host: 'x', runHelper: runCredentialHelper(env()) })).rejects.toThrow(
      'docker-credential-broken get failed: vault sealed',
    );
    const absent = await configDir('absent-helper', { credsStore: 'not-installed' });
    const error = await readDockerCredentials({ configDir: absent, host: 'x', runHelper: runCredentialHelper(env()) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain('docker-credential-not-installed, but it is not installed');
  });
});
