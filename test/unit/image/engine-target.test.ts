import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import {
  assertEngineSupports,
  contextDirName,
  describeEngineError,
  describeEngineTarget,
  engineKindFromVersion,
  type EngineFs,
  type EngineTarget,
  type EngineTargetInput,
  isEncryptedPrivateKey,
  resolveEngineTarget,
} from '../../../src/image/engine-target.js';

/** An in-memory file tree; paths ending in `.sock` listed in `sockets` stat as sockets. */
function memoryFs(files: Record<string, string | Buffer>, sockets: string[] = []): EngineFs & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    async readFile(file) {
      reads.push(file);
      const content = files[file];
      if (content === undefined) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
      return Buffer.from(content);
    },
    async exists(file) {
      return file in files || sockets.includes(file);
    },
    async stat(file) {
      if (sockets.includes(file)) return { isSocket: () => true, isFile: () => false };
      if (file in files) return { isSocket: () => false, isFile: () => true };
      return undefined;
    },
  };
}

function resolve(env: EngineTargetInput['env'], files: Record<string, string | Buffer> = {}, extra: Partial<EngineTargetInput> = {}) {
  return resolveEngineTarget({ env: { HOME: '/home/u', ...env }, fs: memoryFs(files), ...extra });
}

const CERTS = { '/certs/ca.pem': 'CA', '/certs/cert.pem': 'CERT', '/certs/key.pem': 'KEY' };

