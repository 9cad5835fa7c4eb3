import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import {
  assertEngineSupports,
  contextDirName,
  describeEngineError,
  describeEngineTarget,
  engineKindFromPing,
  type EngineFs,
  type EngineTargetInput,
  resolveEngineTarget,
} from '../../../src/image/engine-target.js';
import { endpointOf } from '../../../src/image/connect.js';
import { SshDialError } from '../../../src/image/engine/transport.js';

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
    expect(endpointOf(target)).toEqual({ kind: 'unix', socketPath: '/var/run/docker.sock' });
  });

  it('takes a unix:// socket', async () => {
    const target = await resolve({ DOCKER_HOST: 'unix:///tmp/engine.sock' });
    expect(target).toMatchObject({ endpoint: 'unix:///tmp/engine.sock', reason: 'DOCKER_HOST', transport: 'unix' });
    expect(endpointOf(target)).toEqual({ kind: 'unix', socketPath: '/tmp/engine.sock' });
  });

  it('talks plain HTTP to tcp:// without DOCKER_TLS_VERIFY, even when DOCKER_CERT_PATH is set', async () => {
    const target = await resolve({ DOCKER_HOST: 'tcp://127.0.0.1:2375', DOCKER_CERT_PATH: '/certs' }, CERTS);
    expect(target).toMatchObject({ endpoint: 'tcp://127.0.0.1:2375', transport: 'tcp' });
    expect(target.tls).toBeUndefined();
    expect(endpointOf(target)).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 2375 });
  });

  it('reads ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH when DOCKER_TLS_VERIFY is set', async () => {
    const target = await resolve({ DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' }, CERTS);
    expect(endpointOf(target)).toEqual({
      kind: 'tcp',
      host: '127.0.0.1',
      port: 2376,
      tls: { verify: true, ca: Buffer.from('CA'), cert: Buffer.from('CERT'), key: Buffer.from('KEY') },
    });
    expect(target.tls).toMatchObject({ verify: true, material: 'DOCKER_CERT_PATH=/certs', check: 'check DOCKER_CERT_PATH (/certs)' });
    expect(describeEngineTarget(target)).toBe('Docker engine at tcp://127.0.0.1:2376, TLS verified with DOCKER_CERT_PATH=/certs (chosen by DOCKER_HOST)');
  });

  it('looks for the TLS files in DOCKER_CONFIG, then ~/.docker, when DOCKER_CERT_PATH is not set', async () => {
    const home = await resolve({ DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: 'yes' }, { '/home/u/.docker/ca.pem': 'HOME-CA' });
    expect(endpointOf(home)).toEqual({ kind: 'tcp', host: 'h', port: 2376, tls: { verify: true, ca: Buffer.from('HOME-CA') } });
    const config = await resolve({ DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CONFIG: '/cfg' }, { '/cfg/ca.pem': 'CFG-CA' });
    expect(config.tls?.ca?.toString()).toBe('CFG-CA');
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
});

describe('resolveEngineTarget: Docker contexts', () => {
  it('uses DOCKER_CONTEXT with the endpoint and TLS files Docker stored for it', async () => {
    const files = contextFiles(
      'ci',
      { Host: 'tcp://127.0.0.1:2376', SkipTLSVerify: false },
      { 'ca.pem': 'CTX-CA', 'cert.pem': 'CTX-CERT', 'key.pem': 'CTX-KEY' },
    );
    const target = await resolve({ DOCKER_CONTEXT: 'ci' }, files);
    expect(target).toMatchObject({ endpoint: 'tcp://127.0.0.1:2376', reason: 'DOCKER_CONTEXT=ci', transport: 'tcp' });
    expect(endpointOf(target)).toEqual({
      kind: 'tcp',
      host: '127.0.0.1',
      port: 2376,
      tls: { verify: true, ca: Buffer.from('CTX-CA'), cert: Buffer.from('CTX-CERT'), key: Buffer.from('CTX-KEY') },
    });
    expect(target.tls?.verify).toBe(true);
    expect(target.tls?.check).toContain('Docker context ci');
  });

  it('uses currentContext from $DOCKER_CONFIG/config.json', async () => {
    const files = {
      '/cfg/config.json': JSON.stringify({ auths: {}, currentContext: 'remote' }),
      ...contextFiles('remote', { Host: 'tcp://r:2375' }, {}, '/cfg'),
    };
    const target = await resolve({ DOCKER_CONFIG: '/cfg' }, files);
    expect(target).toMatchObject({ endpoint: 'tcp://r:2375', reason: 'currentContext remote in /cfg/config.json' });
    expect(endpointOf(target)).toEqual({ kind: 'tcp', host: 'r', port: 2375 });
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
    expect(endpointOf(target)).toEqual({ kind: 'tcp', host: 'l', port: 2376, tls: { verify: false } });
    expect(target.tls?.verify).toBe(false);
  });

  it('reaches an ssh:// context', async () => {
    const files = { ...contextFiles('remote', { Host: 'ssh://deploy@build-host' }), '/home/u/.ssh/id_ed25519': 'KEY' };
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
  it('hands the system ssh the user, port, the keys in $HOME/.ssh and its known_hosts', async () => {
    const files = { '/home/u/.ssh/id_ed25519': 'PRIVATE', '/home/u/.ssh/id_rsa': 'RSA', '/home/u/.ssh/id_ed25519.pub': 'PUB' };
    const target = await resolve({ DOCKER_HOST: 'ssh://root@127.0.0.1:2222' }, files);
    expect(target).toMatchObject({ endpoint: 'ssh://root@127.0.0.1:2222', transport: 'ssh', reason: 'DOCKER_HOST' });
    // OpenSSH's order of default identities; public keys are not identities.
    expect(endpointOf(target)).toEqual({
      kind: 'ssh',
      host: '127.0.0.1',
      port: 2222,
      user: 'root',
      identityFiles: ['/home/u/.ssh/id_rsa', '/home/u/.ssh/id_ed25519'],
      knownHostsFiles: ['/home/u/.ssh/known_hosts'],
    });
    expect(describeEngineTarget(target)).toBe(
      'Docker engine at ssh://root@127.0.0.1:2222, over ssh as root with /home/u/.ssh/id_rsa, /home/u/.ssh/id_ed25519 (chosen by DOCKER_HOST)',
    );
  });

  it('leaves keys to the agent (and ssh) when $HOME/.ssh has none, and port 22 by default', async () => {
    const target = await resolve({ DOCKER_HOST: 'ssh://u@h', SSH_AUTH_SOCK: '/tmp/agent.sock' });
    expect(endpointOf(target)).toMatchObject({ host: 'h', port: 22, user: 'u', identityFiles: [] });
    expect(describeEngineTarget(target)).toContain('over ssh as u and the ssh agent');
  });

  it('takes the user from USER when the address names none', async () => {
    const target = await resolve({ DOCKER_HOST: 'ssh://h', USER: 'me' });
    expect(target.ssh?.user).toBe('me');
    await expect(resolve({ DOCKER_HOST: 'ssh://h' })).rejects.toThrow(/name the user/);
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
    const rootful = await resolveEngineTarget({
      env: { XDG_RUNTIME_DIR: '/run/user/0' },
      containerBinary: 'Podman',
      uid: 0,
      fs: memoryFs({}, ['/run/podman/podman.sock', '/run/user/0/podman/podman.sock']),
    });
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

describe('engineKindFromPing', () => {
  it('recognizes Podman by the headers of its /_ping answer, and Docker by their absence', () => {
    expect(engineKindFromPing({ 'api-version': '1.41', 'libpod-api-version': '4.3.1', server: 'Libpod/4.3.1 (linux)' })).toBe('podman');
    expect(engineKindFromPing({ 'api-version': '1.41', server: 'Libpod/5.0.0 (linux)' })).toBe('podman');
    expect(engineKindFromPing({ 'api-version': '1.41', server: 'Docker/20.10.24+dfsg1 (linux)' })).toBe('docker');
    expect(engineKindFromPing({})).toBe('docker');
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
    expect(describeEngineError(target, Object.assign(new Error('(HTTP code 400) bad parameter'), { statusCode: 400 })).message).toContain(
      'the engine expects TLS',
    );
  });

  it('sorts what the system ssh said into login, host key, sshd and remote docker failures', async () => {
    const target = await resolve({ DOCKER_HOST: 'ssh://root@h:2222' }, { '/home/u/.ssh/id_ed25519': 'K' });
    const said = (line: string) => describeEngineError(target, new SshDialError(line)).message;
    expect(said('root@h: Permission denied (publickey).')).toBe(
      "No Docker engine answers at ssh://root@h:2222: ssh refused the login of root@h:2222 (root@h: Permission denied (publickey).) — check the keys ssh offers (/home/u/.ssh/id_ed25519): a public key must be in root's authorized_keys on h.",
    );
    expect(said('Host key verification failed.')).toContain(
      'check that its host key is in /home/u/.ssh/known_hosts or /etc/ssh/ssh_known_hosts: connect once with `ssh -p 2222 root@h`',
    );
    expect(said('ssh: connect to host h port 2222: Connection refused')).toContain('connection refused — check that sshd listens on h:2222');
    expect(said('bash: line 1: docker: command not found')).toContain('`docker system dial-stdio` works for root on h');
    expect(describeEngineError(target, errno('ECONNRESET')).message).toContain('the ssh session to h:2222 ended before the engine answered');
  });

  it('looks through wrapped causes, and says something useful about the unknown', async () => {
    const target = await resolve({ DOCKER_HOST: 'tcp://h:2376' });
    expect(describeEngineError(target, new Error('outer', { cause: errno('ECONNREFUSED') })).message).toContain('connection refused');
    expect(describeEngineError(target, new Error('weird')).message).toBe(
      'No Docker engine answers at tcp://h:2376: the request failed (weird) — check the engine and the settings that chose it.',
    );
  });
});
