/**
 * A real Docker registry (Debian's docker-registry, distribution 2.8) for the image tests, with token
 * authentication like Astronomer's registry: a small token server on 127.0.0.1 checks Basic credentials (user
 * `cli`, password the API token with or without `Bearer `) and answers RS256 JWTs whose header carries the signing
 * certificate (`x5c`), which the registry verifies against its root certificate bundle.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { importPKCS8, SignJWT } from 'jose';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
const SERVICE = 'astro-test-registry';
const ISSUER = 'astro-test-token-issuer';

export interface TestRegistry {
  /** `127.0.0.1:<port>`: the registry host as it appears in image names. */
  host: string;
  /** The password the token server accepts for user `cli` (prefixed or not with `Bearer `). */
  token: string;
  /** What the registry's Bearer challenge names: its token realm and service. */
  challenge: { realm: string; service: string };
  /** Kills the registry process (storage is kept) and starts it again on the same port. */
  restart(options?: { downMs?: number }): Promise<void>;
  kill(): Promise<void>;
  start(): Promise<void>;
  /** GET on the registry API with a pull token, e.g. `/v2/<name>/manifests/<tag>`. */
  get(pathname: string, accept?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>;
  /** Users/scopes the token server was asked for, newest last. */
  tokenRequests: Array<{ user?: string; scope?: string; granted: boolean }>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function request(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout on ${url}`)));
  });
}

export async function startTestRegistry(): Promise<TestRegistry> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-test-registry-'));
  const keyPath = path.join(dir, 'key.pem');
  const certPath = path.join(dir, 'cert.pem');
  const openssl = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', `/CN=${ISSUER}`],
    { encoding: 'utf8' },
  );
  if (openssl.status !== 0) throw new Error(`openssl failed: ${openssl.stderr}`);
  const key = await importPKCS8(await fs.readFile(keyPath, 'utf8'), 'RS256');
  const certDer = (await fs.readFile(certPath, 'utf8')).replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
  const token = `test-api-token-${randomUUID()}`;
  const tokenRequests: TestRegistry['tokenRequests'] = [];

  const mint = async (subject: string, scope: string | undefined) => {
    const access = (scope ?? '')
      .split(' ')
      .filter((s) => s.startsWith('repository:'))
      .map((s) => {
        const [, name, actions] = s.split(':');
        return { type: 'repository', name: name!, actions: (actions ?? '').split(',').filter((a) => a === 'push' || a === 'pull') };
      });
    return new SignJWT({ access })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', x5c: [certDer] })
      .setIssuer(ISSUER)
      .setSubject(subject)
      .setAudience(SERVICE)
      .setIssuedAt()
      .setNotBefore('0s')
      .setExpirationTime('5m')
      .setJti(randomUUID())
      .sign(key);
  };

  const tokenServer = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const scope = url.searchParams.get('scope') ?? undefined;
      const header = req.headers.authorization ?? '';
      let user: string | undefined;
      let password: string | undefined;
      if (header.startsWith('Basic ')) {
        const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        user = decoded.slice(0, colon);
        password = decoded.slice(colon + 1);
      }
      const accepted = user === 'cli' && (password === token || password === `Bearer ${token}`);
      tokenRequests.push({ user, scope, granted: accepted });
      if (!accepted) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] }));
        return;
      }
      const jwt = await mint(user!, scope);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: jwt, access_token: jwt, expires_in: 300, issued_at: new Date().toISOString() }));
    })().catch((error: unknown) => {
      res.writeHead(500);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => tokenServer.listen(0, '127.0.0.1', resolve));
  const tokenPort = (tokenServer.address() as net.AddressInfo).port;

  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const configPath = path.join(dir, 'config.yml');
  await fs.writeFile(
    configPath,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${host}`,
      `  secret: ${randomUUID()}`,
      'auth:',
      '  token:',
      `    realm: http://127.0.0.1:${tokenPort}/token`,
      `    service: ${SERVICE}`,
      `    issuer: ${ISSUER}`,
      `    rootcertbundle: ${certPath}`,
      '',
    ].join('\n'),
  );

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async () => {
    const proc = spawn(REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr?.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString('utf8')).slice(-4000);
    });
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
      try {
        const answer = await request(`http://${host}/v2/`);
        if (answer.status === 401) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`docker-registry did not start on ${host}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const kill = async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    child = undefined;
  };

  await start();

  return {
    host,
    token,
    challenge: { realm: `http://127.0.0.1:${tokenPort}/token`, service: SERVICE },
    tokenRequests,
    start,
    kill,
    async restart(options = {}) {
      await kill();
      if (options.downMs) await new Promise((r) => setTimeout(r, options.downMs));
      await start();
    },
    async get(pathname, accept) {
      const repo = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(pathname)?.[1];
      const jwt = await mint('test', repo ? `repository:${repo}:pull` : undefined);
      return request(`http://${host}${pathname}`, { authorization: `Bearer ${jwt}`, ...(accept ? { accept } : {}) });
    },
    async stop() {
      await kill();
      await new Promise<void>((resolve) => tokenServer.close(() => resolve()));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

export const MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';

/** The config blob (architecture, os, labels) of `<name>:<tag>` as stored in the registry. */
export async function fetchImageConfig(
  registry: TestRegistry,
  name: string,
  reference: string,
): Promise<{
  digest: string;
  config: { architecture?: string; os?: string; config?: { Labels?: Record<string, string> } };
}> {
  const manifest = await registry.get(`/v2/${name}/manifests/${reference}`, MANIFEST_V2);
  if (manifest.status !== 200) throw new Error(`manifest ${name}:${reference}: HTTP ${manifest.status} ${manifest.body.toString()}`);
  const parsed = JSON.parse(manifest.body.toString('utf8')) as { config: { digest: string } };
  const blob = await registry.get(`/v2/${name}/blobs/${parsed.config.digest}`);
  if (blob.status !== 200) throw new Error(`config blob: HTTP ${blob.status}`);
  return { digest: String(manifest.headers['docker-content-digest']), config: JSON.parse(blob.body.toString('utf8')) as never };
}

/**
 * Serves a test registry from its own process, for callers that block their event loop (the benchmarks time
 * synchronous commands, which would starve an in-process token server). Prints `{host, token}` as one JSON line,
 * then runs until SIGTERM/SIGINT or until its stdin closes.
 */
async function serveFromCommandLine(): Promise<void> {
  const registry = await startTestRegistry();
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void registry.stop().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ host: registry.host, token: registry.token })}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === 'serve') {
  await serveFromCommandLine();
}