function contextFiles(name: string, endpoint: Record<string, unknown>, tls: Record<string, string> = {}, configDir = '/home/u/.docker') {
  const id = contextDirName(name);
  const files: Record<string, string> = {
    [`${configDir}/contexts/meta/${id}/meta.json`]: JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: endpoint } }),
  };
  for (const [file, content] of Object.entries(tls)) files[`${configDir}/contexts/tls/${id}/docker/${file}`] = content;
  return files;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('resolveEngineTarget: DOCKER_HOST', () => {
  it('uses the default socket when nothing names an engine', async () => {
    const target = await resolve({});
    expect(target).toMatchObject({ endpoint: 'unix:///var/run/docker.sock', reason: 'default socket', kind: 'docker', transport: 'unix' });
    expect(target.options).toMatchObject({ socketPath: '/var/run/docker.sock', host: undefined });
  });

  it('takes a unix:// socket', async () => {
    const target = await resolve({ DOCKER_HOST: 'unix:///tmp/engine.sock' });
    expect(target).toMatchObject({ endpoint: 'unix:///tmp/engine.sock', reason: 'DOCKER_HOST', transport: 'unix' });
    expect(target.options.socketPath).toBe('/tmp/engine.sock');
  });

  it('talks plain HTTP to tcp:// without DOCKER_TLS_VERIFY, even when DOCKER_CERT_PATH is set', async () => {
    const target = await resolve({ DOCKER_HOST: 'tcp://127.0.0.1:2375', DOCKER_CERT_PATH: '/certs' }, CERTS);
    expect(target).toMatchObject({ endpoint: 'tcp://127.0.0.1:2375', transport: 'tcp' });
    expect(target.tls).toBeUndefined();
    expect(target.options).toMatchObject({ host: '127.0.0.1', port: 2375, protocol: 'http', ca: undefined, socketPath: undefined });
  });

  it('reads ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH when DOCKER_TLS_VERIFY is set', async () => {
    const target = await resolve({ DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' }, CERTS);
    expect(target.options).toMatchObject({ host: '127.0.0.1', port: 2376, protocol: 'https' });
    expect(target.options.ca?.toString()).toBe('CA');
    expect(target.options.cert?.toString()).toBe('CERT');
    expect(target.options.key?.toString()).toBe('KEY');
    expect(target.options.agent).toBeUndefined();
    expect(target.tls).toEqual({ verify: true, material: 'DOCKER_CERT_PATH=/certs', check: 'check DOCKER_CERT_PATH (/certs)' });
    expect(describeEngineTarget(target)).toBe('Docker engine at tcp://127.0.0.1:2376, TLS verified with DOCKER_CERT_PATH=/certs (chosen by DOCKER_HOST)');
  });

  it('looks for the TLS files in DOCKER_CONFIG, then ~/.docker, when DOCKER_CERT_PATH is not set', async () => {
    const home = await resolve({ DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: 'yes' }, { '/home/u/.docker/ca.pem': 'HOME-CA' });
    expect(home.options.ca?.toString()).toBe('HOME-CA');
    expect(home.options.cert).toBeUndefined();
    const config = await resolve({ DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CONFIG: '/cfg' }, { '/cfg/ca.pem': 'CFG-CA' });
    expect(config.options.ca?.toString()).toBe('CFG-CA');
  });

  it('refuses verified TLS without ca.pem, naming the engine and DOCKER_CERT_PATH', async () => {
    const error = await rejection(resolve({ DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/nowhere' }));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe('Cannot set up TLS to the engine at tcp://127.0.0.1:2376: there is no ca.pem in /nowhere — check DOCKER_CERT_PATH (/nowhere).');
  });

  it('refuses a client certificate without its key', async () => {
    const error = await rejection(
      resolve({ DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' }, { '/certs/ca.pem': 'CA', '/certs/cert.pem': 'C' }),
    );
    expect(error.message).toContain('has cert.pem but no key.pem');
  });

  it.each([
    ['127.0.0.1:2376', 'tcp://127.0.0.1:2376'],
    ['tcp://docker', 'tcp://docker:2375'],
    ['tcp://[::1]:2376', 'tcp://[::1]:2376'],
    ['TCP://Host:1/', 'tcp://Host:1'],
  ])('reads %s as %s, as the Docker CLI does', async (host, endpoint) => {
    expect((await resolve({ DOCKER_HOST: host })).endpoint).toBe(endpoint);
  });

  it.each([
    ['npipe:////./pipe/docker_engine', 'not npipe://'],
    ['tcp://h:70000', 'port 70000 is out of range'],
    ['tcp://h:2375/prefix', 'path after the address'],
    ['unix://relative.sock', 'absolute socket path'],
    ['ssh://u:secret@h', 'password'],
    ['ssh://u@h/x', 'nothing may follow'],
  ])('refuses DOCKER_HOST=%s', async (host, why) => {
    const error = await rejection(resolve({ DOCKER_HOST: host }));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(`DOCKER_HOST=${host} is not an engine address astro can use`);
    expect(error.message).toContain(why);
  });

  it('wins over DOCKER_CONTEXT and currentContext, and reads no context files', async () => {
    const fs = memoryFs({ '/home/u/.docker/config.json': '{"currentContext":"ci"}', ...contextFiles('ci', { Host: 'tcp://ci:2376' }) });
    const target = await resolveEngineTarget({ env: { HOME: '/home/u', DOCKER_HOST: 'unix:///x.sock', DOCKER_CONTEXT: 'ci' }, fs });
    expect(target.endpoint).toBe('unix:///x.sock');
    expect(fs.reads).toEqual([]);
  });

  it('keeps docker-modem from replacing the chosen engine with its own reading of process.env', async () => {
    const target = await resolve({ DOCKER_HOST: 'unix:///chosen.sock' });
    const saved = { DOCKER_HOST: process.env.DOCKER_HOST, DOCKER_TLS_VERIFY: process.env.DOCKER_TLS_VERIFY };
    process.env.DOCKER_HOST = 'tcp://10.9.8.7:2376';
    process.env.DOCKER_TLS_VERIFY = '1';
    try {
      const modem = (new Docker(target.options) as unknown as { modem: { socketPath?: string; host?: string; protocol?: string } }).modem;
      expect(modem.host).toBeUndefined();
      expect(modem.socketPath).toBe('/chosen.sock');
      expect(modem.protocol).toBe('http');
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('resolveEngineTarget: Docker contexts', () => {
  it('uses DOCKER_CONTEXT with the endpoint and TLS files Docker stored for it', async () => {
    const files = contextFiles('ci', { Host: 'tcp://127.0.0.1:2376', SkipTLSVerify: false }, { 'ca.pem': 'CTX-CA', 'cert.pem': 'CTX-CERT', 'key.pem': 'CTX-KEY' });
    const target = await resolve({ DOCKER_CONTEXT: 'ci' }, files);
    expect(target).toMatchObject({ endpoint: 'tcp://127.0.0.1:2376', reason: 'DOCKER_CONTEXT=ci', transport: 'tcp' });
    expect(target.options).toMatchObject({ protocol: 'https', port: 2376 });
    expect(target.options.ca?.toString()).toBe('CTX-CA');
    expect(target.options.key?.toString()).toBe('CTX-KEY');
    expect(target.tls?.verify).toBe(true);
    expect(target.tls?.check).toContain('Docker context ci');
  });

  it('uses currentContext from $DOCKER_CONFIG/config.json', async () => {
    const files = { '/cfg/config.json': JSON.stringify({ auths: {}, currentContext: 'remote' }), ...contextFiles('remote', { Host: 'tcp://r:2375' }, {}, '/cfg') };
    const target = await resolve({ DOCKER_CONFIG: '/cfg' }, files);
    expect(target).toMatchObject({ endpoint: 'tcp://r:2375', reason: 'currentContext remote in /cfg/config.json' });
    expect(target.options.protocol).toBe('http');
  });

  it('prefers DOCKER_CONTEXT over currentContext', async () => {
    const files = {
      '/home/u/.docker/config.json': '{"currentContext":"a"}',
      ...contextFiles('a', { Host: 'tcp://a:1' }),
      ...contextFiles('b', { Host: 'tcp://b:2' }),
    };
    expect((await resolve({ DOCKER_CONTEXT: 'b' }, files)).endpoint).toBe('tcp://b:2');
  });

  it('treats the context named default as the default socket', async () => {
    const target = await resolve({}, { '/home/u/.docker/config.json': '{"currentContext":"default"}' });
    expect(target.endpoint).toBe('unix:///var/run/docker.sock');
    expect(target.reason).toContain('the default context');
  });

  it('encrypts without verifying for a context made with skip-tls-verify', async () => {
    const target = await resolve({ DOCKER_CONTEXT: 'lax' }, contextFiles('lax', { Host: 'tcp://l:2376', SkipTLSVerify: true }));
    expect(target.options.protocol).toBe('https');
    expect(target.tls?.verify).toBe(false);
    expect((target.options.agent as unknown as { options: { rejectUnauthorized?: boolean } }).options.rejectUnauthorized).toBe(false);
  });

  it('reaches an ssh:// context', async () => {
    const hostKey = randomBytes(51);
    const files = {
      ...contextFiles('remote', { Host: 'ssh://deploy@build-host' }),
      '/home/u/.ssh/known_hosts': `build-host ssh-ed25519 ${hostKey.toString('base64')}\n`,
      '/home/u/.ssh/id_ed25519': 'KEY',
    };
    const target = await resolve({ DOCKER_CONTEXT: 'remote' }, files);
    expect(target).toMatchObject({ endpoint: 'ssh://deploy@build-host:22', transport: 'ssh', reason: 'DOCKER_CONTEXT=remote' });
  });

  it('says which context does not exist and how to list them', async () => {
    const error = await rejection(resolve({ DOCKER_CONTEXT: 'gone' }));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain('Docker context "gone" (DOCKER_CONTEXT=gone) does not exist');
    expect((error as UserError).nextStep).toContain('docker context ls');
  });

  it('refuses a config.json that is not JSON', async () => {
    const error = await rejection(resolve({}, { '/home/u/.docker/config.json': '{"currentContext":' }));
    expect(error.message).toContain('/home/u/.docker/config.json is not valid JSON');
  });

  it('refuses a context without a docker endpoint', async () => {
    const id = contextDirName('k8s');
    const error = await rejection(resolve({ DOCKER_CONTEXT: 'k8s' }, { [`/home/u/.docker/contexts/meta/${id}/meta.json`]: '{"Name":"k8s","Endpoints":{}}' }));
    expect(error.message).toContain('has no docker endpoint');
  });
});

describe('resolveEngineTarget: ssh', () => {
  const hostKey = randomBytes(51);
  const otherKey = randomBytes(51);
  const keyLine = (hosts: string, key = hostKey) => `${hosts} ssh-ed25519 ${key.toString('base64')}\n`;
  const sshFiles = (knownHosts: string) => ({ '/home/u/.ssh/known_hosts': knownHosts, '/home/u/.ssh/id_ed25519': 'PRIVATE' });
  const verifier = (target: EngineTarget) => (target.options.sshOptions as { hostVerifier: (key: Buffer) => boolean }).hostVerifier;

  it('logs in with the user, port and key, and accepts only the host key in known_hosts', async () => {
    const target = await resolve({ DOCKER_HOST: 'ssh://root@127.0.0.1:2222' }, sshFiles(keyLine('[127.0.0.1]:2222')));
    expect(target).toMatchObject({ endpoint: 'ssh://root@127.0.0.1:2222', transport: 'ssh', reason: 'DOCKER_HOST' });
    expect(target.options).toMatchObject({ protocol: 'ssh', host: '127.0.0.1', port: 2222, username: 'root', socketPath: undefined });
    expect((target.options.sshOptions as { privateKey: Buffer }).privateKey.toString()).toBe('PRIVATE');
    expect(verifier(target)(hostKey)).toBe(true);
    expect(verifier(target)(otherKey)).toBe(false);
  });

  it('matches hashed known_hosts entries and wildcard patterns', async () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[build]:2200').digest('base64');
    const hashed = await resolve({ DOCKER_HOST: 'ssh://u@build:2200' }, sshFiles(keyLine(`|1|${salt.toString('base64')}|${hash}`)));
    expect(verifier(hashed)(hostKey)).toBe(true);
    const wildcard = await resolve({ DOCKER_HOST: 'ssh://u@build.example.com' }, sshFiles(keyLine('*.example.com,!other.example.com')));
    expect(verifier(wildcard)(hostKey)).toBe(true);
    await expect(resolve({ DOCKER_HOST: 'ssh://u@other.example.com' }, sshFiles(keyLine('*.example.com,!other.example.com')))).rejects.toThrow(/not in/);
  });

  it('refuses a revoked host key', async () => {
    const target = await resolve({ DOCKER_HOST: 'ssh://u@h' }, sshFiles(keyLine('h') + `@revoked * ssh-ed25519 ${hostKey.toString('base64')}\n`));
    expect(verifier(target)(hostKey)).toBe(false);
  });

  it('fails fast when the host is not in known_hosts, saying how to record it', async () => {
    const error = await rejection(resolve({ DOCKER_HOST: 'ssh://root@127.0.0.1:2222' }, sshFiles(keyLine('[127.0.0.1]:22'))));
    expect(error.message).toBe('Cannot use the engine at ssh://root@127.0.0.1:2222: 127.0.0.1:2222 is not in /home/u/.ssh/known_hosts or /etc/ssh/ssh_known_hosts.');
    expect((error as UserError).nextStep).toContain('ssh -p 2222 root@127.0.0.1');
  });

  it('takes the user from USER when the address names none', async () => {
    const target = await resolve({ DOCKER_HOST: 'ssh://h', USER: 'me' }, sshFiles(keyLine('h')));
    expect(target.options.username).toBe('me');
    await expect(resolve({ DOCKER_HOST: 'ssh://h' }, sshFiles(keyLine('h')))).rejects.toThrow(/name the user/);
  });

  it('skips an encrypted key and uses the agent', async () => {
    const encrypted = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' });
    const target = await resolve(
      { DOCKER_HOST: 'ssh://u@h', SSH_AUTH_SOCK: '/tmp/agent.sock' },
      { '/home/u/.ssh/known_hosts': keyLine('h'), '/home/u/.ssh/id_rsa': encrypted },
    );
    expect(target.options.sshOptions).toMatchObject({ agent: '/tmp/agent.sock' });
    expect((target.options.sshOptions as { privateKey?: unknown }).privateKey).toBeUndefined();
  });

  it('fails fast without a usable key or agent', async () => {
    const error = await rejection(resolve({ DOCKER_HOST: 'ssh://u@h' }, { '/home/u/.ssh/known_hosts': keyLine('h') }));
    expect(error.message).toContain('Cannot log in to ssh://u@h:22: no ssh agent (SSH_AUTH_SOCK)');
  });
});

describe('isEncryptedPrivateKey', () => {
  const opensshKey = (cipher: string) => {
    const magic = Buffer.from('openssh-key-v1\0', 'latin1');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(cipher.length);
    const body = Buffer.concat([magic, length, Buffer.from(cipher), randomBytes(40)]).toString('base64');
    return Buffer.from(`-----BEGIN OPENSSH PRIVATE KEY-----\n${body}\n-----END OPENSSH PRIVATE KEY-----\n`);
  };
  it('tells OpenSSH keys with a cipher from those without', () => {
    expect(isEncryptedPrivateKey(opensshKey('none'))).toBe(false);
    expect(isEncryptedPrivateKey(opensshKey('aes256-ctr'))).toBe(true);
  });
  it('recognizes encrypted PEM keys', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(isEncryptedPrivateKey(Buffer.from(privateKey.export({ type: 'pkcs1', format: 'pem' })))).toBe(false);
    expect(isEncryptedPrivateKey(Buffer.from(privateKey.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'p' })))).toBe(true);
  });
});

describe('resolveEngineTarget: Podman', () => {
  it('uses the rootless socket under XDG_RUNTIME_DIR for container.binary podman', async () => {
    const target = await resolveEngineTarget({
      env: { XDG_RUNTIME_DIR: '/run/user/1000' },
      containerBinary: 'podman',
      uid: 1000,
      fs: memoryFs({}, ['/run/user/1000/podman/podman.sock', '/run/podman/podman.sock']),
    });
    expect(target).toMatchObject({ endpoint: 'unix:///run/user/1000/podman/podman.sock', kind: 'podman', transport: 'unix' });
    expect(target.reason).toBe('container.binary podman: podman socket at /run/user/1000/podman/podman.sock');
  });

  it("prefers root's rootful socket, and names every place it looked when none exists", async () => {
    const rootful = await resolveEngineTarget({ env: { XDG_RUNTIME_DIR: '/run/user/0' }, containerBinary: 'Podman', uid: 0, fs: memoryFs({}, ['/run/podman/podman.sock', '/run/user/0/podman/podman.sock']) });
    expect(rootful.endpoint).toBe('unix:///run/podman/podman.sock');
    const none = await resolveEngineTarget({ env: {}, containerBinary: 'podman', uid: 1000, fs: memoryFs({}) });
    expect(none.endpoint).toBe('unix:///run/user/1000/podman/podman.sock');
    expect(none.reason).toContain('not found; also looked at /run/podman/podman.sock');
  });

  it('lets DOCKER_HOST win, as a Podman engine', async () => {
    const target = await resolveEngineTarget({ env: { DOCKER_HOST: 'unix:///srv/podman.sock' }, containerBinary: 'podman', fs: memoryFs({}) });
    expect(target).toMatchObject({ endpoint: 'unix:///srv/podman.sock', kind: 'podman', reason: 'DOCKER_HOST' });
  });

  it('falls back to an answering Podman socket only when the default Docker socket is silent', async () => {
    const fs = memoryFs({}, ['/run/podman/podman.sock']);
    const probed: string[] = [];
    const silentDocker = await resolveEngineTarget({
      env: {},
      uid: 0,
      fs,
      probe: async (socket) => {
        probed.push(socket);
        return socket.includes('podman');
      },
    });
    expect(silentDocker).toMatchObject({ endpoint: 'unix:///run/podman/podman.sock', kind: 'podman' });
    expect(silentDocker.reason).toBe('podman socket at /run/podman/podman.sock (no Docker engine answers at unix:///var/run/docker.sock)');
    expect(probed).toEqual(['/var/run/docker.sock', '/run/podman/podman.sock']);
    const answering = await resolveEngineTarget({ env: {}, uid: 0, fs, probe: async () => true });
    expect(answering).toMatchObject({ endpoint: 'unix:///var/run/docker.sock', kind: 'docker' });
    const nothing = await resolveEngineTarget({ env: {}, uid: 0, fs, probe: async () => false });
    expect(nothing).toMatchObject({ endpoint: 'unix:///var/run/docker.sock', kind: 'docker', reason: 'default socket' });
  });

  it('refuses an unknown container.binary', async () => {
    await expect(resolveEngineTarget({ env: {}, containerBinary: 'nerdctl', fs: memoryFs({}) })).rejects.toThrow(/knows only 'docker' and 'podman'/);
  });
});

describe('assertEngineSupports', () => {
  it('refuses build secrets on Podman, naming the engine, and allows them on Docker', () => {
    const podman = { kind: 'podman' as const, endpoint: 'unix:///run/podman/podman.sock', reason: 'container.binary podman' };
    expect(() => assertEngineSupports(podman, 'build-secrets')).toThrow(
      "The Podman engine at unix:///run/podman/podman.sock cannot serve build secrets: they need BuildKit, which Podman's Docker-compatible API does not offer.",
    );
    expect(() => assertEngineSupports({ ...podman, kind: 'docker' }, 'build-secrets')).not.toThrow();
  });
});

describe('engineKindFromVersion', () => {
  it('recognizes Podman by its engine component', () => {
    expect(engineKindFromVersion({ Version: '4.3.1', Components: [{ Name: 'Podman Engine', Version: '4.3.1' }] })).toBe('podman');
    expect(engineKindFromVersion({ Version: '20.10.24', Components: [{ Name: 'Engine' }, { Name: 'containerd' }] })).toBe('docker');
    expect(engineKindFromVersion('nonsense')).toBe('docker');
  });
});

describe('describeEngineError', () => {
  const errno = (code: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(`connect ${code}`), { code, ...extra });

  it('names the engine, the TLS failure and DOCKER_CERT_PATH for an unknown authority', async () => {
    const target = await resolve({ DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' }, CERTS);
    const error = describeEngineError(target, errno('UNABLE_TO_VERIFY_LEAF_SIGNATURE'));
    expect(error).toBeInstanceOf(UserError);
    expect(error.kind).toBe('engine-unreachable');
    expect(error.message).toBe('No Docker engine answers at tcp://127.0.0.1:2376: TLS handshake failed: unknown authority — check DOCKER_CERT_PATH (/certs).');
    expect(error.nextStep).toBe('astro chose this engine because of DOCKER_HOST.');
  });

  it("points at a context's TLS files when the context chose the engine", async () => {
    const files = contextFiles('ci', { Host: 'tcp://127.0.0.1:2376' }, { 'ca.pem': 'A', 'cert.pem': 'B', 'key.pem': 'C' });
    const target = await resolve({ DOCKER_CONTEXT: 'ci' }, files);
    const error = describeEngineError(target, errno('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'));
    expect(error.message).toContain("the engine refused astro's client certificate — check the TLS files of Docker context ci");
  });

  it.each([
    ['ECONNREFUSED', 'tcp://127.0.0.1:2376', 'connection refused — check that the engine listens on 127.0.0.1:2376'],
    ['ENOENT', 'unix:///var/run/docker.sock', '/var/run/docker.sock does not exist — start Docker'],
    ['EACCES', 'unix:///var/run/docker.sock', 'permission denied on /var/run/docker.sock — add your user to the docker group'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'tcp://h:2375', 'the endpoint does not speak TLS'],
  ])('explains %s at %s', async (code, host, expected) => {
    const target = await resolve({ DOCKER_HOST: host });
    expect(describeEngineError(target, errno(code)).message).toContain(expected);
  });

  it('tells a Podman user how to start the service', async () => {
    const target = await resolveEngineTarget({ env: {}, containerBinary: 'podman', uid: 0, fs: memoryFs({}) });
    const error = describeEngineError(target, errno('ENOENT'));
    expect(error.message).toBe(
      'No Podman engine answers at unix:///run/podman/podman.sock: /run/podman/podman.sock does not exist — start it with `podman system service --time=0 unix:///run/podman/podman.sock` (or `systemctl --user start podman.socket`).',
    );
  });

  it('explains a plain-HTTP request to a TLS port', async () => {
    const target = await resolve({ DOCKER_HOST: 'tcp://h:2376' });
    expect(describeEngineError(target, Object.assign(new Error('(HTTP code 400) bad parameter'), { statusCode: 400 })).message).toContain('the engine expects TLS');
  });

  it('separates ssh login, host key and remote docker failures', async () => {
    const files = { '/home/u/.ssh/known_hosts': `[h]:2222 ssh-ed25519 ${randomBytes(51).toString('base64')}\n`, '/home/u/.ssh/id_ed25519': 'K' };
    const target = await resolve({ DOCKER_HOST: 'ssh://root@h:2222' }, files);
    expect(describeEngineError(target, errno('x', { code: undefined, level: 'client-authentication' })).message).toContain(
      "ssh refused the login of root@h:2222 — check the key astro offers (/home/u/.ssh/id_ed25519): its public key must be in root's authorized_keys on h",
    );
    expect(describeEngineError(target, Object.assign(new Error('Host denied (verification failed)'), { level: 'handshake' })).message).toContain(
      'check that its host key matches /home/u/.ssh/known_hosts',
    );
    expect(describeEngineError(target, errno('ECONNRESET')).message).toContain('`docker system dial-stdio` works for root on h');
    expect(describeEngineError(target, errno('ECONNREFUSED', { level: 'client-socket' })).message).toContain('check that sshd listens on h:2222');
  });

  it('looks through wrapped causes, and says something useful about the unknown', async () => {
    const target = await resolve({ DOCKER_HOST: 'tcp://h:2376' });
    expect(describeEngineError(target, new Error('outer', { cause: errno('ECONNREFUSED') })).message).toContain('connection refused');
    expect(describeEngineError(target, new Error('weird')).message).toBe(
      'No Docker engine answers at tcp://h:2376: the request failed (weird) — check the engine and the settings that chose it.',
    );
  });
});
